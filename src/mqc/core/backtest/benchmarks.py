"""Benchmark strategies, replayed through the same engine as the strategy under test.

All four are long-only target-weight paths over the evaluated segment ``[lo, hi)`` of a panel:

- ``cash``: all weights 0 (earns ``cash_rate`` if any).
- ``buy_and_hold``: 1/N bought at the first bar and never rebalanced; weights drift with prices,
  ``w_t,a = P_t,a / P_lo,a / sum_b P_t,b / P_lo,b``.
- ``equal_weight``: rebalanced to 1/N on rebalance bars, drifting in between.
- ``inverse_vol``: rebalanced to ``1/sigma_a`` (normalised) on rebalance bars, where sigma_a is the
  standard deviation of close-to-close log returns over the trailing ``inv_vol_window`` bars ending
  at the rebalance bar (causal); 1/N while the window is not yet full.

Rebalance bars: the segment's first bar, then every ``rebalance_every`` bars, or with 0 (auto) the
first bar of each UTC day for intraday data and every bar for daily and longer bars. Between
rebalances the target is the drifted weight, so the engine trades (almost) nothing.
"""

from __future__ import annotations

import numpy as np

from mqc.core.backtest.engine import BacktestResult, run_backtest
from mqc.core.data.panel import Panel
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.market.config import MarketConfig

BENCHMARKS = ("cash", "buy_and_hold", "equal_weight", "inverse_vol")
BENCHMARK_LABELS = {
    "cash": "cash",
    "buy_and_hold": "buy & hold 1/N",
    "equal_weight": "rebalanced 1/N",
    "inverse_vol": "inverse vol",
}


def rebalance_mask(timestamps: np.ndarray, timeframe: str, every: int = 0) -> np.ndarray:
    """Bool ``[T]``: True on the bars where a benchmark rebalances (see module docstring)."""
    n = len(timestamps)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    if every > 0:
        mask[::every] = True
    elif parse_timeframe(timeframe) < 86400:
        days = np.asarray(timestamps).astype("datetime64[D]")
        mask[1:] = days[1:] != days[:-1]
    else:
        mask[:] = True
    mask[0] = True
    return mask


def _drift_between(base: np.ndarray, close: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Targets equal to ``base`` on rebalance bars and to its drifted value in between."""
    idx = np.arange(len(close))
    last = np.maximum.accumulate(np.where(mask, idx, 0))
    grown = base[last] * (close / close[last])
    total = grown.sum(axis=1, keepdims=True)
    return np.divide(grown, total, out=np.zeros_like(grown), where=total > 0)


def trailing_vol(close: np.ndarray, window: int) -> np.ndarray:
    """Std of close-to-close log returns over the ``window`` bars ending at t (NaN before that)."""
    lr = np.zeros_like(close)
    lr[1:] = np.log(close[1:] / close[:-1])
    c1 = np.cumsum(lr, axis=0)
    c2 = np.cumsum(lr * lr, axis=0)
    s1 = c1.copy()
    s2 = c2.copy()
    s1[window:] -= c1[:-window]
    s2[window:] -= c2[:-window]
    var = (s2 - s1 * s1 / window) / (window - 1)
    vol = np.sqrt(np.maximum(var, 0.0))
    vol[:window] = np.nan  # the window needs `window` returns, i.e. window + 1 closes
    return vol


def benchmark_weights(
    name: str,
    panel: Panel,
    lo: int,
    hi: int,
    *,
    rebalance_every: int = 0,
    inv_vol_window: int = 60,
) -> np.ndarray:
    """Target weights ``[T_panel, A]`` of benchmark ``name`` for the segment ``[lo, hi)`` (0 outside)."""
    T, A = len(panel), panel.n_assets
    out = np.zeros((T, A))
    if name == "cash" or A == 0:
        return out
    close = panel.close[lo:hi]
    n = hi - lo
    if name == "buy_and_hold":
        mask = np.zeros(n, dtype=bool)
        mask[0] = True
        base = np.full((n, A), 1.0 / A)
    else:
        mask = rebalance_mask(panel.timestamps[lo:hi], panel.timeframe, rebalance_every)
        base = np.full((n, A), 1.0 / A)
        if name == "inverse_vol":
            vol = trailing_vol(panel.close[:hi], inv_vol_window)[lo:hi]
            ok = np.isfinite(vol).all(axis=1) & (vol > 1e-12).all(axis=1)
            inv = np.where(ok[:, None], 1.0 / np.where(vol > 1e-12, vol, 1.0), 1.0)
            base = inv / inv.sum(axis=1, keepdims=True)
        elif name != "equal_weight":
            raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    out[lo:hi] = _drift_between(base, close, mask)
    return out


def run_benchmarks(
    panel: Panel,
    lo: int,
    hi: int,
    market_config: MarketConfig,
    *,
    rebalance_every: int = 0,
    inv_vol_window: int = 60,
    bars_per_year: float | None = None,
) -> dict[str, BacktestResult]:
    """Every benchmark of ``BENCHMARKS`` replayed over ``[lo, hi)`` with ``market_config``."""
    results = {}
    for name in BENCHMARKS:
        w = benchmark_weights(name, panel, lo, hi, rebalance_every=rebalance_every, inv_vol_window=inv_vol_window)
        results[name] = run_backtest(panel, w, market_config, start=lo, end=hi, bars_per_year=bars_per_year)
    return results
