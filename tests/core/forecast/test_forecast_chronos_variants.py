"""Chronos-Bolt and the original Chronos (T5) through the real loading path, plus ``--dtype`` spellings.

Toy random-init checkpoints in the published config layouts are saved with ``save_pretrained`` and
loaded through the same ``chronos-bolt`` / ``chronos`` forecaster path as real weights.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from mqc.core.errors import ConfigError
from mqc.core.forecast import base
from mqc.core.forecast.config import ForecastConfig

LEVELS = (0.1, 0.5, 0.9)


@pytest.mark.parametrize(
    ("given", "device", "stored"),
    [
        ("auto", "cpu", "float32"),
        ("fp32", "cpu", "float32"),
        ("float32", "cpu", "float32"),
        ("auto", "cuda", "bfloat16"),
        ("bf16", "cuda:0", "bfloat16"),
        ("bfloat16", "cuda", "bfloat16"),
        ("fp32", "cuda", "float32"),
    ],
)
def test_dtype_spellings_are_normalised(given, device, stored):
    assert ForecastConfig(dtype=given, device=device).dtype == stored


def test_dtype_default_is_fp32_on_cpu_and_bf16_is_refused_there():
    assert ForecastConfig().dtype == "float32"
    for bad in ("bf16", "bfloat16"):
        with pytest.raises(ConfigError, match="needs a CUDA device"):
            ForecastConfig(dtype=bad)
    with pytest.raises(ConfigError, match="not one of"):
        ForecastConfig(dtype="fp16")


def test_dtype_short_spellings_resolve_through_the_precedence(monkeypatch):
    from mqc.core.profiles import resolve_with_profile

    monkeypatch.setenv("MQC_FORECAST_DTYPE", "bf16")
    resolved = resolve_with_profile(ForecastConfig, None, flags={"device": "cuda", "dtype": None}).value
    assert resolved.dtype == "bfloat16"
    assert (
        resolve_with_profile(ForecastConfig, None, flags={"device": "cuda", "dtype": "fp32"}).value.dtype == "float32"
    )


pytest.importorskip("chronos")


@pytest.fixture(scope="module")
def toy_checkpoints(tmp_path_factory):
    from mqc.core.forecast.randinit import save_random_chronos_bolt, save_random_chronos_t5

    root = tmp_path_factory.mktemp("chronos_variants")
    return {"chronos-bolt": save_random_chronos_bolt(root / "bolt"), "chronos": save_random_chronos_t5(root / "t5")}


def _model(name, path, **kw):
    return base.create(name, config=ForecastConfig(model=name, model_id=str(path), context_length=128, **kw))


def test_checkpoints_have_the_published_layouts(toy_checkpoints):
    bolt = json.loads((toy_checkpoints["chronos-bolt"] / "config.json").read_text())
    assert bolt["chronos_pipeline_class"] == "ChronosBoltPipeline" and bolt["architectures"] == [
        "ChronosBoltModelForForecasting"
    ]
    assert {"context_length", "prediction_length", "input_patch_size", "quantiles", "use_reg_token"} <= set(
        bolt["chronos_config"]
    )
    t5 = json.loads((toy_checkpoints["chronos"] / "config.json").read_text())
    assert "chronos_pipeline_class" not in t5 and t5["architectures"] == ["T5ForConditionalGeneration"]
    assert (
        t5["chronos_config"]["tokenizer_class"] == "MeanScaleUniformBins"
        and t5["vocab_size"] == t5["chronos_config"]["n_tokens"]
    )
    for path in toy_checkpoints.values():
        assert (path / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("name", "pipeline"), [("chronos-bolt", "ChronosBoltPipeline"), ("chronos", "ChronosPipeline")]
)
def test_loads_offline_and_forecasts_sorted_consistent_paths(toy_checkpoints, synth, name, pipeline):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    frames = synth(n_assets=3, n_bars=200, seed=5, weekdays_only=True)
    m = _model(name, toy_checkpoints[name], batch_size=2)  # 3 symbols x 4 fields over 2 batches
    assert m.pipeline_class == pipeline and not m.multivariate
    out = m.predict(frames, 6, LEVELS)
    assert set(out) == set(frames)
    for s, fc in out.items():
        q = fc.quantiles
        assert q.shape == (3, 6, 4) and np.isfinite(q).all()
        assert (np.diff(q, axis=0) >= 0).all()
        assert (q[..., 2] <= np.minimum(q[..., 0], q[..., 3])).all() and (
            q[..., 1] >= np.maximum(q[..., 0], q[..., 3])
        ).all()
        assert len(fc.timestamps) == 6 and fc.timestamps[0] > frames[s]["timestamp"].iloc[-1]
        assert all(t.day_of_week < 5 for t in fc.timestamps)


@pytest.mark.parametrize("name", ["chronos-bolt", "chronos"])
def test_deterministic_across_calls(toy_checkpoints, synth, name):
    import torch

    frames = synth(n_assets=2, n_bars=160, seed=6)
    m = _model(name, toy_checkpoints[name])
    first = m.predict(frames, 4, LEVELS)
    torch.manual_seed(123)  # the caller's global RNG state must not matter
    before = torch.random.get_rng_state()
    again = m.predict(frames, 4, LEVELS)
    assert torch.equal(before, torch.random.get_rng_state())  # and must not be consumed
    for s in frames:
        assert np.array_equal(first[s].quantiles, again[s].quantiles)


def test_sampling_chronos_follows_its_seed(toy_checkpoints, synth):
    frames = synth(n_assets=1, n_bars=160, seed=7)
    a = _model("chronos", toy_checkpoints["chronos"], seed=0).predict(frames, 4, LEVELS)
    b = _model("chronos", toy_checkpoints["chronos"], seed=1).predict(frames, 4, LEVELS)
    s = next(iter(frames))
    assert not np.array_equal(a[s].quantiles, b[s].quantiles)


@pytest.mark.parametrize(
    ("name", "repo"),
    [
        ("chronos-bolt", "amazon/chronos-bolt-small"),
        ("chronos", "amazon/chronos-t5-small"),
        ("chronos2", "amazon/chronos-2"),
    ],
)
def test_missing_weights_hint_names_the_variants_own_repo(name, repo, tmp_path):
    from mqc.core.errors import ArtifactNotFound

    cfg = ForecastConfig(model=name)  # model_id left at its default
    assert cfg.model_id == repo
    with pytest.raises(ArtifactNotFound) as exc:
        base.create(name, config=cfg)
    assert f"hf download {repo} --local-dir" in exc.value.hint
    with pytest.raises(ArtifactNotFound) as exc:  # a local path that is missing: the variant's repo too
        base.create(name, config=ForecastConfig(model=name, model_id=str(tmp_path / "nope")))
    assert f"hf download {repo} " in exc.value.hint


def test_weights_of_another_variant_are_refused_naming_the_right_model(toy_checkpoints):
    from mqc.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="expects ChronosBoltPipeline weights") as exc:
        _model("chronos-bolt", toy_checkpoints["chronos"])
    assert "--model chronos for these weights" in exc.value.hint and "amazon/chronos-bolt-small" in exc.value.hint
    with pytest.raises(CheckpointError, match="expects Chronos2Pipeline weights"):
        _model("chronos2", toy_checkpoints["chronos-bolt"])
