"""The one metrics module: every figure mqc reports (training evals, backtests, benchmarks) comes
from here. Returns compound; annualisation uses the panel's observed bars per year; Sharpe and
Sortino assume a zero risk-free rate (cash_rate, if any, is already in the net returns).

A figure that is undefined (non-finite returns, or a result that overflows: a price jumping to 1e308)
is NaN, shown as ``-`` in tables and ``null`` in JSON, never a number such as Sharpe 0.00; numpy's
floating-point warnings are silenced here so none reaches the user. Conventional defined cases keep
their values: a series with zero volatility (cash) has Sharpe 0.0."""

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


def defined(x: float) -> float:
    """``x`` as a float, or NaN when it is not finite (an undefined figure)."""
    x = float(x)
    return x if math.isfinite(x) else math.nan


def equity_curve(net_returns: np.ndarray) -> np.ndarray:
    """Wealth after each bar from 1.0: cumulative product of (1 + r) (inf once it overflows)."""
    with np.errstate(all="ignore"):
        return np.cumprod(1.0 + np.asarray(net_returns, dtype=np.float64), axis=-1)


def drawdown(net_returns: np.ndarray) -> np.ndarray:
    """Drawdown after each bar, as a fraction below the running peak (<= 0); the start counts as a peak.
    NaN from a bar whose wealth is not finite on."""
    eq = equity_curve(net_returns)
    peak = np.maximum.accumulate(np.concatenate([np.ones(eq.shape[:-1] + (1,)), eq], axis=-1), axis=-1)[..., 1:]
    with np.errstate(all="ignore"):
        dd = eq / peak - 1.0
    return np.where(np.isfinite(eq), dd, np.nan)


def max_drawdown(net_returns: np.ndarray) -> float:
    r = np.asarray(net_returns, dtype=np.float64)
    if not r.size:
        return 0.0
    dd = drawdown(r)
    return math.nan if np.isnan(dd).any() else float(-dd.min())


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


def _ratio(mean: float, scale: float, bars_per_year: float) -> float:
    """Annualised mean / scale: NaN when either is undefined, 0.0 for no risk (cash)."""
    if not (math.isfinite(mean) and math.isfinite(scale)):
        return math.nan
    return defined(mean / scale * math.sqrt(bars_per_year)) if scale > 1e-15 else 0.0


def sharpe(net_returns: np.ndarray, bars_per_year: float) -> float:
    """Annualised Sharpe ratio (0.0 under 2 bars or with zero volatility; NaN when undefined)."""
    r = np.asarray(net_returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    with np.errstate(all="ignore"):
        mean, sd = float(r.mean()), float(r.std(ddof=1))
    return _ratio(mean, sd, bars_per_year)


def sortino(net_returns: np.ndarray, bars_per_year: float) -> float:
    """Annualised Sortino ratio (0.0 under 2 bars or with no downside; NaN when undefined)."""
    r = np.asarray(net_returns, dtype=np.float64)
    if r.size < 2:
        return 0.0
    with np.errstate(all="ignore"):
        mean, downside = float(r.mean()), float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    return _ratio(mean, downside, bars_per_year)


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
    with np.errstate(all="ignore"):  # overflow gives inf / NaN, mapped to NaN (undefined) below
        growth = float(np.prod(1.0 + r))
        total = growth - 1.0
        mdd = max_drawdown(r)
        r = holding_returns(r, final_bar_held=final_bar_held)
        years = r.size / bars_per_year
        annual = growth ** (1.0 / years) - 1.0 if growth > 0 and years > 0 else -1.0
        if not math.isfinite(growth):
            annual = math.nan
        vol = float(r.std(ddof=1) * math.sqrt(bars_per_year)) if r.size > 1 else 0.0
        nonzero = r[np.abs(r) > 1e-15]
        calmar = annual / mdd if mdd > 1e-12 else (math.nan if math.isnan(mdd) or math.isnan(annual) else 0.0)
        hit = float((nonzero > 0).mean()) if nonzero.size else 0.0
        if np.isnan(r).any():
            hit = math.nan
        out = {
            "total_return": total,
            "annual_return": annual,
            "volatility": vol,
            "sharpe": sharpe(r, bars_per_year),
            "sortino": sortino(r, bars_per_year),
            "max_drawdown": mdd,
            "calmar": calmar,
            "turnover": float(np.mean(turnover)) if turnover is not None and np.size(turnover) else 0.0,
            "exposure": (
                float(np.mean(gross_leverage)) if gross_leverage is not None and np.size(gross_leverage) else 0.0
            ),
            "hit_rate": hit,
        }
    return {**{k: defined(v) for k, v in out.items()}, "n_bars": n}
