"""The order-level rule of ``fills.fill_orders`` as scalar loops, compiled with numba when it is installed.

``simulate_kernel`` runs a whole order backtest (bars x symbols x slots, both intrabar paths, the
close auction, expiry, financing) in one call; ``ledger.simulate_orders`` uses it when numba is
importable (``pip install 'mqc[fast]'``) and otherwise loops over bars with the numpy ``fill_orders``.
The two are separate statements of one rule: ``tests/core/market/test_order_kernel.py`` holds every
per-symbol result of ``fill_bar`` equal to ``fill_orders`` bit for bit on random books and bars, and
both backtests equal to 1e-12 (the kernel sums cash over symbols one by one, numpy pairwise).
Without numba the functions still run, as slow plain Python (the tests use that to check them).
"""

from __future__ import annotations

import math

import numpy as np

try:  # numba is optional: the `fast` extra
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised where numba is absent
    HAVE_NUMBA = False

    def njit(*args, **kwargs):  # type: ignore[no-redef]
        if args and callable(args[0]):
            return args[0]
        return lambda f: f


# The codes of ``orders`` and ``fills`` (numba reads module globals as constants).
NONE, MOO, LIMIT, STOP, MOC = 0, 1, 2, 3, 4
QTY = 0
BAR, DAY, GTC = 0, 1, 2
DUST = 1e-10
INF = math.inf

_JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_JIT)
def orders_plausible(kind, side, price, size, sizing, tif):
    """One pass of ``Orders._plausible`` over flat arrays: every slot passes ``Orders.check``."""
    for i in range(kind.size):
        k, sd, sz, tf = kind[i], side[i], sizing[i], tif[i]
        if k < NONE or k > MOC or sd < -1 or sd > 1 or sz < 0 or sz > 1 or tf < BAR or tf > GTC:
            return False
        if k == NONE:
            continue
        if k == LIMIT or k == STOP:
            if sd == 0 or not (price[i] > 0 and price[i] < INF):
                return False
        if sz == QTY:
            if sd == 0 or not (size[i] > 0 and size[i] < INF):
                return False
        elif not math.isfinite(size[i]):
            return False
    return True


@njit(**_JIT)
def _qty(side, size, sizing, px, pos, equity, long_only, room):
    """Units one slot trades at ``px`` (``fills._order_qty`` for one slot)."""
    if sizing == QTY:
        q = side * size
    else:
        q = size * equity / px - pos
        if side > 0:
            q = np.maximum(q, 0.0)
        elif side < 0:
            q = np.minimum(q, 0.0)
    if long_only:
        q = np.maximum(q, -pos)
    q = np.minimum(np.maximum(q, -room), room)
    if not (abs(q) * px > DUST * abs(equity)):
        return 0.0
    return q


