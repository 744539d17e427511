"""The order-level fill model: a slow per-order reference loop, known-answer bars, the weight engine."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import DUST, fill_orders, long_only_mask
from mqc.core.market.ledger import simulate_orders
from mqc.core.market.orders import BUY, EITHER, GTC, LIMIT, MOC, MOO, NONE, QTY, SELL, STOP, WEIGHT, Orders

# ---- the reference: one order at a time, plain Python floats ------------------------------------


def _marketable(kind, side, price, path):
    """Per segment (start, end, price at start) of the times the order may fill, plain floats."""
    out = []
    for s in range(3):
        p0, p1 = path[s], path[s + 1]
        if kind == MOO:
            out.append((0.0, 0.0, path[0]) if s == 0 else None)
            continue
        below = (kind == LIMIT and side > 0) or (kind == STOP and side < 0)

        def cond(p, below=below):
            return p <= price if below else p >= price

        c0, c1 = cond(p0), cond(p1)
        if not c0 and not c1:
            out.append(None)
            continue
        cross = s + (price - p0) / (p1 - p0) if c0 != c1 else None
        start = float(s) if c0 else cross
        end = float(s + 1) if c1 else cross
        out.append((start, end, p0 if c0 else price))
    return out


def _qty(o, px, pos, equity, long_only, room):
    kind, side, price, size, sizing = o
    if sizing == QTY:
        q = side * size
    else:
        q = size * equity / px - pos
        if side > 0:
            q = max(q, 0.0)
        elif side < 0:
            q = min(q, 0.0)
    if long_only:
        q = max(q, -pos)
    q = min(max(q, -room), room)
    if not abs(q) * px > DUST * abs(equity):
        return 0.0
    return q


def _ref_path(slots, path, pos, equity, fee, long_only, room):
    tau, cur, cash = 0.0, path[0], 0.0
    done = [o[0] not in (LIMIT, STOP, MOO) for o in slots]
    fills = {}
    while True:
        best = None
        for k, o in enumerate(slots):
            if done[k]:
                continue
            cands = [
                (max(a, tau), a, at)
                for seg in _marketable(o[0], o[1], o[2], path)
                if seg
                for a, b, at in [seg]
                if b >= tau
            ]
            if not cands:
                continue
            t, a, at = min(cands, key=lambda c: c[0])
            px = cur if t > a else at
            q = _qty(o, px, pos, equity, long_only, room)
            if q != 0 and (best is None or t < best[0]):
                best = (t, k, q, px)
        if best is None:
            return fills, cash, pos, room
        t, k, q, px = best
        fills[k] = (q, px)
        done[k] = True
        pos += q
        cash -= q * px + abs(q) * px * fee
        room -= abs(q)
        tau, cur = t, px


def reference_fill(book, cash, positions, bar, fees, long_only, equity, intrabar, participation):
    """``fill_orders`` for one bar, one order at a time."""
    o, h, lo, c, vol = bar
    A, K = book.kind.shape
    out_q, out_p = np.zeros((A, K)), np.full((A, K), np.nan)
    cash_d, pos_after, rooms, decided = np.zeros(A), np.zeros(A), np.zeros(A), np.zeros(A, dtype=bool)
    for a in range(A):
        slots = [
            (
                int(book.kind[a, k]),
                int(book.side[a, k]),
                float(book.price[a, k]),
                float(book.size[a, k]),
                int(book.sizing[a, k]),
            )
            for k in range(K)
        ]
        room = 0.0 if vol[a] == 0 else (math.inf if participation is None else participation * vol[a])
        res = {}
        for name, path in (("hl", (o[a], h[a], lo[a], c[a])), ("lh", (o[a], lo[a], h[a], c[a]))):
            res[name] = _ref_path(
                slots, [float(p) for p in path], float(positions[a]), equity, float(fees[a]), bool(long_only[a]), room
            )
        v = {n: r[1] + r[2] * c[a] for n, r in res.items()}
        dec = abs(v["lh"] - v["hl"]) > 1e-9 * abs(equity)
        pick = "hl"
        if dec and ((intrabar == "optimistic") == (v["lh"] > v["hl"])):
            pick = "lh"
        fills, cd, p, room = res[pick]
        for k, (q, px) in fills.items():
            out_q[a, k], out_p[a, k] = q, px
        cash_d[a], pos_after[a], rooms[a], decided[a] = cd, p, room, dec
    eq_close = cash + float(np.sum(cash_d)) + float(np.sum(pos_after * c))
    for k in range(K):
        for a in range(A):
            if book.kind[a, k] != MOC:
                continue
            sl = (MOC, int(book.side[a, k]), math.nan, float(book.size[a, k]), int(book.sizing[a, k]))
            q = _qty(sl, float(c[a]), float(pos_after[a]), eq_close, bool(long_only[a]), float(rooms[a]))
            if q != 0:
                out_q[a, k], out_p[a, k] = q, c[a]
                pos_after[a] += q
                cash_d[a] -= q * c[a] + abs(q) * c[a] * fees[a]
                rooms[a] -= abs(q)
    return out_q, out_p, pos_after, cash + float(np.sum(cash_d)), decided, eq_close


def _random_bar(rng, A):
    o = 100 * np.exp(rng.normal(0, 0.02, A))
    c = o * np.exp(rng.normal(0, 0.02, A))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, A)))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, A)))
    vol = np.where(rng.random(A) < 0.1, 0.0, rng.uniform(0.0, 5e-3, A))
    return o, h, lo, c, vol


def _random_book(rng, A, K, ref):
    b = Orders.empty(A, K)
    b.kind[:] = rng.choice([NONE, MOO, LIMIT, STOP, MOC], size=(A, K), p=[0.1, 0.1, 0.45, 0.2, 0.15])
    b.side[:] = rng.choice([BUY, SELL], size=(A, K))
    b.sizing[:] = rng.choice([QTY, WEIGHT], size=(A, K))
    b.size[:] = np.where(b.sizing == QTY, rng.uniform(1e-4, 4e-3, (A, K)), rng.uniform(-0.3, 0.4, (A, K)))
    b.price[:] = ref[:, None] * np.exp(rng.normal(0, 0.02, (A, K)))
    mkt = (b.kind == MOO) | (b.kind == MOC)
    b.price[mkt] = np.nan
    either = mkt & (b.sizing == WEIGHT) & (rng.random((A, K)) < 0.5)
    b.side[either] = EITHER
    return b


@pytest.mark.parametrize("intrabar", ["conservative", "optimistic"])
@pytest.mark.parametrize("participation", [None, 0.5])
def test_fill_orders_equals_the_per_order_reference(intrabar, participation):
    rng = np.random.default_rng(7)
    A, K = 40, 4
    for _ in range(25):
        bar = _random_bar(rng, A)
        book = _random_book(rng, A, K, bar[0])
        book.check()
        pos = rng.uniform(-2e-3, 4e-3, A)
        long_only = rng.random(A) < 0.3
        pos = np.where(long_only, np.abs(pos), pos)
        fees = rng.uniform(0, 2e-3, A)
        cash, equity = 0.4, 0.9
        f = fill_orders(book, cash, pos, bar, fees, long_only, equity, intrabar=intrabar, participation=participation)
        q, p, pos_after, cash_after, decided, eq_close = reference_fill(
            book, cash, pos, bar, fees, long_only, equity, intrabar, participation
        )
        np.testing.assert_array_equal(f.qty, q)
        np.testing.assert_array_equal(f.price, p)
        np.testing.assert_array_equal(f.positions, pos_after)
        np.testing.assert_array_equal(f.decided, decided)
        assert f.cash == cash_after and f.equity_before_close == eq_close


# ---- known-answer bars ----------------------------------------------------------------------------


def _one(kind, side, price, size=1.0, sizing=QTY):
    b = Orders.empty(1, 1)
    b.set((0, 0), kind=kind, side=side, price=price, size=size, sizing=sizing)
    return b


def _fill1(book, bar, pos=0.0, intrabar="conservative", fee=0.0, long_only=False):
    bar = tuple(np.array([v], dtype=float) for v in bar)
    return fill_orders(
        book, 100.0, np.array([pos]), bar, np.array([fee]), np.array([long_only]), 100.0, intrabar=intrabar
    )


BAR = (100.0, 105.0, 95.0, 101.0, 1000.0)


def test_limit_just_inside_and_just_outside_the_low():
    inside = _fill1(_one(LIMIT, BUY, 95.0), BAR)
    assert inside.qty[0, 0] == 1.0 and inside.price[0, 0] == 95.0
    outside = _fill1(_one(LIMIT, BUY, np.nextafter(95.0, 0)), BAR)
    assert outside.qty[0, 0] == 0.0 and np.isnan(outside.price[0, 0])
    assert outside.book.kind[0, 0] == LIMIT  # still resting (a GTC/day order would carry on)


def test_a_bar_that_opens_through_the_limit_fills_at_the_open():
    f = _fill1(_one(LIMIT, BUY, 102.0), BAR)
    assert f.price[0, 0] == 100.0  # better than the limit
    s = _fill1(_one(LIMIT, SELL, 98.0), BAR, pos=1.0)
    assert s.price[0, 0] == 100.0
    stop = _fill1(_one(STOP, BUY, 99.0), BAR)  # a buy stop below the open: gaps through, at the open
    assert stop.price[0, 0] == 100.0


def test_both_sides_touched_in_one_bar_under_each_rule():
    book = Orders.empty(1, 3)
    book.set((0, 0), kind=LIMIT, side=BUY, price=96.0, size=0.5, sizing=WEIGHT)
    book.set((0, 1), kind=LIMIT, side=SELL, price=104.0, size=0.0, sizing=WEIGHT)
    book.set((0, 2), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)
    units = 0.5 * 100.0 / 96.0
    opt = _fill1(book, BAR, intrabar="optimistic")
    assert opt.decided[0]
    np.testing.assert_allclose(opt.qty[0], [units, -units, 0.0])
    np.testing.assert_allclose(opt.price[0, :2], [96.0, 104.0])
    con = _fill1(book, BAR, intrabar="conservative")
    assert con.decided[0]  # high first: nothing to sell yet; the buy fills on the way down, out at the close
    np.testing.assert_allclose(con.qty[0], [units, 0.0, -units])
    assert con.price[0, 2] == 101.0
    np.testing.assert_allclose(opt.cash - con.cash, units * (104.0 - 101.0))
    np.testing.assert_allclose(opt.gap[0], units * 3.0)


def test_no_fill_on_zero_volume_and_participation_cap():
    assert _fill1(_one(MOO, BUY, np.nan), (*BAR[:4], 0.0)).qty[0, 0] == 0.0
    bar = tuple(np.array([v]) for v in (*BAR[:4], 10.0))
    f = fill_orders(
        _one(MOO, BUY, np.nan, size=8.0), 1e3, np.zeros(1), bar, np.zeros(1), np.zeros(1, bool), 1e3, participation=0.5
    )
    assert f.qty[0, 0] == 5.0 and f.book.kind[0, 0] == MOO and f.book.size[0, 0] == 3.0


def test_long_only_never_goes_short_and_costs_come_from_cash():
    f = _fill1(_one(MOO, SELL, np.nan, size=3.0), BAR, pos=1.0, long_only=True, fee=0.001)
    assert f.qty[0, 0] == -1.0 and f.positions[0] == 0.0
    assert f.cash == pytest.approx(100.0 + 100.0 - 0.1)


def test_bad_limit_price_is_one_clear_error():
    o = Orders.empty(3, 2, 1)
    o.set((1, 1, 0), kind=LIMIT, side=BUY, price=np.nan, size=0.5)
    with pytest.raises(DataError, match=r"for B placed at bar 1 .*not a finite number"):
        o.check(("A", "B"))


# ---- the weight engine ----------------------------------------------------------------------------


@pytest.mark.parametrize("engine", ["numpy", "auto"])  # auto: the compiled kernel when numba is installed
def test_market_on_close_orders_replay_the_weight_engine(synth_panel, engine):
    from mqc.core.backtest.engine import run_backtest

    panel = synth_panel(n_assets=3, n_bars=120, seed=3)
    T, A = len(panel), panel.n_assets
    rng = np.random.default_rng(0)
    w = rng.dirichlet(np.ones(A + 1), size=T)[:, :A] * 1.6  # long book with leverage up to 1.6
    w[::7] = 0.0
    market = MarketConfig(max_gross_leverage=2.0, max_overnight_leverage=2.0, cash_rate=0.02, financing_rate=0.07)
    orders = Orders.empty(T, A, 1)
    orders.set((slice(None), slice(None), 0), kind=MOC, side=EITHER, size=w, sizing=WEIGHT)
    res = simulate_orders(panel.values, panel.timestamps, orders, panel.asset_classes, market, engine=engine)
    targets = np.zeros((T, A))
    targets[1:] = w[:-1]  # placed at close t-1, filled at close t
    ref = run_backtest(panel, targets, market)
    np.testing.assert_allclose(res.net_returns, ref.net_returns, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.costs, ref.costs, rtol=0, atol=1e-13)
    np.testing.assert_allclose(res.weights, ref.weights, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.financing, ref.financing, rtol=0, atol=1e-14)
    np.testing.assert_allclose(res.turnover, ref.turnover, rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.prod(1 + res.net_returns), np.prod(1 + ref.net_returns), rtol=1e-12)


@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_gtc_order_rests_until_filled(synth_panel, engine):
    panel = synth_panel(n_assets=1, n_bars=30, seed=1)
    low = panel.values[:, 0, 2]
    price = float(low[5:].min()) * 1.0001
    orders = Orders.empty(30, 1, 1)
    orders.set((0, 0, 0), kind=LIMIT, side=BUY, price=price, size=0.5, sizing=WEIGHT, tif=GTC)
    res = simulate_orders(panel.values, panel.timestamps, orders, panel.asset_classes, MarketConfig(), engine=engine)
    t = int(np.flatnonzero(res.fill_qty[:, 0, 0])[0])
    assert t == 1 + int(np.flatnonzero(low[1:] <= price)[0])
    assert (res.fill_qty[:, 0, 0] != 0).sum() == 1
    assert long_only_mask(("crypto", "equity"), MarketConfig(allow_short=True)).tolist() == [True, False]


@pytest.mark.parametrize("engine", ["numpy", "auto"])
def test_day_order_expires_at_the_utc_day_end(engine):
    from mqc.core.market.orders import DAY

    # four hourly bars on day 1, then day 2; a buy limit placed at bar 0 below every low of day 1
    ts = np.array(
        ["2024-01-01T10", "2024-01-01T11", "2024-01-01T12", "2024-01-02T10", "2024-01-02T11"], dtype="datetime64[ns]"
    )
    x = np.zeros((5, 1, 5))
    x[..., 4] = 1e6
    for t, (o, h, lo, c) in enumerate([(100, 101, 99, 100)] * 3 + [(95, 96, 90, 95)] * 2):
        x[t, 0, :4] = (o, h, lo, c)
    for tif, filled in ((DAY, False), (GTC, True)):
        orders = Orders.empty(5, 1, 1)
        orders.set((0, 0, 0), kind=LIMIT, side=BUY, price=98.0, size=0.5, sizing=WEIGHT, tif=tif)
        res = simulate_orders(x, ts, orders, ("equity",), MarketConfig(), engine=engine)
        assert (res.fill_qty[:, 0, 0] != 0).any() == filled  # day 2 opens through 98: only a GTC order is left
