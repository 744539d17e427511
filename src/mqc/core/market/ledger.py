"""The order-level backtest: a cash-and-units ledger that calls ``fills.fill_orders`` once per bar
(``engine="numpy"``), or runs the same rule compiled over all bars in one call
(``fill_kernel.simulate_kernel``, ``engine="numba"``; the default when numba is installed).

Timing (the weight engine's, in orders): orders placed at the close of bar t fill during bar t+1
(intrabar, then its close auction). ``equity_before_close[t]`` is the book's value at close t
after bar t's intrabar fills and before its close auction; the per-bar net return of row t is

    net_t = equity_before_close[t+1] / equity_before_close[t] - 1     (last row: the final value)

so row t holds what was decided at close t (its auction, its financing to t+1, the intrabar fills
of t+1), as a weight row t does: a strategy of market-on-close orders only, placed one bar earlier,
replays exactly as the weights it targets (a test holds the two equal). Wealth compounds; costs are
the one-way fees of ``simulator.fee_rates``; financing is the simulator's formula on the book held
after the auction, charged from cash for ``bar_years`` (0 on the last bar).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mqc.core.errors import ConfigError
from mqc.core.market import fill_kernel
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import INTRABAR_RULES, fill_orders, long_only_mask
from mqc.core.market.orders import BAR, MOC, NONE, Orders, expire, merge
from mqc.core.market.simulator import bar_years, fee_rates, overnight_mask


@dataclass
class OrderResult:
    """Per-bar series ``[T]``, per-bar weights ``[T, A]`` and the fills ``[T, A, K]`` (by the bar they filled in)."""

    net_returns: np.ndarray
    costs: np.ndarray  # fraction of equity_before_close, aligned like net_returns
    financing: np.ndarray
    turnover: np.ndarray  # traded notional (every fill, round trips inside a bar too), aligned like costs
    weights: np.ndarray  # [T, A] held after the close auction of t, of equity_before_close[t]
    trades: np.ndarray  # [T, A] change of the holdings over bar t, of equity_before_close[t]
    equity_before_close: np.ndarray
    fill_qty: np.ndarray  # [T, A, K]
    fill_price: np.ndarray  # [T, A, K]
    fill_limit: np.ndarray  # [T, A, K] the filled order's limit/stop price (NaN: market order, no fill)
    fill_kind: np.ndarray  # int8 [T, A, K] the filled order's kind (0: no fill)
    decided: np.ndarray  # bool [T, A]: the intrabar rule chose the outcome of bar t
    gap: np.ndarray  # [T, A] value at stake in that choice, fraction of equity
    orders: Orders  # [T, A, K] as placed

    @property
    def gross_leverage(self) -> np.ndarray:
        return np.abs(self.weights).sum(1)

    @property
    def long_exposure(self) -> np.ndarray:
        return np.maximum(self.weights, 0.0).sum(1)

    @property
    def short_exposure(self) -> np.ndarray:
        return np.maximum(-self.weights, 0.0).sum(1)


ENGINES = ("auto", "numba", "numpy")
MAX_KERNEL_SLOTS = 63  # the kernel marks filled slots in one int64


def bar_financing(weights: np.ndarray, market: MarketConfig, dt: float) -> float:
    """Financing of one bar as a fraction of equity: margin on longs over 1, borrow on shorts, less
    interest on idle cash, for ``dt`` years (the book ``weights [A]`` held after the close auction)."""
    long_, short_ = float(np.maximum(weights, 0.0).sum()), float(np.maximum(-weights, 0.0).sum())
    return (
        max(0.0, long_ - 1.0) * market.financing_rate
        + short_ * market.borrow_rate
        - max(0.0, 1.0 - long_) * market.cash_rate
    ) * dt


def simulate_orders(
    ohlcv: np.ndarray,
    timestamps: np.ndarray,
    orders: Orders,
    asset_classes: tuple[str, ...] | list[str],
    market: MarketConfig,
    *,
    intrabar: str = "conservative",
    participation: float | None = None,
    no_trade: np.ndarray | None = None,
    engine: str = "auto",
) -> OrderResult:
    """Replay ``orders`` (placed at each bar's close) through ``fill_orders`` from a cash book of 1.0.

    Args:
        ohlcv: ``[T, A, 5]`` open, high, low, close, volume.
        timestamps: ``[T]`` bar times (financing periods, day ends of ``DAY`` orders).
        orders: ``[T, A, K]``; row t is placed at close t (row T-1 never fills).
        asset_classes, market: costs, shorting rules, financing.
        intrabar, participation: see ``fill_orders``.
        no_trade: bool ``[T, A]``: no real bar (forward-filled): nothing fills there.
        engine: ``numba`` (the compiled kernel, ``pip install 'mqc[fast]'``), ``numpy`` (a loop over
            bars of ``fill_orders``), or ``auto``: numba when it is installed. Equal to 1e-12.
    Returns:
        OrderResult.
    Raises:
        ConfigError: an unknown ``engine`` or ``intrabar``, or ``numba`` asked for without numba.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    if intrabar not in INTRABAR_RULES:
        raise ConfigError(f"intrabar must be one of {INTRABAR_RULES}, got {intrabar!r}")
    if engine == "numba" and not fill_kernel.HAVE_NUMBA:
        raise ConfigError("engine 'numba' needs numba", hint="pip install 'mqc[fast]'")
    orders.check()
    T, A, K = orders.shape
    x = np.asarray(ohlcv, dtype=np.float64)
    vol = x[..., 4].copy()
    if no_trade is not None:
        vol[np.asarray(no_trade, dtype=bool)] = 0.0
    fees = fee_rates(asset_classes, market)
    long_only = long_only_mask(asset_classes, market)
    dt = bar_years(timestamps)
    dt[-1] = 0.0
    day_ends = overnight_mask(timestamps)
    if engine == "numba" or (engine == "auto" and fill_kernel.HAVE_NUMBA and K <= MAX_KERNEL_SLOTS):
        return _simulate_compiled(x, vol, orders, fees, long_only, dt, day_ends, market, intrabar, participation)
    cash, pos, eq_ref = 1.0, np.zeros(A), 1.0
    book = Orders.empty(A, K)
    only_bar = not ((orders.kind != NONE) & (orders.tif != BAR)).any()
    eq_pre, fin, cost_close, cost_intra = np.empty(T), np.zeros(T), np.zeros(T), np.zeros(T)
    moc_notional, intra_notional = np.zeros(T), np.zeros(T)
    weights, trades = np.zeros((T, A)), np.zeros((T, A))
    fq, fp = np.zeros((T, A, K)), np.full((T, A, K), np.nan)
    fl, fk = np.full((T, A, K), np.nan), np.zeros((T, A, K), dtype=np.int8)
    decided, gap = np.zeros((T, A), dtype=bool), np.zeros((T, A))
    final = 1.0
    for t in range(T):
        c = x[t, :, 3]
        if t > 0 and only_bar:  # nothing outlives its bar: the live book is what was just placed
            book = orders.at(t - 1)
        elif t > 0:
            book = merge(expire(book, bool(day_ends[t - 1])), orders.at(t - 1))
        if (book.kind != NONE).any():
            f = fill_orders(
                book,
                cash,
                pos,
                (x[t, :, 0], x[t, :, 1], x[t, :, 2], c, vol[t]),
                fees,
                long_only,
                eq_ref,
                intrabar=intrabar,
                participation=participation,
            )
            eq_pre[t] = f.equity_before_close
            trades[t] = (f.positions - pos) * c
            hit = f.qty != 0
            fl[t], fk[t] = np.where(hit, book.price, np.nan), np.where(hit, book.kind, 0)
            cash, pos, book = f.cash, f.positions, f.book
            fq[t], fp[t], decided[t], gap[t] = f.qty, f.price, f.decided, f.gap / max(abs(eq_ref), 1e-300)
            cost_close[t], cost_intra[t] = f.costs_close, f.costs_intrabar
            notional = np.abs(f.qty) * np.nan_to_num(f.price)
            moc_notional[t] = float(notional[fk[t] == MOC].sum())
            intra_notional[t] = float(notional.sum()) - moc_notional[t]
        else:
            eq_pre[t] = cash + float(np.sum(pos * c))
        e = eq_pre[t]
        held = pos * c
        weights[t] = held / e
        trades[t] /= e
        fin[t] = bar_financing(weights[t], market, float(dt[t]))
        cash -= fin[t] * e
        eq_ref = cash + float(np.sum(held))
        final = eq_ref
    return _result(eq_pre, final, fin, cost_close, cost_intra, moc_notional, intra_notional, weights, trades,
                   fq, fp, fl, fk, decided, gap, orders)  # fmt: skip


def _simulate_compiled(x, vol, orders, fees, long_only, dt, day_ends, market, intrabar, participation) -> OrderResult:
    if orders.shape[-1] > MAX_KERNEL_SLOTS:
        raise ConfigError(f"engine 'numba' takes at most {MAX_KERNEL_SLOTS} order slots per symbol")
    c8 = lambda a: np.ascontiguousarray(a, dtype=np.int8)  # noqa: E731
    f8 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    rates = np.array([market.financing_rate, market.borrow_rate, market.cash_rate], dtype=np.float64)
    part = np.nan if participation is None else float(participation)
    out = fill_kernel.simulate_kernel(
        np.ascontiguousarray(x), f8(vol), c8(orders.kind), c8(orders.side), f8(orders.price), f8(orders.size),
        c8(orders.sizing), c8(orders.tif), f8(fees), np.ascontiguousarray(long_only, dtype=np.bool_), f8(dt),
        np.ascontiguousarray(day_ends, dtype=np.bool_), rates, intrabar == "optimistic", part,
    )  # fmt: skip
    eq_pre, fin, cost_close, cost_intra, moc_notional, intra_notional = out[:6]
    weights, trades, decided, gap, fq, fp, fl, fk, final = out[6:]
    return _result(eq_pre, final, fin, cost_close, cost_intra, moc_notional, intra_notional, weights, trades,
                   fq, fp, fl, fk, decided, gap, orders)  # fmt: skip


def _result(eq_pre, final, fin, cost_close, cost_intra, moc_notional, intra_notional, weights, trades,
            fq, fp, fl, fk, decided, gap, orders) -> OrderResult:  # fmt: skip
    """Align the per-bar series (row t: what was decided at close t) and wrap them."""
    T = len(eq_pre)
    net = np.empty(T)
    net[:-1] = eq_pre[1:] / eq_pre[:-1] - 1.0
    net[-1] = final / eq_pre[-1] - 1.0
    costs = cost_close.copy()
    costs[:-1] += cost_intra[1:]
    costs /= eq_pre
    turnover = moc_notional.copy()
    turnover[:-1] += intra_notional[1:]
    turnover /= eq_pre
    return OrderResult(
        net_returns=net,
        costs=costs,
        financing=fin,
        turnover=turnover,
        weights=weights,
        trades=trades,
        equity_before_close=eq_pre,
        fill_qty=fq,
        fill_price=fp,
        fill_limit=fl,
        fill_kind=fk,
        decided=decided,
        gap=gap,
        orders=orders,
    )
