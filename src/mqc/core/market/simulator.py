"""The market equations, written once for numpy (float64 backtests) and torch (batched, differentiable).

Timing: ``weights[..., t, :]`` is decided at the close of bar t with information up to t and earns
``returns[..., t, :]``, the simple return from close t to close t+1. Wealth compounds:

    drifted_{t-1} = w_{t-1} * (1 + r_{t-1}) / (1 + w_{t-1} . r_{t-1})     weights just before trading at t
    turnover_t    = sum_a |w_t - drifted_{t-1}|                           (w_{-1} = 0: start in cash)
    cost_t        = sum_a |w_t - drifted_{t-1}| * fee_a                   fee_a = one_way_bps(class) / 1e4
                                                                          (commission + slippage)
    financing_t   = (max(0, long_t - 1) * financing_rate + short_t * borrow_rate
                     - max(0, 1 - long_t) * cash_rate) * dt_t              dt_t = bar length in years
    net_t         = w_t . r_t - cost_t - financing_t
    wealth_T      = prod_t (1 + net_t)

Costs are charged as a fraction of equity at the rebalance. With ``exact=True`` the drift divides by
``1 + net_{t-1}`` instead (costs and financing leave the book), which matches a cash ledger exactly. The two backends
run the same code
(``_is_torch`` picks the backend), and a test holds them equal to 1e-6 on random weight paths.

What a book may hold (shorting rules, leverage caps, held assets) and how one bar fills are the
execution rules of ``mqc.core.market.fills``; this module only runs the equations on held weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mqc.core.dates import SECONDS_PER_YEAR
from mqc.core.market.config import MarketConfig


@dataclass
class SimResult:
    """Per-bar series, shape ``[..., T]`` (numpy arrays or torch tensors, matching the input)."""

    net_returns: Any
    gross_returns: Any
    costs: Any
    financing: Any
    turnover: Any
    gross_leverage: Any
    long_exposure: Any
    short_exposure: Any

    def log_wealth(self):
        if _is_torch(self.net_returns):
            import torch

            return torch.cumsum(torch.log1p(self.net_returns), dim=-1)
        return np.cumsum(np.log1p(self.net_returns), axis=-1)

    def equity(self):
        """Wealth after each bar, starting from 1.0 (``[..., T]``)."""
        if _is_torch(self.net_returns):
            import torch

            return torch.exp(self.log_wealth())
        return np.exp(self.log_wealth())


_EXACT_MAX_PASSES = 12


def drifted_weights(weights, returns, net_returns):
    """Weights just before trading at t+1: ``w_t * (1 + r_t) / (1 + net_t)`` (``[..., T, A]``).

    With the realised ``net_returns`` of an exact simulation this is the true pre-trade book.
    """
    return weights * (1.0 + returns) / (1.0 + net_returns[..., None])


def _is_torch(x: Any) -> bool:
    return type(x) is not np.ndarray and type(x).__module__.startswith("torch")


def fee_rates(asset_classes: tuple[str, ...] | list[str], config: MarketConfig) -> np.ndarray:
    """Per-asset one-way cost as a fraction of traded notional, ``[A]``."""
    return np.array([config.one_way_bps(c) / 1e4 for c in asset_classes], dtype=np.float64)


def bar_years(timestamps: np.ndarray) -> np.ndarray:
    """Holding period of each bar in years: ``timestamps[t+1] - timestamps[t]``; the last bar
    repeats the median spacing (its holding period ends beyond the data)."""
    ts = np.asarray(timestamps).astype("datetime64[s]").astype(np.int64).astype(np.float64)
    if ts.size < 2:
        return np.full(ts.shape, 1.0 / 252.0)
    d = np.diff(ts)
    d = np.append(d, np.median(d))
    return d / SECONDS_PER_YEAR


def overnight_mask(timestamps: np.ndarray) -> np.ndarray:
    """True where a position held from bar t to t+1 crosses a UTC day boundary (always for daily bars)."""
    ts = np.asarray(timestamps).astype("datetime64[ns]")
    if ts.size < 2:
        return np.ones(ts.shape, dtype=bool)
    days = ts.astype("datetime64[D]")
    cross = np.append(days[1:] != days[:-1], True)
    return cross


def simple_returns(close: np.ndarray) -> np.ndarray:
    """Forward simple returns ``close[t+1] / close[t] - 1`` aligned at t; the last bar gets 0."""
    c = np.asarray(close, dtype=np.float64)
    r = np.zeros_like(c)
    r[:-1] = c[1:] / c[:-1] - 1.0
    return r


def simulate(
    weights, returns, fees, dt_years, config: MarketConfig, prev_weights=None, *, exact: bool = False
) -> SimResult:
    """Run the market equations (see module docstring).

    Args:
        weights: ``[..., T, A]`` held weights (already constrained; see ``mqc.core.market.fills``).
        returns: ``[..., T, A]`` simple returns from close t to close t+1.
        fees: ``[A]`` one-way cost fractions (``fee_rates``).
        dt_years: ``[T]`` or ``[..., T]`` bar lengths in years (``bar_years``).
        prev_weights: ``[..., A]`` weights held before the first bar (default: all cash).
        exact: drift the weights with the realised net return ``1 + net_{t-1}`` (costs and financing
            leave the portfolio) instead of ``1 + w.r``. The two differ at second order in costs;
            ``exact`` matches a cash-ledger simulator to rounding error (used by backtests). It is
            solved by a few Jacobi passes: pass k makes the first k bars exact and shrinks the rest
            of the error by a factor of about fee * gross leverage.
    Returns:
        SimResult of ``[..., T]`` series in the input's backend and dtype.
    """
    torch_mode = _is_torch(weights)
    if torch_mode:
        import torch

        fees_t = torch.as_tensor(fees, dtype=weights.dtype, device=weights.device)
        dt = torch.as_tensor(dt_years, dtype=weights.dtype, device=weights.device)
        first = torch.zeros_like(weights[..., :1, :]) if prev_weights is None else prev_weights[..., None, :]
        cat = lambda xs: torch.cat(xs, dim=-2)  # noqa: E731
    else:
        weights = np.asarray(weights, dtype=np.float64)
        returns = np.asarray(returns, dtype=np.float64)
        fees_t = np.asarray(fees, dtype=np.float64)
        dt = np.asarray(dt_years, dtype=np.float64)
        first = (
            np.zeros_like(weights[..., :1, :])
            if prev_weights is None
            else np.asarray(prev_weights, dtype=np.float64)[..., None, :]
        )
        cat = lambda xs: np.concatenate(xs, axis=-2)  # noqa: E731
    held = holding(weights, returns, dt, config)
    if weights.shape[-2] == 1:  # one bar: its pre-trade book is given, nothing to solve
        return settle(weights, first, fees_t, held)
    # Held value grows by (1 + r); equity by (1 + growth). One pass uses growth = w.r; exact passes
    # re-solve with growth = net until it stops changing (at most a handful: see ``exact``).
    grown = weights[..., :-1, :] * (1.0 + returns[..., :-1, :])
    growth = held[0]
    passes = _EXACT_MAX_PASSES if exact else 1
    for k in range(passes):
        res = settle(weights, cat([first, grown / (1.0 + growth[..., :-1, None])]), fees_t, held)
        net = res.net_returns
        if not exact or k == passes - 1:
            break
        size = net.numel() if torch_mode else net.size
        change = float((net - growth).abs().max() if torch_mode else np.abs(net - growth).max()) if size else 0.0
        growth = net
        if change <= 1e-15:
            break
    return res


def holding(weights, returns, dt, config: MarketConfig, exposure: tuple[Any, Any] | None = None) -> tuple:
    """The part of the equations that depends only on the held weights (any leading shape ``[..., A]``):
    ``(gross_returns, financing, long_exposure, short_exposure)``, each ``[...]``; ``settle`` adds the
    trade. ``dt`` is shaped like ``weights[..., 0]`` (or broadcasts to it). ``exposure``: the (long,
    short) exposures when the caller has them already, bit for bit as summed here."""
    if exposure is not None:
        long_, short_ = exposure
    elif _is_torch(weights):
        long_ = weights.clamp(min=0.0).sum(-1)
        short_ = (-weights).clamp(min=0.0).sum(-1)
    else:
        long_ = np.add.reduce(np.maximum(weights, 0.0), -1)
        short_ = np.add.reduce(np.maximum(-weights, 0.0), -1)
    if _is_torch(long_):
        borrowed, idle = (long_ - 1.0).clamp(min=0.0), (1.0 - long_).clamp(min=0.0)
        port = (weights * returns).sum(-1)
    else:  # (np.add.reduce is ndarray.sum without its Python wrapper)
        borrowed, idle = np.maximum(long_ - 1.0, 0.0), np.maximum(1.0 - long_, 0.0)
        port = np.add.reduce(weights * returns, -1)
    financing = (borrowed * config.financing_rate + short_ * config.borrow_rate - idle * config.cash_rate) * dt
    return port, financing, long_, short_


def settle(weights, before, fees, held: tuple) -> SimResult:
    """The bar's trade from the pre-trade book ``before`` (same shape as ``weights``): turnover, costs
    (``fees`` one way) and the net return, with ``holding``'s fields."""
    port, financing, long_, short_ = held
    if _is_torch(weights):
        trade = (weights - before).abs()
        costs, turnover = (trade * fees).sum(-1), trade.sum(-1)
    else:
        trade = np.abs(weights - before)
        costs, turnover = np.add.reduce(trade * fees, -1), np.add.reduce(trade, -1)
    return SimResult(
        net_returns=port - costs - financing,
        gross_returns=port,
        costs=costs,
        financing=financing,
        turnover=turnover,
        gross_leverage=long_ + short_,
        long_exposure=long_,
        short_exposure=short_,
    )
