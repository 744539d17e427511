"""One engine, one set of numbers: a run's report.json test metrics equal what ``mqc backtest``
(``run_checkpoint_backtest``) computes for the same checkpoint on the test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.runner import run_checkpoint_backtest
from mqc.core.data.config import DataConfig, FeatureConfig
from mqc.core.market.config import MarketConfig
from mqc.core.train.api import train_dm, train_sharpe
from mqc.core.train.config import DMTrainConfig, SharpeTrainConfig

FEATS = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)
KEYS = ("sharpe", "total_return", "turnover", "max_drawdown", "annual_return", "volatility")


def _bars(synth, root: Path, **kw) -> Path:
    root.mkdir(parents=True)
    for sym, df in synth(**kw).items():
        df.to_csv(root / f"{sym}.csv", index=False)
    return root


def _assert_same_numbers(run_dir: Path, market: MarketConfig) -> None:
    report = json.loads((run_dir / "report.json").read_text())
    lo, hi = report["test_bars"]
    cfg = BacktestConfig(split="test", window_length=hi - lo, bootstrap_samples=0)
    bt = run_checkpoint_backtest(run_dir, DataConfig(), cfg, write=False)
    assert (bt.segment["start_bar"], bt.segment["end_bar"]) == (lo, hi)
    assert bt.segment["split_source"] == "checkpoint"
    for key in KEYS:
        assert bt.metrics[key] == pytest.approx(report["test_metrics"][key], rel=1e-9, abs=1e-12), key
    for name, m in report["test_baselines"].items():
        for key in KEYS:
            assert bt.benchmarks[name].metrics[key] == pytest.approx(m[key], rel=1e-9, abs=1e-12), (name, key)


def test_dm_report_equals_backtest_of_the_checkpoint(synth, tmp_path) -> None:
    # Costs high enough that the exact vs first-order drift (the old evaluator) would show.
    market = MarketConfig().with_cost(25.0, 5.0)
    root = _bars(synth, tmp_path / "bars", n_assets=3, n_bars=360, seed=5, drift=(0.8, 0.0, -0.3), annual_vol=0.25)
    cfg = DMTrainConfig(
        lookback=16,
        horizon=8,
        batch_windows=4,
        rollout_groups=4,
        hidden_size=16,
        steps=6,
        eval_interval=3,
        objective="pathwise",
        save_dir=str(tmp_path / "runs"),
    )
    res = train_dm(DataConfig(data_root=str(root)), market, cfg, feature_cfg=FEATS)
    assert res.test_metrics["turnover"] > 0
    _assert_same_numbers(res.run_dir, market)


def test_sharpe_report_equals_backtest_of_the_checkpoint(synth, tmp_path) -> None:
    root = _bars(synth, tmp_path / "bars", n_assets=2, n_bars=300, seed=6)
    cfg = SharpeTrainConfig(
        lookback=4,
        horizon=32,
        batch_windows=4,
        hidden_size=8,
        steps=4,
        eval_interval=2,
        save_dir=str(tmp_path / "runs"),
    )
    res = train_sharpe(DataConfig(data_root=str(root)), MarketConfig(), cfg, feature_cfg=FEATS)
    _assert_same_numbers(res.run_dir, MarketConfig())
