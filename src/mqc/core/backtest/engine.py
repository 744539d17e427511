"""The vectorised backtest engine: target weights -> executed weights, costs, equity, metrics.

Every figure comes from the shared market model (``mqc.core.market.simulator``) run in float64 with
exact drift accounting, and from the one metrics module. The engine adds only what a replay needs
on top of it:

- **Timing.** Row t of ``weights`` is decided at the close of bar t with bars <= t and is executed at
  that close; it earns the return from close t to close t+1 (next-bar execution by construction:
  no row can trade on a price it has not seen). The last bar earns nothing (the backtest ends at its
  close): it has no holding period, so it pays no financing, earns no cash interest and does not
  count toward the years of the CAGR. The first bar starts from cash.
- **Holding (NaN).** A NaN target means "no order": the asset keeps its drifted weight (its position
  in shares is unchanged). Weights files use this between their rows.
- **Stale bars.** Where ``panel.filled[t, a]`` (no real bar: the close was forward-filled), asset a
  is not traded at t: its target is replaced by NaN, so it is held at its drifted weight.
- **Held positions, caps and shorting.** The execution rules of ``mqc.core.market.fills``: a held
  position is never traded or rescaled; the traded assets are constrained (shorting rules, the
  intraday/overnight leverage caps, with ``overnight_mask`` of the evaluated timestamps) and scaled
  into the leverage room the held ones leave. A bar holding some asset is filled by ``fills.step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.data.panel import Panel
from mqc.core.dates import iso_seconds
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import constrain_weights, step
from mqc.core.market.simulator import (
    SimResult,
    bar_years,
    drifted_weights,
    fee_rates,
    overnight_mask,
    simple_returns,
    simulate,
)
from mqc.core.metrics import compute_metrics, drawdown, equity_curve

_SERIES = (
    "net_returns",
    "gross_returns",
    "costs",
    "financing",
    "turnover",
    "gross_leverage",
    "long_exposure",
    "short_exposure",
)


@dataclass
class BacktestResult:
    """One replay over ``timestamps`` (``[T]``) and ``symbols`` (``A``): per-bar arrays and metrics."""

    timestamps: np.ndarray  # datetime64[ns] [T]
    symbols: tuple[str, ...]
    target_weights: np.ndarray  # [T, A] as requested (NaN: hold)
    weights: np.ndarray  # [T, A] executed (held from close t to close t+1)
    trades: np.ndarray  # [T, A] executed minus pre-trade (drifted) weights
    net_returns: np.ndarray  # [T] after costs and financing
    gross_returns: np.ndarray
    costs: np.ndarray
    financing: np.ndarray
    turnover: np.ndarray
    gross_leverage: np.ndarray
    long_exposure: np.ndarray
    short_exposure: np.ndarray
    overnight: np.ndarray  # bool [T]: the position held from t crosses a UTC day boundary
    bars_per_year: float
    metrics: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def equity(self) -> np.ndarray:
        """Wealth after each bar (at close t+1), starting from 1.0."""
        return equity_curve(self.net_returns)

    @property
    def drawdown(self) -> np.ndarray:
        return drawdown(self.net_returns)

    @property
    def rewards(self) -> np.ndarray:
        """Per-bar log growth ``log(1 + net)`` (the reward of the RL and dm trainers)."""
        return np.log1p(self.net_returns)

    @property
    def overnight_leverage(self) -> np.ndarray:
        """Gross leverage carried across a day boundary (0 on bars that stay within a session)."""
        return np.where(self.overnight, self.gross_leverage, 0.0)


def resolve_bounds(timestamps: np.ndarray, start: Any = None, end: Any = None) -> tuple[int, int]:
    """Index range ``[lo, hi)`` for ``start``/``end``.

    Integers are positions (half-open, like a slice); strings and datetimes are UTC timestamps,
    both inclusive (a plain date as ``end`` includes that whole day).

    Raises:
        DataError: when the range holds no bar.
    """
    import pandas as pd

    n = len(timestamps)
    ts = np.asarray(timestamps).astype("datetime64[ns]")

    def stamp(v: Any, is_end: bool) -> np.datetime64:
        t = pd.Timestamp(v)
        t = t.tz_convert("UTC").tz_localize(None) if t.tzinfo is not None else t
        if is_end and isinstance(v, str) and len(v.strip()) <= 10:
            t = t + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        return np.datetime64(t.to_datetime64(), "ns")

    if start is None:
        lo = 0
    elif isinstance(start, (int, np.integer)):
        lo = int(start) if start >= 0 else n + int(start)
    else:
        lo = int(np.searchsorted(ts, stamp(start, False), side="left"))
    if end is None:
        hi = n
    elif isinstance(end, (int, np.integer)):
        hi = int(end) if end >= 0 else n + int(end)
    else:
        hi = int(np.searchsorted(ts, stamp(end, True), side="right"))
    lo, hi = max(lo, 0), min(hi, n)
    if hi <= lo:
        first = iso_seconds(ts[0]) if n else "-"
        last = iso_seconds(ts[-1]) if n else "-"
        raise DataError(
            f"no bars between start={start!r} and end={end!r} (data covers {first} .. {last})",
            hint="choose --start/--end inside the data range (or another --split)",
        )
    return lo, hi


def run_backtest(
    panel: Panel,
    weights: np.ndarray,
    market_config: MarketConfig,
    *,
    start: Any = None,
    end: Any = None,
    bars_per_year: float | None = None,
) -> BacktestResult:
    """Replay target weights through the shared market model (see the module docstring for timing).

    Args:
        panel: aligned bars; ``weights`` rows follow its timestamps and columns its symbols.
        weights: ``[T, A]`` target weights (row t decided at close t; NaN = no order, hold).
        market_config: costs, financing and constraints.
        start, end: evaluate only this range (see ``resolve_bounds``); weights before ``start`` are
            ignored and the range starts from cash.
        bars_per_year: annualisation (default: the whole panel's observed bars per year).
    Returns:
        BacktestResult over the evaluated range.
    Raises:
        DataError: wrong shape or non-finite (other than NaN) weights, or an empty range.
    """
    w_all = np.asarray(weights, dtype=np.float64)
    if w_all.shape != (len(panel), panel.n_assets):
        raise DataError(
            f"weights have shape {w_all.shape}, expected {(len(panel), panel.n_assets)} (bars x symbols of the panel)",
            hint="give one row per bar and one column per symbol, in the panel's order",
        )
    if np.isinf(w_all).any():
        t, a = np.argwhere(np.isinf(w_all))[0]
        raise DataError(f"weight for {panel.symbols[a]} at {iso_seconds(panel.timestamps[t])} is infinite")
    lo, hi = resolve_bounds(panel.timestamps, start, end)
    ts = panel.timestamps[lo:hi]
    targets = w_all[lo:hi].copy()
    targets[panel.filled[lo:hi]] = np.nan
    returns = simple_returns(panel.close[lo:hi])
    fees = fee_rates(panel.asset_classes, market_config)
    dt = bar_years(ts)
    dt[-1] = 0.0  # the segment ends at the last close: nothing is held past it, nothing financed
    overnight = overnight_mask(ts)
    executed, sim = execute(targets, returns, fees, dt, overnight, panel.asset_classes, market_config)
    before = np.zeros_like(executed)
    if len(ts) > 1:
        before[1:] = drifted_weights(executed[:-1], returns[:-1], sim.net_returns[:-1])
    bpy = float(bars_per_year if bars_per_year is not None else panel.bars_per_year)
    metrics = compute_metrics(
        sim.net_returns, bpy, turnover=sim.turnover, gross_leverage=sim.gross_leverage, final_bar_held=False
    )
    return BacktestResult(
        timestamps=ts,
        symbols=panel.symbols,
        target_weights=targets,
        weights=executed,
        trades=executed - before,
        overnight=overnight,
        bars_per_year=bpy,
        metrics=metrics,
        **{name: np.asarray(getattr(sim, name)) for name in _SERIES},
    )


def execute(
    targets: np.ndarray,
    returns: np.ndarray,
    fees: np.ndarray,
    dt: np.ndarray,
    overnight: np.ndarray,
    asset_classes: tuple[str, ...],
    config: MarketConfig,
) -> tuple[np.ndarray, SimResult]:
    """Constrain targets and simulate them exactly; NaN targets hold the drifted weight.

    Runs without a NaN are simulated in one vectorised call; a bar holding some asset needs the
    realised book of the bar before, so it is filled on its own by ``mqc.core.market.fills.step``
    (exact drift). Returns the executed ``[T, A]`` weights and the SimResult.
    """
    T, A = targets.shape
    hold = np.isnan(targets)
    hold_rows = np.flatnonzero(hold.any(axis=1))
    if hold_rows.size == 0:
        w = constrain_weights(targets, asset_classes, config, overnight)
        return w, simulate(w, returns, fees, dt, config, exact=True)
    executed = np.empty((T, A))
    series = {name: np.empty(T) for name in _SERIES}
    book = np.zeros(A)  # pre-trade weights at the current bar
    t = 0
    while t < T:
        if hold[t].any():
            f = step(book, targets[t], hold[t], returns[t], fees, dt[t], bool(overnight[t]), asset_classes, config)
            executed[t] = f.weights
            for name in _SERIES:
                series[name][t] = getattr(f.bar, name)
            book = f.book
            t += 1
            continue
        k = int(np.searchsorted(hold_rows, t))
        stop = int(hold_rows[k]) if k < hold_rows.size else T
        w = constrain_weights(targets[t:stop], asset_classes, config, overnight[t:stop])
        sim = simulate(w, returns[t:stop], fees, dt[t:stop], config, prev_weights=book, exact=True)
        executed[t:stop] = w
        for name in _SERIES:
            series[name][t:stop] = getattr(sim, name)
        book = drifted_weights(w[-1:], returns[stop - 1 : stop], sim.net_returns[-1:])[0]
        t = stop
    return executed, SimResult(**series)
