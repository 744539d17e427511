"""Weights files: targets on forward-filled bars wait for the asset's next real bar, and a segment
starts from the target in force at its first bar (not from cash)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.runner import run_weights_backtest
from mqc.core.data.config import DataConfig

FAST = BacktestConfig(window_length=16, stride=8, bootstrap_samples=0, plots=False, write_trades=False)


@pytest.fixture
def mixed_root(synth, tmp_path) -> Path:
    """A 7-day crypto pair and a weekday equity: the equity's weekend bars are forward-filled."""
    frames = synth(n_assets=2, n_bars=300, seed=5)
    root = tmp_path / "bars"
    root.mkdir()
    crypto, equity = frames["SYN0"], frames["SYN1"]
    crypto.to_csv(root / "XXXUSDT.csv", index=False)
    days = pd.to_datetime(equity["timestamp"], utc=True).dt.day_of_week
    equity[days < 5].to_csv(root / "EQ.csv", index=False)
    return root


def _write(path: Path, rows: list[tuple[pd.Timestamp, float, float]]) -> Path:
    path.write_text("timestamp,XXXUSDT,EQ\n" + "".join(f"{t:%Y-%m-%d},{a},{b}\n" for t, a, b in rows))
    return path


def _panel_days(rep) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(rep.result.timestamps)


def test_target_on_a_filled_bar_trades_at_the_next_real_bar(mixed_root, tmp_path) -> None:
    data = DataConfig(data_root=str(mixed_root), symbols=("XXXUSDT", "EQ"))
    probe = run_weights_backtest(
        _probe(mixed_root, tmp_path), data, dataclasses.replace(FAST, split="all"), write=False
    )
    ts = _panel_days(probe)
    sat = int(np.flatnonzero(ts.day_of_week == 5)[2])  # a Saturday: EQ's bar is forward-filled
    mon = sat + 2
    path = _write(tmp_path / "w.csv", [(ts[sat], 0.5, 0.5), (ts[sat + 20], 0.5, 0.5)])
    # from the panel's first bar (by default the segment would start at the file's first row)
    rep = run_weights_backtest(
        path, data, dataclasses.replace(FAST, split="all", start=f"{ts[0]:%Y-%m-%d}"), write=False
    )
    w = rep.result.weights
    assert w[sat, 0] == pytest.approx(0.5) and w[sat, 1] == 0.0  # crypto trades on Saturday, EQ cannot
    assert w[sat + 1, 1] == 0.0
    assert w[mon, 1] > 0.45  # the pending EQ target is filled on Monday (not held at 0 until the next row)
    assert rep.source["deferred_targets"] >= 1 and rep.source["unexecuted_targets"] == 0


def _probe(root: Path, tmp_path: Path) -> Path:
    first = pd.read_csv(root / "XXXUSDT.csv")["timestamp"].iloc[0]
    path = tmp_path / "probe.csv"
    path.write_text(f"timestamp,XXXUSDT,EQ\n{pd.Timestamp(first):%Y-%m-%d},0,0\n")
    return path


def test_segment_starts_from_the_target_in_force(synth, tmp_path) -> None:
    frames = synth(n_assets=2, n_bars=300, seed=6)
    root = tmp_path / "bars"
    root.mkdir()
    for s, f in frames.items():
        f.to_csv(root / f"{s}.csv", index=False)
    t0 = pd.Timestamp(frames["SYN0"]["timestamp"].iloc[0])
    path = tmp_path / "w.csv"
    path.write_text(f"timestamp,SYN0,SYN1\n{t0:%Y-%m-%d},0.6,0.4\n")
    data = DataConfig(data_root=str(root))
    rep = run_weights_backtest(path, data, dataclasses.replace(FAST, split="test"), write=False)
    w = rep.result.weights
    assert rep.segment["start_bar"] > 0
    np.testing.assert_allclose(w[0], [0.6, 0.4])  # bought at the segment's first bar, then held
    assert rep.metrics["exposure"] > 0.99
    assert np.abs(rep.result.trades[1:]).max() < 1e-12
    assert rep.source["carried_into_segment"] == 2
    late = run_weights_backtest(
        path, data, dataclasses.replace(FAST, split="all", start=f"{t0 + pd.Timedelta(days=50):%Y-%m-%d}"), write=False
    )
    np.testing.assert_allclose(late.result.weights[0], [0.6, 0.4])
