"""Regenerate tests/core/backtest/golden_backtest.json: metrics of a fixed weight path on a fixed
synthetic panel, for the strategy, every benchmark and the significance figures.

Run after an intended change to the engine, market model or metrics, and review the diff:

    python scripts/regen_golden_backtest.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "core" / "backtest" / "golden_backtest.json"


def golden_case():
    """(panel, weights, market, backtest config) of the golden run. Changing this changes the numbers."""
    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.data.panel import align_frames
    from mqc.core.data.synth import SynthSpec, synth_ohlcv
    from mqc.core.market.config import MarketConfig

    panel = align_frames(synth_ohlcv(SynthSpec(n_assets=4, n_bars=600, seed=123, drift=(0.08, 0.02, -0.03, 0.05))))
    close = panel.close
    fast = np.cumsum(close, axis=0)
    slow = fast.copy()
    fast[10:] -= fast[:-10].copy()
    slow[40:] -= slow[:-40].copy()
    signal = (fast / 10 > slow / 40).astype(float)  # SMA(10) > SMA(40), causal
    signal[:40] = 0.0
    n_long = signal.sum(axis=1, keepdims=True)
    weights = np.divide(signal, n_long, out=np.zeros_like(signal), where=n_long > 0) * 0.9
    market = MarketConfig(equity_fee_bps=2.0, slippage_bps=3.0, cash_rate=0.01)
    config = BacktestConfig(split="all", window_length=128, stride=64, bootstrap_samples=300, seed=7)
    return panel, weights, market, config


def compute() -> dict:
    from mqc.core.backtest.report import evaluate

    panel, weights, market, config = golden_case()
    report = evaluate(panel, weights, market, config)
    return {
        "metrics": report.result.metrics,
        "aggregates": report.aggregates,
        "benchmarks": {name: r.metrics for name, r in report.benchmarks.items()},
        "significance": {k: v for k, v in report.significance.items() if isinstance(v, (int, float)) and v is not None},
        "final_equity": float(report.result.equity[-1]),
    }


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps(compute(), indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
