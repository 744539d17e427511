"""The order-level backtest: a cash-and-units ledger that calls ``fills.fill_orders`` once per bar.

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

from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import DUST, fill_orders, intrabar_fills, long_only_mask
from mqc.core.market.orders import BAR, EITHER, MOC, NONE, WEIGHT, Orders, expire, merge
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
    fast: bool = True,
) -> OrderResult:
    """Replay ``orders`` (placed at each bar's close) through ``fill_orders`` from a cash book of 1.0.

    Args:
        ohlcv: ``[T, A, 5]`` open, high, low, close, volume.
        timestamps: ``[T]`` bar times (financing periods, day ends of ``DAY`` orders).
        orders: ``[T, A, K]``; row t is placed at close t (row T-1 never fills).
        asset_classes, market: costs, shorting rules, financing.
        intrabar, participation: see ``fill_orders``.
        no_trade: bool ``[T, A]``: no real bar (forward-filled): nothing fills there.
        fast: replay a book that is flat at every close (``flat_fast``) across all bars at once
            (equal to the bar-by-bar replay to rounding; False: always bar by bar).
    Returns:
        OrderResult.
    """
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
    if fast and participation is None:
        res = flat_fast(x, vol, orders, fees, long_only, dt, market, intrabar)
        if res is not None:
            return res
    day_ends = overnight_mask(timestamps)
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
        long_, short_ = float(np.maximum(weights[t], 0.0).sum()), float(np.maximum(-weights[t], 0.0).sum())
        fin[t] = (
            max(0.0, long_ - 1.0) * market.financing_rate
            + short_ * market.borrow_rate
            - max(0.0, 1.0 - long_) * market.cash_rate
        ) * dt[t]
        cash -= fin[t] * e
        eq_ref = cash + float(np.sum(held))
        final = eq_ref
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


_CHUNK_CELLS = 400_000  # symbol-bar rows per vectorised chunk of ``flat_fast``


def flat_fast(x, vol, orders: Orders, fees, long_only, dt, market: MarketConfig, intrabar: str):
    """All bars at once for a book that is flat at every close; None when the orders do not make one.

    Eligible: every order is sized by weight and lives one bar, and every symbol-bar with an order
    also holds a market-on-close order to weight 0 on a bar with volume. The book then starts every
    bar in cash, so a bar's fills per unit of equity do not depend on the bars before: each bar is
    filled at equity 1 (``fills.intrabar_fills``, the rule of ``fill_orders``), all bars together,
    and equity compounds the per-bar growth. Results equal the bar-by-bar replay to rounding (a test).
    """
    kind = orders.kind
    used = kind != NONE
    T, A, K = kind.shape
    if T < 2 or not used.any():
        return None
    if (used & ((orders.sizing != WEIGHT) | (orders.tif != BAR))).any():
        return None
    moc = kind == MOC
    if (moc & ((orders.size != 0) | (orders.side != EITHER))).any():
        return None
    placed = used[:-1].any(2)  # [T-1, A] orders live in bar t+1
    if (placed & ~moc[:-1].any(2)).any() or (placed & ~(vol[1:] > 0)).any():
        return None
    qty, px = np.zeros((T, A, K)), np.full((T, A, K), np.nan)
    cash_d, decided, gap = np.zeros((T, A)), np.zeros((T, A), dtype=bool), np.zeros((T, A))
    intra_cost, close_cost = np.zeros(T), np.zeros(T)
    e_pre = np.ones(T)
    step = max(1, _CHUNK_CELLS // max(A, 1))
    for t0 in range(1, T, step):
        t1 = min(T, t0 + step)
        n = (t1 - t0) * A
        book = Orders(*(getattr(orders, f)[t0 - 1 : t1 - 1].reshape(n, K) for f in _FIELDS))
        ohlc = tuple(x[t0:t1, :, i].reshape(n) for i in range(4))
        f_rows = np.tile(fees, t1 - t0)
        lo_rows = np.tile(long_only, t1 - t0)
        room = np.where(vol[t0:t1].reshape(n) == 0, 0.0, np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            q, p, cd, pos, room, dec, gp = intrabar_fills(book, np.zeros(n), ohlc, f_rows, lo_rows, 1.0, room, intrabar)
        c = ohlc[3]
        intra_cost[t0:t1] = (np.abs(q) * np.nan_to_num(p) * f_rows[:, None]).reshape(t1 - t0, -1).sum(1)
        eq_close = 1.0 + cd.reshape(t1 - t0, A).sum(1) + (pos * c).reshape(t1 - t0, A).sum(1)
        # the close auction: every symbol with an order goes back to cash (weight 0)
        mq = np.where(np.abs(pos) * c > DUST * np.repeat(np.abs(eq_close), A), -pos, 0.0)
        if (pos + mq != 0).any():
            return None
        slot = moc[t0 - 1 : t1 - 1].reshape(n, K).argmax(1)
        rows = np.flatnonzero(mq != 0)
        q[rows, slot[rows]], p[rows, slot[rows]] = mq[rows], c[rows]
        fee = np.abs(mq) * c * f_rows
        cd = cd - (mq * c + fee)
        close_cost[t0:t1] = fee.reshape(t1 - t0, A).sum(1)
        qty[t0:t1], px[t0:t1] = q.reshape(t1 - t0, A, K), p.reshape(t1 - t0, A, K)
        n_t = t1 - t0
        cash_d[t0:t1], decided[t0:t1], gap[t0:t1] = cd.reshape(n_t, A), dec.reshape(n_t, A), gp.reshape(n_t, A)
        e_pre[t0:t1] = eq_close
    # per unit of the equity at the previous close: the value before the auction, after it, then financing
    fin = -market.cash_rate * dt  # flat at every close: all equity idle in cash
    after = 1.0 + cash_d.sum(1)
    growth = after - fin * e_pre
    eq_ref = np.concatenate([[1.0], np.cumprod(growth)[:-1]])
    eq_pre = eq_ref * e_pre
    final = eq_ref[-1] * growth[-1]
    net = np.empty(T)
    net[:-1] = eq_pre[1:] / eq_pre[:-1] - 1.0
    net[-1] = final / eq_pre[-1] - 1.0
    costs = close_cost * eq_ref
    costs[:-1] += (intra_cost * eq_ref)[1:]
    costs /= eq_pre
    notional = np.abs(qty) * np.nan_to_num(px)
    fk = np.where(qty != 0, np.concatenate([np.zeros((1, A, K), np.int8), kind[:-1]]), 0).astype(np.int8)
    moc_n = (notional * (fk == MOC)).sum((1, 2)) * eq_ref
    intra_n = (notional * (fk != MOC)).sum((1, 2)) * eq_ref
    turnover = moc_n.copy()
    turnover[:-1] += intra_n[1:]
    turnover /= eq_pre
    limit = np.concatenate([np.full((1, A, K), np.nan), orders.price[:-1]])
    return OrderResult(
        net_returns=net,
        costs=costs,
        financing=fin,
        turnover=turnover,
        weights=np.zeros((T, A)),
        trades=np.zeros((T, A)),
        equity_before_close=eq_pre,
        fill_qty=qty * eq_ref[:, None, None],
        fill_price=px,
        fill_limit=np.where(qty != 0, limit, np.nan),
        fill_kind=fk,
        decided=decided,
        gap=gap,
        orders=orders,
    )


_FIELDS = ("kind", "side", "price", "size", "sizing", "tif")
