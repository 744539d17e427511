"""The one-bar rule of ``fills.step`` for a batch of books as scalar loops, compiled with numba when installed.

``fills.step`` runs ``step_batch`` for numpy float64 ``[N, A]`` books (the batched gym env) when
numba is importable (``pip install 'mqc[fast]'``) and otherwise its whole-array numpy path. Per book
(row) it is the same rule, operation for operation: the shorting rule and the bar's leverage cap
(``fills._constrain_np``), the held assets' room (``fills.fill_traded``), then ``simulator.holding`` /
``settle`` and the drift. Every sum over assets is numpy's own pairwise sum (``pairwise_sum``: eight
accumulators, the order ``np.add.reduce`` adds a contiguous row in; ``_colsum`` runs it down the
books side by side, so it vectorises), and ``_max`` / ``_min`` pick
the operand ``np.maximum`` / ``np.minimum`` pick (NaN first, then the second on a tie, so the sign of a
zero follows numpy too). So the two paths agree bit for bit: ``tests/core/market/test_step_kernel.py``
holds them equal, sign of zero included, on random batches of every branch; change both together.
Without numba the functions still run, as slow plain Python (the tests use that to check them).
"""

from __future__ import annotations

import numpy as np

from mqc.core.market.fill_kernel import HAVE_NUMBA, njit

__all__ = ["HAVE_NUMBA", "block_sum", "pairwise_sum", "step_batch"]

_JIT = dict(cache=True, error_model="numpy", nogil=True)
_BLOCK = 128  # numpy's PW_BLOCKSIZE: rows longer than this are split in two halves


@njit(**_JIT)
def _max(a, b):
    """``np.maximum(a, b)`` of two floats: NaN propagates; on a tie (+-0) the second operand."""
    if a != a:
        return a
    return a if a > b else b


@njit(**_JIT)
def _add(a, b):
    """``a + b`` where a NaN ``a`` is the result (as numpy's loops give it; compiled code may swap the
    operands of an add, and with two NaN the sign of the result would follow the other one)."""
    return a if a != a else a + b


@njit(**_JIT)
def _sub(a, b):
    """``a - b`` (see ``_add``)."""
    return a if a != a else a - b


@njit(**_JIT)
def _min(a, b):
    """``np.minimum(a, b)`` of two floats (see ``_max``)."""
    if a != a:
        return a
    return a if a < b else b


