"""Benchmarks, significance, walk-forward windows, golden metrics and the report files."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from mqc.core.backtest.benchmarks import benchmark_weights, rebalance_mask, run_benchmarks, trailing_vol
from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.engine import run_backtest
from mqc.core.backtest.report import evaluate, write_report
from mqc.core.backtest.significance import (
    probabilistic_sharpe,
    sharpe_significance,
    stationary_bootstrap_indices,
)
from mqc.core.backtest.walkforward import WINDOWS_KIND, rolling_windows
from mqc.core.errors import ConfigError, DataError
from mqc.core.market.config import MarketConfig

ROOT = Path(__file__).resolve().parents[3]


def _golden_module():
    spec = importlib.util.spec_from_file_location(
        "regen_golden_backtest", ROOT / "scripts" / "regen_golden_backtest.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), path
        for k in a:
            _close(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _close(x, y, f"{path}[{i}]")
    elif isinstance(a, str) or a is None or isinstance(a, bool):
        # pytest.approx refuses strings (pytest >= 9.1); exact values compare exactly.
        assert a == b, path
    else:
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), path


def test_golden_metrics():
    mod = _golden_module()
    golden = json.loads(mod.GOLDEN.read_text())
    _close(mod.compute(), golden)


def test_significance_tests_the_sharpe_the_table_shows():
    # The table's Sharpe folds the segment's last bar (no holding period) into the one before; the
    # bootstrap, PSR and DSR must be about that same figure, for the strategy and for 1/N.
    golden = _golden_module().compute()
    sig = golden["significance"]
    assert sig["sharpe"] == pytest.approx(golden["metrics"]["sharpe"], rel=1e-12)
    assert sig["benchmark_sharpe"] == pytest.approx(golden["benchmarks"]["equal_weight"]["sharpe"], rel=1e-12)


def test_benchmarks_behave(synth_panel):
    panel = synth_panel(n_assets=3, n_bars=300, seed=2)
    res = run_benchmarks(panel, 100, 300, MarketConfig(cash_rate=0.0), inv_vol_window=20)
    assert np.allclose(res["cash"].equity, 1.0)
    bh = res["buy_and_hold"]
    assert bh.turnover[0] == pytest.approx(1.0)
    assert bh.turnover[1] < 1e-3 and bh.turnover[5:].max() < 1e-12  # drifts; bar 1 only settles the entry fee
    growth = panel.close[100:300] / panel.close[100]
    np.testing.assert_allclose(bh.weights[50], growth[50] / growth[50].sum(), rtol=1e-12)
    ew = res["equal_weight"]
    np.testing.assert_allclose(ew.weights, 1.0 / 3.0, atol=1e-12)
    assert ew.turnover[1:].min() > 0  # daily bars: rebalanced every bar
    iv = benchmark_weights("inverse_vol", panel, 100, 300, inv_vol_window=20)
    vol = trailing_vol(panel.close, 20)[100]
    np.testing.assert_allclose(iv[100], (1 / vol) / (1 / vol).sum(), rtol=1e-12)


def test_inverse_vol_is_causal(synth_panel):
    panel = synth_panel(n_assets=3, n_bars=300, seed=3)
    before = benchmark_weights("inverse_vol", panel, 50, 300, inv_vol_window=30)
    panel.values[201:] *= 1.3 + np.random.default_rng(0).uniform(0, 1, size=panel.values[201:].shape)
    after = benchmark_weights("inverse_vol", panel, 50, 300, inv_vol_window=30)
    np.testing.assert_array_equal(before[:201], after[:201])


def test_intraday_rebalances_daily():
    ts = np.arange(np.datetime64("2024-01-01T00:00"), np.datetime64("2024-01-03T00:00"), np.timedelta64(1, "h"))
    mask = rebalance_mask(ts, "1h")
    assert mask.sum() == 2 and mask[0] and mask[24]
    assert rebalance_mask(ts, "1h", every=5).sum() == 10


def test_significance_figures():
    rng = np.random.default_rng(0)
    bench = rng.normal(0.0003, 0.01, 2000)
    strong = bench + rng.normal(0.002, 0.002, 2000)
    sig = sharpe_significance(strong, bench, 252, samples=400, seed=1)
    assert sig["sharpe_diff"] > 2 and sig["p_value"] < 0.01
    assert sig["ci_low"] < sig["sharpe_diff"] < sig["ci_high"]
    same = sharpe_significance(bench, bench, 252, samples=200, seed=1)
    assert same["sharpe_diff"] == 0 and same["p_value"] > 0.5
    # PSR of a normal series: Phi(SR sqrt(n-1) / sqrt(1 + SR^2 / 2)) with g3 = 0, g4 = 3
    sr, n = 0.1, 500
    expected = 0.5 * (1 + math.erf(sr * math.sqrt(n - 1) / math.sqrt(1 + sr * sr / 2) / math.sqrt(2)))
    assert probabilistic_sharpe(sr, 0.0, n, 0.0, 3.0) == pytest.approx(expected, rel=1e-12)
    more_trials = sharpe_significance(strong, bench, 252, samples=0, n_trials=100)
    assert more_trials["dsr"] <= sig["dsr"] and more_trials["p_value"] is None


def test_bootstrap_indices_are_blocks():
    idx = stationary_bootstrap_indices(50, 20, 8.0, np.random.default_rng(0))
    assert idx.shape == (20, 50) and idx.min() >= 0 and idx.max() < 50
    steps = (np.diff(idx, axis=1) % 50) == 1
    assert steps.mean() > 0.75  # mostly consecutive: blocks of mean length 8


def test_rolling_windows(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=300, seed=4)
    res = run_backtest(panel, np.full((300, 2), 0.5), MarketConfig())
    windows, agg = rolling_windows(res, 100, 50)
    assert agg["windows"] == len(windows) == 5
    assert windows[-1]["end_bar"] == 300
    w0 = windows[0]
    assert w0["reward"] == pytest.approx(np.log1p(res.net_returns[:100]).sum())
    assert agg["max_drawdown_worst"] == max(w["max_drawdown"] for w in windows)
    # slices of one replay, labelled so; the best window is labelled as chosen in hindsight
    assert agg["windows_kind"] == WINDOWS_KIND == "rolling (overlapping) slices of one replay"
    assert agg["objective_best"] == max(w["objective"] for w in windows)
    assert "hindsight" in agg["objective_best_note"]
    with pytest.raises(DataError, match="longer than the 300 bars"):
        rolling_windows(res, 301, 64)


def test_config_validation():
    with pytest.raises(ConfigError, match="stride"):
        BacktestConfig(stride=0)
    with pytest.raises(ConfigError, match="cost_bps"):
        BacktestConfig(cost_bps=-1)


def test_report_files(synth_panel, tmp_path):
    panel = synth_panel(n_assets=3, n_bars=400, seed=5)
    w = np.full((400, 3), 0.3)
    cfg = BacktestConfig(split="all", window_length=100, stride=50, bootstrap_samples=50)
    report = evaluate(panel, w, MarketConfig(), cfg, source={"name": "flat"})
    out = write_report(report, tmp_path / "rep")
    data = json.loads((out / "report.json").read_text())
    for key in (
        "windows",
        "objective_mean",
        "reward_mean",
        "reward_std",
        "sharpe_mean",
        "turnover_mean",
        "cumulative_return_mean",
        "max_drawdown_worst",
        "objective_best",
        "metrics",
        "benchmarks",
        "significance",
        "market",
        "data",
        "windows_kind",
        "objective_best_note",
    ):
        assert key in data, key
    assert data["data"]["fingerprint"] == panel.fingerprint
    assert set(data["benchmarks"]) == {"cash", "buy_and_hold", "equal_weight", "inverse_vol"}
    assert len(json.loads((out / "windows.json").read_text())) == data["windows"] == 7
    lines = (out / "trades.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 400 and {
        "timestamp",
        "weights",
        "reward",
        "gross_leverage",
        "overnight_leverage",
        "costs",
    } <= set(first)
    header = (out / "equity.csv").read_text().splitlines()[0]
    assert header == "timestamp,strategy,cash,buy_and_hold,equal_weight,inverse_vol,strategy_drawdown"
    for png in ("equity.png", "weights.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob(".*.tmp"))
