"""``mqc train kronos`` end to end with tiny random Kronos checkpoints saved by the test."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mqc.cli import app


@pytest.fixture
def setup(tmp_path: Path, synth, monkeypatch: pytest.MonkeyPatch):
    from mqc.core.forecast.kronos.presets import save_random

    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=2, n_bars=140, seed=4).items():
        out = df.copy()
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(root / f"{sym}.csv", index=False)
    model_dir, tok_dir = save_random(tmp_path / "kronos", "tiny", seed=1)
    # small candle features so 140 bars are enough
    monkeypatch.setenv("MQC_FEATURES_VOL_WINDOWS", "5")
    monkeypatch.setenv("MQC_FEATURES_MOMENTUM_WINDOWS", "5,10")
    monkeypatch.setenv("MQC_FEATURES_VOLUME_WINDOW", "5")
    return root, model_dir, tok_dir, tmp_path


def _args(root, model_dir, tok_dir, tmp_path, *extra):
    return [
        "train",
        "kronos",
        "--data-root",
        str(root),
        "--kronos-model",
        str(model_dir),
        "--kronos-tokenizer",
        str(tok_dir),
        "--kronos-context",
        "16",
        "--kronos-horizons",
        "1,3",
        "--kronos-sample-count",
        "2",
        "--kronos-top-k",
        "0",
        "--kronos-top-p",
        "0.95",
        "--kronos-temperature",
        "1.0",
        "--kronos-clip",
        "5",
        "--lookback",
        "8",
        "--horizon",
        "4",
        "--batch-windows",
        "2",
        "--hidden-size",
        "8",
        "--steps",
        "2",
        "--eval-interval",
        "2",
        "--device",
        "cpu",
        "--save-dir",
        str(tmp_path / "runs"),
        *extra,
    ]


def test_train_kronos_writes_a_dm_run_that_replays(setup):
    root, model_dir, tok_dir, tmp_path = setup
    res = CliRunner().invoke(app, _args(root, model_dir, tok_dir, tmp_path, "--json"))
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    run = Path(doc["run_dir"])
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kind"] == "dm"
    spec = [p for p in cfg["feature_providers"] if p["name"] == "kronos"][0]["settings"]
    assert spec["horizons"] == [1, 3] and spec["context"] == 16 and spec["top_p"] == 0.95
    assert Path(spec["model_path"]) == model_dir
    # features were cached on disk; the checkpoint rebuilds the provider and replays the policy
    cache = list((tmp_path / "mqc-cache" / "kronos_features").glob("*.npz"))
    assert len(cache) == 2
    from mqc.core.data.config import DataConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.policy.strategy import load_strategy

    strat = load_strategy(run)
    assert [p.name for p in strat.providers] == ["kronos"]
    panel = load_panel(config=DataConfig(data_root=str(root)))
    w = strat.target_weights(panel)
    assert w.shape == (len(panel), 2) and np.isfinite(w).all() and np.abs(w).sum() > 0
    names = json.loads((run / "config.json").read_text())
    assert names["feature_providers"][0]["name"] == "kronos"


def test_missing_weights_and_bad_flags_fail_cleanly(setup):
    root, model_dir, tok_dir, tmp_path = setup
    res = CliRunner().invoke(app, _args(root, tmp_path / "missing", tok_dir, tmp_path))
    text = " ".join(res.output.split())
    assert res.exit_code == 1
    assert "hf download" in text and "does not exist" in text
    res = CliRunner().invoke(app, _args(root, model_dir, tok_dir, tmp_path, "--kronos-horizons", "0,4"))
    assert res.exit_code == 2 and "horizons" in res.output  # bad flag value
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_every_train_dm_option_is_a_train_kronos_option():
    import inspect

    from mqc.commands.train.dm import dm
    from mqc.commands.train.kronos import kronos

    dm_params = inspect.signature(dm).parameters
    kr_params = inspect.signature(kronos).parameters
    missing = sorted(set(dm_params) - set(kr_params))
    assert not missing, f"train kronos lacks train dm options: {missing}"
    from mqc.commands._options import bindings

    dm_sets, kr_sets = bindings(dm), bindings(kronos)
    for name, p in dm_params.items():
        if name == "ctx":
            continue
        assert kr_sets[name] == dm_sets[name], name  # the same config field
        # same flag spellings (e.g. --muon/--no-muon, -k) and the same enum types
        assert kr_params[name].default.param_decls == p.default.param_decls, name
        assert kr_params[name].annotation == p.annotation, name


def test_train_dm_flags_reach_the_run_config(setup):
    root, model_dir, tok_dir, tmp_path = setup
    res = CliRunner().invoke(
        app,
        _args(
            root,
            model_dir,
            tok_dir,
            tmp_path,
            "--objective",
            "pathwise",
            "--rollout-groups",
            "4",
            "--microbatch-windows",
            "2",
            "--reward",
            "sharpe",
            "--entropy-coef",
            "0.01",
            "--no-muon",
            "--dtype",
            "fp32",
            "--json",
        ),
    )
    assert res.exit_code == 0, res.output
    train = json.loads((Path(json.loads(res.stdout)["run_dir"]) / "config.json").read_text())["configs"]["dm"]
    expected = {
        "objective": "pathwise",
        "rollout_groups": 4,
        "microbatch_windows": 2,
        "reward": "sharpe",
        "entropy_coef": 0.01,
        "muon": False,
        "dtype": "fp32",
        "batch_windows": 2,
        "hidden_size": 8,
    }
    for key, value in expected.items():
        assert train[key] == {"value": value, "source": "flag"}, key
    assert train["kl_coef"]["source"] == "default"


def test_resume_refuses_other_options(setup):
    root, model_dir, tok_dir, tmp_path = setup
    res = CliRunner().invoke(
        app, ["train", "kronos", "--resume", str(tmp_path / "run"), "--kronos-horizons", "1,3", "--objective", "grpo"]
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 1
    assert "--kronos-horizons" in text and "--objective" in text
    res = CliRunner().invoke(app, ["train", "kronos", "--objective", "nope"])
    assert res.exit_code == 2
