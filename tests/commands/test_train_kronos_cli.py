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
    return ["train", "kronos", "--data-root", str(root), "--kronos-model", str(model_dir), "--kronos-tokenizer", str(tok_dir),
            "--kronos-context", "16", "--kronos-horizons", "1,3", "--kronos-sample-count", "2", "--kronos-top-k", "0",
            "--kronos-top-p", "0.95", "--kronos-temperature", "1.0", "--kronos-clip", "5", "--lookback", "8", "--horizon", "4",
            "--batch-windows", "2", "--hidden-size", "8", "--steps", "2", "--eval-interval", "2", "--device", "cpu",
            "--save-dir", str(tmp_path / "runs"), *extra]


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
    assert res.exit_code == 1 and "horizons" in res.output
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
