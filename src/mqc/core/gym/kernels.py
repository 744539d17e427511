"""The env's own per-step arithmetic as compiled loops (numba, the `fast` extra): no market rule here.

``book.Book`` uses these where its numpy calls would cost more in call overhead than in arithmetic
(the batched env's step on ``[N, A]`` arrays): the action decoding's clipped row softmax, the
episode bookkeeping after a bar (equity, peak, drawdown, running mean, log reward) and the
observation's gather. The fill, costs and financing stay ``fills.step`` (itself compiled, see
``mqc.core.market.step_kernel``). Each function is the numpy code of ``book`` operation for operation
(the softmax's row sum is numpy's pairwise order; ``exp`` and ``log1p`` stay numpy calls, whose SIMD
versions are not libm's), so the two paths agree bit for bit: ``tests/core/gym_env/test_env.py`` holds
the env's two engines equal. Without numba ``book`` keeps its numpy calls.
"""

from __future__ import annotations

import math

import numpy as np

from mqc.core.market.fill_kernel import HAVE_NUMBA, njit
from mqc.core.market.step_kernel import block_sum, pairwise_sum

__all__ = ["HAVE_NUMBA", "advance", "observe", "softmax"]

_JIT = dict(cache=True, error_model="numpy", nogil=True)


@njit(**_JIT)
def _row_sum(z, n):
    """``np.add.reduce`` of a contiguous row ``z[:n]`` (numpy's pairwise order)."""
    return 0.0 + (block_sum(z, 0, n) if n <= 128 else pairwise_sum(z, n))


@njit(**_JIT)
def _shifted(action, bound, c0, c1):  # pragma: no cover - compiled
    """The columns ``[c0, c1)`` of ``action`` clipped to +-``bound`` (float64), minus each row's max."""
    n = action.shape[0]
    k = c1 - c0
    z = np.empty((n, k))
    for i in range(n):
        m = -math.inf
        for j in range(k):
            x = min(max(np.float64(action[i, c0 + j]), -bound), bound)
            z[i, j] = x
            m = max(m, x)
        for j in range(k):
            z[i, j] = z[i, j] - m
    return z


@njit(**_JIT)
def _normalised(z, keep):  # pragma: no cover - compiled
    """The first ``keep`` columns of ``z`` divided by each row's sum (numpy's pairwise order)."""
    n, k = z.shape
    out = np.empty((n, keep))
    for i in range(n):
        s = _row_sum(z[i], k)
        for j in range(keep):
            out[i, j] = z[i, j] / s
    return out


def softmax(action: np.ndarray, bound: float, c0: int, c1: int, keep: int) -> np.ndarray:
    """``book._softmax`` of the columns ``[c0, c1)`` of ``action`` clipped to +-``bound``, its first ``keep``
    columns (``[N, keep]``). The ``exp`` is numpy's own (its SIMD exp is not libm's to the last bit)."""
    z = _shifted(action, bound, c0, c1)
    np.exp(z, out=z)
    return _normalised(z, keep)


@njit(**_JIT)
def advance(equity, peak, recent, net, decay):  # pragma: no cover - compiled; equal to Book.step by test
    """One bar of the episodes' bookkeeping: ``[5, N]`` rows equity, peak, recent, drawdown and ``x``, the
    log reward being ``np.log1p(x)`` (numpy's, as ``exp`` above). One new array (one return to box)."""
    n = equity.shape[0]
    out = np.empty((5, n))
    rest = 1.0 - decay
    for i in range(n):
        e = equity[i] * (1.0 + net[i])
        p = peak[i]
        p = p if (p != p or p > e) else e  # np.maximum: NaN first, else the second on a tie
        out[0, i], out[1, i] = e, p
        out[2, i] = decay * recent[i] + rest * net[i]
        out[3, i] = 1.0 - e / p
        x = net[i]
        out[4, i] = x if (x != x or x > -1.0 + 1e-12) else -1.0 + 1e-12
    return out


@njit(**_JIT)
def observe(rows, t, book, equity, peak, recent):  # pragma: no cover - compiled; equal to Book.observe by test
    """``Book.observe``'s array: the feature rows ``rows[t]`` with the book, drawdown and running mean in
    their last columns (float32), and whether those columns are all finite."""
    n, A = book.shape
    size = rows.shape[1]
    F = size - A - 2
    obs = np.empty((n, size), dtype=np.float32)
    ok = True
    for i in range(n):
        src = rows[t[i]]
        for j in range(F):
            obs[i, j] = src[j]
        for a in range(A):
            v = np.float32(book[i, a])
            obs[i, F + a] = v
            ok = ok and math.isfinite(v)
        v1 = np.float32(equity[i] / peak[i] - 1.0)
        v2 = np.float32(recent[i])
        obs[i, F + A] = v1
        obs[i, F + A + 1] = v2
        ok = ok and math.isfinite(v1) and math.isfinite(v2)
    return obs, ok