@njit(**_JIT)
def _path(p, a, kind, side, price, size, sizing, pos0, equity, fee, long_only, room0, qty, px, seg):
    """Fill symbol ``a``'s intrabar slots along the path ``p[4]`` (``fills._run_path`` for one row).

    Writes ``qty[a], px[a]``; ``seg [3, 3, K]`` is scratch (start, end, price at start per segment).
    Returns (cash change, position, room)."""
    K = kind.shape[1]
    for k in range(K):
        kd, sd, pr = kind[a, k], side[a, k], price[a, k]
        below = (kd == LIMIT and sd > 0) or (kd == STOP and sd < 0)
        above = (kd == LIMIT and sd < 0) or (kd == STOP and sd > 0)
        for s in range(3):
            p0, p1 = p[s], p[s + 1]
            c0 = (below and p0 <= pr) or (above and p0 >= pr)
            c1 = (below and p1 <= pr) or (above and p1 >= pr)
            if c0:
                seg[0, s, k] = float(s)
            elif c1:
                seg[0, s, k] = s + (pr - p0) / (p1 - p0)
            else:
                seg[0, s, k] = INF
            if c1:
                seg[1, s, k] = float(s + 1)
            elif c0:
                seg[1, s, k] = s + (pr - p0) / (p1 - p0)
            else:
                seg[1, s, k] = -INF
            seg[2, s, k] = p0 if c0 else pr
        if kd == MOO:
            seg[0, 0, k], seg[1, 0, k], seg[2, 0, k] = 0.0, 0.0, p[0]
        qty[a, k], px[a, k] = 0.0, np.nan
    tau, cur, pos, cash, room = 0.0, p[0], pos0, 0.0, room0
    done = 0  # bit mask of filled slots (K <= 63)
    for _ in range(K):
        best_t, best_k, best_q, best_p = INF, -1, 0.0, 0.0
        for k in range(K):
            kd = kind[a, k]
            if (done >> k) & 1 or not (kd == LIMIT or kd == STOP or kd == MOO):
                continue
            nxt, sbest = INF, 0
            for s in range(3):
                cs = np.maximum(seg[0, s, k], tau) if seg[1, s, k] >= tau else INF
                if cs < nxt:
                    nxt, sbest = cs, s
            if not nxt < INF:
                continue
            pf = cur if nxt > seg[0, sbest, k] else seg[2, sbest, k]
            q = _qty(side[a, k], size[a, k], sizing[a, k], pf, pos, equity, long_only, room)
            if q != 0 and nxt < best_t:
                best_t, best_k, best_q, best_p = nxt, k, q, pf
        if best_k < 0:
            break
        qty[a, best_k], px[a, best_k] = best_q, best_p
        done |= 1 << best_k
        pos += best_q
        cash -= best_q * best_p + abs(best_q) * best_p * fee
        room -= abs(best_q)
        tau, cur = best_t, best_p
    return cash, pos, room


@njit(**_JIT)
def _touched(kind, side, price, a, p):
    """How many of symbol ``a``'s intrabar slots the bar's prices ``p[4]`` reach at all. With at most
    one, both paths fill it at the same time and price (its first touch: the open, or its own price)."""
    if math.isnan(p[0]) or math.isnan(p[1]) or math.isnan(p[2]) or math.isnan(p[3]):
        return kind.shape[1] + 1  # no shortcut on a broken bar
    lo_p, hi_p = min(min(p[0], p[1]), min(p[2], p[3])), max(max(p[0], p[1]), max(p[2], p[3]))
    n = 0
    for k in range(kind.shape[1]):
        kd, sd, pr = kind[a, k], side[a, k], price[a, k]
        if kd == MOO:
            n += 1
        elif (kd == LIMIT and sd > 0) or (kd == STOP and sd < 0):
            n += lo_p <= pr
        elif (kd == LIMIT and sd < 0) or (kd == STOP and sd > 0):
            n += hi_p >= pr
    return n


