"""The real Chronos-2 loading path on a tiny random-init checkpoint saved with save_pretrained."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from mqc.core.errors import ArtifactNotFound
from mqc.core.forecast import base
from mqc.core.forecast.config import ForecastConfig

pytest.importorskip("chronos")


@pytest.fixture(scope="session")
def tiny_chronos2(tmp_path_factory):
    from mqc.core.forecast.randinit import save_random_chronos2

    return save_random_chronos2(tmp_path_factory.mktemp("chronos2") / "tiny", size="tiny")


def _model(path, **kw):
    return base.create("chronos2", config=ForecastConfig(model="chronos2", model_id=str(path), **kw))


def test_checkpoint_has_the_real_layout(tiny_chronos2):
    cfg = json.loads((tiny_chronos2 / "config.json").read_text())
    assert cfg["chronos_pipeline_class"] == "Chronos2Pipeline" and cfg["architectures"] == ["Chronos2Model"]
    assert {"context_length", "input_patch_size", "output_patch_size", "quantiles"} <= set(cfg["chronos_config"])
    assert (tiny_chronos2 / "model.safetensors").is_file()


def test_shapes_calendar_and_consistency(tiny_chronos2, synth):
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    frames = synth(n_assets=3, n_bars=300, seed=2, weekdays_only=True)
    out = _model(tiny_chronos2, context_length=128).predict(frames, 7, (0.1, 0.5, 0.9))
    for s, fc in out.items():
        assert fc.quantiles.shape == (3, 7, 4) and np.isfinite(fc.quantiles).all()
        assert (np.diff(fc.quantiles, axis=0) >= 0).all()
        q = fc.quantiles
        assert (q[..., 2] <= np.minimum(q[..., 0], q[..., 3])).all() and (
            q[..., 1] >= np.maximum(q[..., 0], q[..., 3])
        ).all()
        assert all(t.day_of_week < 5 for t in fc.timestamps)
        assert fc.timestamps[0] > frames[s]["timestamp"].iloc[-1]


def test_deterministic_and_batching_matches_single(tiny_chronos2, synth):
    frames = synth(n_assets=4, n_bars=260, seed=4)
    m = _model(tiny_chronos2, context_length=128, batch_size=2)
    batched = m.predict(frames, 5, (0.1, 0.5, 0.9))
    again = m.predict(frames, 5, (0.1, 0.5, 0.9))
    single = m.predict({"SYN2": frames["SYN2"]}, 5, (0.1, 0.5, 0.9))
    assert np.array_equal(batched["SYN1"].quantiles, again["SYN1"].quantiles)
    assert np.allclose(batched["SYN2"].quantiles, single["SYN2"].quantiles, rtol=1e-5)


def test_volume_covariate_and_eager_attention(tiny_chronos2, synth):
    frames = synth(n_assets=2, n_bars=200, seed=5)
    a = _model(tiny_chronos2, context_length=128, volume_covariate=True, attn="eager").predict(frames, 3, (0.5,))
    assert a["SYN0"].quantiles.shape == (1, 3, 4)


def test_missing_weights_fail_fast_with_download_command(tmp_path):
    with pytest.raises(ArtifactNotFound) as exc:
        _model("amazon/chronos-2")
    assert "hf download amazon/chronos-2 --local-dir" in exc.value.hint and "--model-path" in exc.value.hint
    with pytest.raises(ArtifactNotFound, match="does not exist"):
        _model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ArtifactNotFound, match="no config.json"):
        _model(tmp_path / "empty")


def test_hourly_equity_timestamps_from_sessions(tiny_chronos2):
    days = pd.bdate_range("2024-01-02", "2024-02-29")
    local = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(9, 16)]).tz_localize(
        "America/New_York"
    )
    rng = np.random.default_rng(0)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, len(local))))
    df = pd.DataFrame(
        {
            "timestamp": local.tz_convert("UTC"),
            "open": c,
            "high": c * 1.001,
            "low": c * 0.999,
            "close": c,
            "volume": 1.0,
        }
    )
    fc = _model(tiny_chronos2, context_length=128).predict({"AAPL": df}, 9, (0.5,))["AAPL"]
    hours = [t.tz_convert("America/New_York").hour for t in fc.timestamps]
    assert hours == [9, 10, 11, 12, 13, 14, 15, 9, 10]


@pytest.mark.parametrize("cross_learning", [False, True])
def test_eval_never_leaks_later_bars_into_earlier_origins(tiny_chronos2, synth, cross_learning):
    """Cross-learning shares information across the series of a call: origins must not share a call."""
    from mqc.core.forecast.config import EvalConfig
    from mqc.core.forecast.evaluation import evaluate

    frames = synth(n_assets=3, n_bars=200, seed=4)
    cfg = ForecastConfig(
        model="chronos2", model_id=str(tiny_chronos2), context_length=64, cross_learning=cross_learning
    )
    ec = EvalConfig(origins=8, horizons=(1,), chunk=8)
    res = evaluate(frames, {"c": cfg}, ec)
    k = 2
    bumped = {}
    for s, df in frames.items():
        df = df.copy()
        after = df["timestamp"] > res.origins[k]
        for col in ("open", "high", "low", "close"):
            df.loc[after, col] *= 1.5
        bumped[s] = df
    res2 = evaluate(bumped, {"c": cfg}, ec)
    assert np.array_equal(res.predictions["c"][: k + 1], res2.predictions["c"][: k + 1])
    assert not np.allclose(res.predictions["c"][k + 1 :], res2.predictions["c"][k + 1 :])
    assert _model(tiny_chronos2, cross_learning=cross_learning).shares_across_series is cross_learning
    if cross_learning:
        # all symbols of one origin still share a call: that is the cross-learning asked for
        solo = evaluate({s: frames[s] for s in list(frames)[:1]}, {"c": cfg}, ec)
        assert not np.allclose(solo.predictions["c"][:, 0], res.predictions["c"][:, 0])


def test_cross_learning_alone_gets_joint_origins(tiny_chronos2, synth):
    """Chronos-2 with cross-learning reads the other symbols at each origin: common origins for it only."""
    from mqc.core.errors import DataError
    from mqc.core.forecast.config import EvalConfig
    from mqc.core.forecast.evaluation import evaluate

    f = synth(n_assets=2, n_bars=260, seed=8)
    frames = {"A": f["SYN0"], "B": f["SYN1"].iloc[:-40].reset_index(drop=True)}  # B ends 40 bars earlier
    ec = EvalConfig(origins=6, horizons=(1,), chunk=8)
    models = {
        "x": ForecastConfig(model="chronos2", model_id=str(tiny_chronos2), context_length=64, cross_learning=True),
        "solo": ForecastConfig(model="chronos2", model_id=str(tiny_chronos2), context_length=64),
        "naive": ForecastConfig(model="naive"),
    }
    res = evaluate(frames, models, ec)
    assert res.origin_modes == {"x": "joint (shares across series)", "solo": "per-symbol", "naive": "per-symbol"}
    assert res.grids["x"].timestamps[-1] == frames["B"]["timestamp"].iloc[-2]  # B's last usable bar, for both symbols
    assert res.grids["solo"].timestamps_of("A")[-1] == frames["A"]["timestamp"].iloc[-2]
    apart = {"A": f["SYN0"].iloc[:120].reset_index(drop=True), "B": f["SYN1"].iloc[140:].reset_index(drop=True)}
    assert evaluate(apart, {"solo": models["solo"]}, ec).grid.counts == {"A": 6, "B": 6}
    with pytest.raises(DataError, match="no common origin for A, B") as err:
        evaluate(apart, {"x": models["x"]}, ec)
    assert "cross_learning = false" in err.value.hint
