"""Alignment warnings from load_panel (heavy forward-filling) reach the backtest report."""

from __future__ import annotations

import pandas as pd

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.runner import run_weights_backtest
from mqc.core.data.config import DataConfig


def test_forward_fill_warning_is_in_the_report(tmp_path, synth):
    crypto = synth(n_assets=1, n_bars=200, seed=1)["SYN0"]  # every calendar day
    equity = synth(n_assets=1, n_bars=140, seed=2, weekdays_only=True)["SYN0"]  # weekdays only
    root = tmp_path / "bars"
    root.mkdir()
    crypto.to_csv(root / "BTCUSDT.csv", index=False)
    equity.to_csv(root / "SPY.csv", index=False)
    stamps = pd.date_range(crypto["timestamp"].iloc[0], periods=4, freq="30D")
    pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d"), "BTCUSDT": 0.5, "SPY": 0.5}).to_csv(
        tmp_path / "w.csv", index=False
    )
    report = run_weights_backtest(
        tmp_path / "w.csv",
        DataConfig(data_root=str(root)),
        BacktestConfig(split="all", window_length=30, stride=30, bootstrap_samples=50),
        write=False,
    )
    warnings = report.segment.get("warnings", [])
    assert any(w.startswith("data:") and "SPY" in w for w in warnings), warnings
    # (a note that the panel mixes crypto and equity closes names both; it is not a fill warning)
    assert not any("BTCUSDT" in w and w.startswith("data:") and "mixes crypto" not in w for w in warnings)