@njit(**_JIT)
def fill_bar(
    kind, side, price, size, sizing, o, h, lo, c, vol, pos0, fees, long_only, equity, optimistic, participation, out
):
    """``fills.fill_orders`` per symbol, before the sums over symbols.

    ``participation``: NaN for no cap. ``out`` holds scratch and results: ``qty, px, qty2, px2 [A, K]``
    (the chosen path's fills land in ``qty, px``), ``seg [3, 3, K]``. Returns per-symbol arrays
    ``cash_d, pos, room, decided, gap, moc_cost`` ``[A]`` after the intrabar fills, before the auction."""
    qty, px, qty2, px2, seg = out
    A, K = kind.shape
    cash_d, pos, room = np.zeros(A), np.empty(A), np.empty(A)
    decided, gap = np.zeros(A, dtype=np.bool_), np.zeros(A)
    live = False
    for a in range(A):
        for k in range(K):
            if kind[a, k] == LIMIT or kind[a, k] == STOP or kind[a, k] == MOO:
                live = True
    p_hl, p_lh = np.empty(4), np.empty(4)
    tol = 1e-9 * max(abs(equity), 1e-300)
    for a in range(A):
        cap = INF if math.isnan(participation) else participation * vol[a]
        r0 = 0.0 if vol[a] == 0 else (cap if math.isfinite(cap) else INF)
        if not live:
            for k in range(K):
                qty[a, k], px[a, k] = 0.0, np.nan
            pos[a], room[a] = pos0[a], r0
            continue
        p_hl[0], p_hl[1], p_hl[2], p_hl[3] = o[a], h[a], lo[a], c[a]
        p_lh[0], p_lh[1], p_lh[2], p_lh[3] = o[a], lo[a], h[a], c[a]
        n_touched = _touched(kind, side, price, a, p_hl)
        if n_touched == 0:  # nothing reached: no path can fill
            for k in range(K):
                qty[a, k], px[a, k] = 0.0, np.nan
            pos[a], room[a] = pos0[a], r0
            continue
        f, lg = fees[a], long_only[a]
        cd1, ps1, rm1 = _path(p_hl, a, kind, side, price, size, sizing, pos0[a], equity, f, lg, r0, qty, px, seg)
        if n_touched == 1:  # one order can't see the order of the high and low
            cash_d[a], pos[a], room[a] = cd1, ps1, rm1
            continue
        cd2, ps2, rm2 = _path(p_lh, a, kind, side, price, size, sizing, pos0[a], equity, f, lg, r0, qty2, px2, seg)
        v_hl, v_lh = cd1 + ps1 * c[a], cd2 + ps2 * c[a]
        diff = abs(v_lh - v_hl)
        dec = diff > tol
        use_lh = dec and ((v_lh > v_hl) if optimistic else not (v_lh > v_hl))
        if use_lh:
            for k in range(K):
                qty[a, k], px[a, k] = qty2[a, k], px2[a, k]
            cash_d[a], pos[a], room[a] = cd2, ps2, rm2
        else:
            cash_d[a], pos[a], room[a] = cd1, ps1, rm1
        decided[a], gap[a] = dec, diff if dec else 0.0
    return cash_d, pos, room, decided, gap


@njit(**_JIT)
def close_auction(kind, side, size, sizing, c, pos, room, cash_d, fees, long_only, equity_close, qty, px):
    """Market-on-close slots at the close, in slot order (updates ``pos, room, cash_d, qty, px``).
    Returns the per-symbol auction cost ``[A]``."""
    A, K = kind.shape
    cost = np.zeros(A)
    for a in range(A):
        for k in range(K):
            if kind[a, k] != MOC:
                continue
            q = _qty(side[a, k], size[a, k], sizing[a, k], c[a], pos[a], equity_close, long_only[a], room[a])
            if q != 0:
                qty[a, k], px[a, k] = q, c[a]
                pos[a] += q
                fee = abs(q) * c[a] * fees[a]
                cash_d[a] -= q * c[a] + fee
                cost[a] += fee
                room[a] -= abs(q)
    return cost