@njit(**_JIT)
def block_sum(x, lo, n):
    """numpy's ``pairwise_sum`` of ``x[lo:lo + n]`` for ``n <= 128`` (loops_utils.h): sequential below 8
    values, else eight interleaved accumulators added as a tree, then the rest in order."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += x[i]
        return res
    r0, r1, r2, r3 = x[lo], x[lo + 1], x[lo + 2], x[lo + 3]
    r4, r5, r6, r7 = x[lo + 4], x[lo + 5], x[lo + 6], x[lo + 7]
    i = 8
    stop = n - n % 8
    while i < stop:
        j = lo + i
        r0 += x[j]
        r1 += x[j + 1]
        r2 += x[j + 2]
        r3 += x[j + 3]
        r4 += x[j + 4]
        r5 += x[j + 5]
        r6 += x[j + 6]
        r7 += x[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += x[lo + i]
        i += 1
    return res


@njit(**_JIT)
def pairwise_sum(x, n):
    """numpy's ``pairwise_sum`` of ``x[:n]``: above 128 values, the sum of two halves split at a
    multiple of 8, recursively (here with an explicit stack: numba's cache cannot reload recursion)."""
    if n <= _BLOCK:
        return block_sum(x, 0, n)
    los = np.empty(64, dtype=np.int64)  # frames: segment start, length, stage (0: new, 1: left done, 2: both)
    ns = np.empty(64, dtype=np.int64)
    stage = np.zeros(64, dtype=np.int64)
    vals = np.empty(64)
    sp, vp = 0, 0
    los[0], ns[0] = 0, n
    while sp >= 0:
        lo, m = los[sp], ns[sp]
        if m <= _BLOCK:
            vals[vp] = block_sum(x, lo, m)
            vp += 1
            sp -= 1
            continue
        half = m // 2
        half -= half % 8
        if stage[sp] == 0:
            stage[sp] = 1
            sp += 1
            los[sp], ns[sp], stage[sp] = lo, half, 0
        elif stage[sp] == 1:
            stage[sp] = 2
            sp += 1
            los[sp], ns[sp], stage[sp] = lo + half, m - half, 0
        else:
            vp -= 1
            vals[vp - 1] = vals[vp - 1] + vals[vp]
            sp -= 1
    return vals[0]


@njit(**_JIT)
def _colsum(v, out, lanes):
    """``out[i] = np.add.reduce(v[:, i])`` for ``v [A, N]``: numpy's pairwise order down each column,
    the N columns side by side (contiguous rows, so the adds vectorise). ``lanes`` is ``[8, N]`` scratch."""
    A, n = v.shape
    if A > _BLOCK:  # rare (over 128 assets): column by column
        col = np.empty(A)
        for i in range(n):
            for a in range(A):
                col[a] = v[a, i]
            out[i] = 0.0 + pairwise_sum(col, A)
        return
    if A < 8:
        for i in range(n):
            out[i] = 0.0
        for a in range(A):
            for i in range(n):
                out[i] += v[a, i]
    else:
        for k in range(8):
            for i in range(n):
                lanes[k, i] = v[k, i]
        stop = A - A % 8
        for j in range(8, stop, 8):
            for k in range(8):
                for i in range(n):
                    lanes[k, i] += v[j + k, i]
        for i in range(n):
            out[i] = ((lanes[0, i] + lanes[1, i]) + (lanes[2, i] + lanes[3, i])) + (
                (lanes[4, i] + lanes[5, i]) + (lanes[6, i] + lanes[7, i])
            )
        for a in range(stop, A):
            for i in range(n):
                out[i] += v[a, i]
    for i in range(n):
        out[i] = 0.0 + out[i]


@njit(**_JIT)
def step_batch(
    book, targets, hold, returns, fees, dt, overnight, long_only, short_ok, params, exact
):  # pragma: no cover - compiled; its plain-Python body is tested directly
    """One bar of N books (``fills.step`` on ``[N, A]`` numpy arrays).

    Args:
        book, targets, returns: float64 ``[N, A]``; hold: bool ``[N, A]``, or ``[0, 0]`` (nothing held).
        fees: ``[A]``; long_only: bool ``[A]`` (``fills.long_only_mask``); short_ok: ``allow_short``
            (without it the weights are >= 0 and their gross is summed without ``abs``, as numpy does).
        dt: ``[N]`` or ``[1]`` (one for all); overnight: bool ``[N]`` or ``[1]``.
        params: ``[5]`` the leverage caps (intraday, overnight), then the financing, borrow and cash rates.
        exact: drift the next book with the net return (else with ``w . r``).
    Returns:
        ``(weights [N, A], next book [N, A], series [8, N])``, the series in ``SimResult`` field order:
        net, gross return, costs, financing, turnover, gross leverage, long, short exposure.
    """
    n, A = targets.shape
    w_out = np.empty((n, A))
    b_out = np.empty((n, A))
    out = np.empty((8, n))
    # Asset-major [A, N] work arrays: each step below runs down the books side by side.
    W = np.empty((A, n))
    V = np.empty((A, n))
    U = np.empty((A, n))
    B = np.empty((A, n))
    R = np.empty((A, n))
    lanes = np.empty((8, n))
    s1 = np.empty(n)
    s2 = np.empty(n)
    cap = np.empty(n)
    held = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        cap[i] = params[1] if overnight[i if overnight.shape[0] == n else 0] else params[0]
    any_held = False
    if hold.shape[0] == n:
        for i in range(n):
            for a in range(A):
                if hold[i, a]:
                    held[i] = any_held = True
                    break
    for i in range(n):
        for a in range(A):
            B[a, i] = book[i, a]
            R[a, i] = returns[i, a]
            x = 0.0 if held[i] and hold[i, a] else targets[i, a]  # a held asset's target reads as 0
            W[a, i] = _max(x, 0.0) if long_only[a] else x
    # constrain_weights: the shorting rule above, then the bar's cap
    for a in range(A):
        for i in range(n):
            V[a, i] = abs(W[a, i]) if short_ok else W[a, i]
    _colsum(V, s1, lanes)
    for i in range(n):
        s1[i] = _min(cap[i] / _max(s1[i], 1e-12), 1.0)
    for a in range(A):
        for i in range(n):
            W[a, i] = W[a, i] * s1[i]
            V[a, i] = abs(W[a, i])
    _colsum(V, s2, lanes)
    # scale_into_room: the room the held positions leave under the cap (all of it where none is held)
    if any_held:
        for a in range(A):
            for i in range(n):
                V[a, i] = abs(B[a, i]) if held[i] and hold[i, a] else 0.0
        _colsum(V, s1, lanes)
        for i in range(n):
            s1[i] = _max(cap[i] - s1[i], 0.0) if held[i] else cap[i]
    else:
        for i in range(n):
            s1[i] = cap[i]
    for i in range(n):
        s1[i] = s1[i] / s2[i] if s2[i] > s1[i] else 1.0
    for a in range(A):
        for i in range(n):
            W[a, i] = W[a, i] * s1[i]  # x * 1.0 is x (NaN and -0.0 included)
    if any_held:
        for i in range(n):
            if held[i]:
                for a in range(A):
                    if hold[i, a]:
                        W[a, i] = B[a, i]
    # simulator.holding and settle
    long_, short_, port, costs, turnover = out[6], out[7], out[1], out[2], out[4]
    for a in range(A):
        for i in range(n):
            V[a, i] = _max(W[a, i], 0.0)
            U[a, i] = _max(-W[a, i], 0.0)
    _colsum(V, long_, lanes)
    _colsum(U, short_, lanes)
    for a in range(A):
        for i in range(n):
            V[a, i] = W[a, i] * R[a, i]
            U[a, i] = abs(W[a, i] - B[a, i])
    _colsum(V, port, lanes)
    _colsum(U, turnover, lanes)
    for a in range(A):
        fee = fees[a]
        for i in range(n):
            V[a, i] = U[a, i] * fee
    _colsum(V, costs, lanes)
    for i in range(n):
        borrowed, idle = _max(long_[i] - 1.0, 0.0), _max(1.0 - long_[i], 0.0)
        dti = dt[i if dt.shape[0] == n else 0]
        financing = _sub(_add(borrowed * params[2], short_[i] * params[3]), idle * params[4]) * dti
        net = _sub(_sub(port[i], costs[i]), financing)
        out[0, i], out[3, i], out[5, i] = net, financing, _add(long_[i], short_[i])
        s2[i] = 1.0 + (net if exact else port[i])
    for i in range(n):
        g = s2[i]
        for a in range(A):
            w = W[a, i]
            w_out[i, a] = w
            b_out[i, a] = w * (1.0 + R[a, i]) / g
    return w_out, b_out, out
