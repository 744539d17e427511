"""The one metrics module: every figure mqc reports (training evals, backtests, benchmarks) comes
from here. Returns compound; annualisation uses the panel's observed bars per year; Sharpe and
Sortino assume a zero risk-free rate (cash_rate, if any, is already in the net returns)."""

from __future__ import annotations

import math

import numpy as np

METRIC_NAMES = (
    "total_return",
    "annual_return",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
    "exposure",
    "hit_rate",
    "n_bars",
)


def equity_curve(net_returns: np.ndarray) -> np.ndarray:
    """Wealth after each bar from 1.0: cumulative product of (1 + r)."""
    return np.cumprod(1.0 + np.asarray(net_returns, dtype=np.float64), axis=-1)


def drawdown(net_returns: np.ndarray) -> np.ndarray:
    """Drawdown after each bar, as a fraction below the running peak (<= 0); the start counts as a peak."""
    eq = equity_curve(net_returns)
    peak = np.maximum.accumulate(np.concatenate([np.ones(eq.shape[:-1] + (1,)), eq], axis=-1), axis=-1)[..., 1:]
    return eq / peak - 1.0


def max_drawdown(net_returns: np.ndarray) -> float:
    r = np.asarray(net_returns, dtype=np.float64)
    return float(-drawdown(r).min()) if r.size else 0.0


def holding_returns(net_returns: np.ndarray, *, final_bar_held: bool = True) -> np.ndarray:
    """The per-period returns that per-period statistics (volatility, Sharpe, tests) should see.

    With ``final_bar_held=False`` (a backtest segment) the last bar is no holding period (it can
    only pay the cost of a final trade): it is folded into the bar before, so wealth is unchanged
    and the statistics see n - 1 periods.
    """
    r = np.asarray(net_returns, dtype=np.float64)
    if final_bar_held or r.size < 2:
        return r
    return np.concatenate([r[:-2], [(1.0 + r[-2]) * (1.0 + r[-1]) - 1.0]])


def sharpe(net_returns: np.ndarray, bars_per_year: float) -> float:
    r = np.asarray(net_returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    sd = r.std(ddof=1)
    return float(r.mean() / sd * math.sqrt(bars_per_year)) if sd > 1e-15 else 0.0


def sortino(net_returns: np.ndarray, bars_per_year: float) -> float:
    r = np.asarray(net_returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    return float(r.mean() / downside * math.sqrt(bars_per_year)) if downside > 1e-15 else 0.0


def compute_metrics(
    net_returns: np.ndarray,
    bars_per_year: float,
    *,
    turnover: np.ndarray | None = None,
    gross_leverage: np.ndarray | None = None,
    final_bar_held: bool = True,
) -> dict[str, float]:
    """All standard metrics for one series of per-bar net returns.

    ``total_return`` is compounded; ``annual_return`` is the CAGR implied by the number of held
    bars and ``bars_per_year``. With ``final_bar_held=False`` (a backtest segment: its last bar
    only trades at the close and earns nothing) that bar's return (a final trade's cost, if any)
    is folded into the bar before: it counts neither toward the years nor as a period of the
    volatility, Sharpe, Sortino and hit rate; ``n_bars`` still counts it. ``volatility`` is
    annualised; ``turnover`` and ``exposure`` are per-bar means of sum |trade| and gross leverage; ``hit_rate`` is the
    share of bars with a positive return
    among bars with a non-zero one.
    """
    r = np.asarray(net_returns, dtype=np.float64)
    n = int(r.size)
    if n == 0:
        return {k: 0.0 for k in METRIC_NAMES}
    growth = float(np.prod(1.0 + r))
    total = growth - 1.0
    mdd = max_drawdown(r)
    r = holding_returns(r, final_bar_held=final_bar_held)
    years = r.size / bars_per_year
    annual = growth ** (1.0 / years) - 1.0 if growth > 0 and years > 0 else -1.0
    vol = float(r.std(ddof=1) * math.sqrt(bars_per_year)) if r.size > 1 else 0.0
    nonzero = r[np.abs(r) > 1e-15]
    return {
        "total_return": total,
        "annual_return": float(annual),
        "volatility": vol,
        "sharpe": sharpe(r, bars_per_year),
        "sortino": sortino(r, bars_per_year),
        "max_drawdown": mdd,
        "calmar": float(annual / mdd) if mdd > 1e-12 else 0.0,
        "turnover": float(np.mean(turnover)) if turnover is not None and np.size(turnover) else 0.0,
        "exposure": float(np.mean(gross_leverage)) if gross_leverage is not None and np.size(gross_leverage) else 0.0,
        "hit_rate": float((nonzero > 0).mean()) if nonzero.size else 0.0,
        "n_bars": n,
    }