@njit(**_JIT)
def simulate_kernel(
    x, vol, kind_p, side_p, price_p, size_p, sizing_p, tif_p, fees, long_only, dt, day_ends, rates, optimistic, part
):
    """``ledger.simulate_orders``'s loop over bars. ``rates``: financing, borrow, cash (annual).

    Returns per-bar ``eq_pre, fin, cost_close, cost_intra, moc_notional, intra_notional [T]``,
    ``weights, trades, decided, gap [T, A]``, ``fq, fp, fl, fk [T, A, K]`` and the final equity."""
    T, A, K = kind_p.shape
    kind, side, price = np.zeros((A, K), np.int8), np.zeros((A, K), np.int8), np.full((A, K), np.nan)
    size, sizing, tif = np.zeros((A, K)), np.zeros((A, K), np.int8), np.zeros((A, K), np.int8)
    out = (np.zeros((A, K)), np.full((A, K), np.nan), np.zeros((A, K)), np.full((A, K), np.nan), np.empty((3, 3, K)))
    eq_pre, fin, cost_close, cost_intra = np.empty(T), np.zeros(T), np.zeros(T), np.zeros(T)
    moc_n, intra_n = np.zeros(T), np.zeros(T)
    weights, trades = np.zeros((T, A)), np.zeros((T, A))
    fq, fp = np.zeros((T, A, K)), np.full((T, A, K), np.nan)
    fl, fk = np.full((T, A, K), np.nan), np.zeros((T, A, K), np.int8)
    decided, gap = np.zeros((T, A), np.bool_), np.zeros((T, A))
    cash, eq_ref, final = 1.0, 1.0, 1.0
    pos = np.zeros(A)
    any_live = False
    for t in range(T):
        c = x[t, :, 3]
        if t > 0:
            any_live = False
            ends = day_ends[t - 1]
            for a in range(A):
                for k in range(K):
                    if kind_p[t - 1, a, k] != NONE:  # a new order replaces the slot
                        kind[a, k], side[a, k], price[a, k] = (
                            kind_p[t - 1, a, k],
                            side_p[t - 1, a, k],
                            price_p[t - 1, a, k],
                        )
                        size[a, k], sizing[a, k], tif[a, k] = (
                            size_p[t - 1, a, k],
                            sizing_p[t - 1, a, k],
                            tif_p[t - 1, a, k],
                        )
                    elif not (tif[a, k] == GTC or (tif[a, k] == DAY and not ends)):
                        kind[a, k] = NONE
                    if kind[a, k] != NONE:
                        any_live = True
        if any_live:
            cash_d, pos_new, room, dec, gp = fill_bar(
                kind, side, price, size, sizing, x[t, :, 0], x[t, :, 1], x[t, :, 2], c, vol[t],
                pos, fees, long_only, eq_ref, optimistic, part, out,
            )  # fmt: skip
            qty, px = out[0], out[1]
            ci = 0.0
            for a in range(A):
                for k in range(K):
                    if qty[a, k] != 0:
                        ci += abs(qty[a, k]) * px[a, k] * fees[a]
            eq_close = cash
            for a in range(A):
                eq_close += cash_d[a]
            for a in range(A):
                eq_close += pos_new[a] * c[a]
            cc = close_auction(kind, side, size, sizing, c, pos_new, room, cash_d, fees, long_only, eq_close, qty, px)
            scale = max(abs(eq_ref), 1e-300)
            mn, tn, ccs = 0.0, 0.0, 0.0
            for a in range(A):
                trades[t, a] = (pos_new[a] - pos[a]) * c[a]
                decided[t, a], gap[t, a] = dec[a], gp[a] / scale
                cash += cash_d[a]
                ccs += cc[a]
                for k in range(K):
                    q = qty[a, k]
                    fq[t, a, k], fp[t, a, k] = q, px[a, k]
                    if q != 0:
                        fl[t, a, k], fk[t, a, k] = price[a, k], kind[a, k]
                        n = abs(q) * px[a, k]
                        tn += n
                        if kind[a, k] == MOC:
                            mn += n
                        if sizing[a, k] == QTY:  # a quantity order's unfilled rest keeps resting
                            left = size[a, k] - abs(q)
                            if left > DUST * max(size[a, k], 1e-300):
                                size[a, k] = left
                            else:
                                kind[a, k] = NONE
                        else:
                            kind[a, k] = NONE
                pos[a] = pos_new[a]
            eq_pre[t] = eq_close
            cost_close[t], cost_intra[t] = ccs, ci
            moc_n[t], intra_n[t] = mn, tn - mn
        else:
            e = cash
            for a in range(A):
                e += pos[a] * c[a]
            eq_pre[t] = e
        e = eq_pre[t]
        long_, short_, held = 0.0, 0.0, 0.0
        for a in range(A):
            hv = pos[a] * c[a]
            held += hv
            w = hv / e
            weights[t, a] = w
            trades[t, a] /= e
            if w > 0:
                long_ += w
            else:
                short_ += -w
        fin[t] = (max(0.0, long_ - 1.0) * rates[0] + short_ * rates[1] - max(0.0, 1.0 - long_) * rates[2]) * dt[t]
        cash -= fin[t] * e
        eq_ref = cash + held
        final = eq_ref
    return eq_pre, fin, cost_close, cost_intra, moc_n, intra_n, weights, trades, decided, gap, fq, fp, fl, fk, final
