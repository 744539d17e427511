"""Vectorised Gaussian GARCH(1,1) maximum likelihood for many series at once (numpy only).

The model and its conventions follow the ``arch`` package, which the tests use as the oracle:
returns in percent, ``sigma2[t] = omega + alpha * e[t-1]**2 + beta * sigma2[t-1]`` started from
the backcast ``sum(w_i e_i**2)`` over the first ``min(75, n)`` residuals with ``w_i ~ 0.94**i``,
``omega > 0``, ``alpha, beta >= 0`` and ``alpha + beta < 1``.

Fitting one ``arch`` model per series costs a Python optimiser run each (~100 ms). Here every series
advances together: the variance recursion and its parameter derivatives run once over time on
``[B]`` vectors, and Newton steps (exact Hessian; BHHH, the outer product of per-bar scores,
where the Hessian is not negative definite) with a vectorised backtracking line search climb all
likelihoods at the same time. Series that have
converged drop out of later iterations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_LOG_2PI = float(np.log(2.0 * np.pi))
_MAX_PERSISTENCE = 1.0 - 1e-6
# starting grid (alpha, alpha + beta), as arch's GARCH.starting_values; the best per series wins
_LAMBDA_BLOCKS = ((1.0,), tuple(0.5**k for k in range(1, 7)), tuple(0.5**k for k in range(7, 20)))
_GRID = [(a, p) for a in (0.01, 0.05, 0.1, 0.2) for p in (0.5, 0.7, 0.9, 0.98) if a < p]


@dataclass
class GarchFit:
    """Per-series GARCH(1,1) estimates on percent returns (arrays of length B)."""

    mu: np.ndarray  # mean of the percent returns (0 for mean="zero")
    omega: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    loglik: np.ndarray
    next_variance: np.ndarray  # sigma2 of the first bar after the sample
    converged: np.ndarray  # bool
    n_iter: int

    def variance_paths(self, horizon: int) -> np.ndarray:
        """Per-step conditional variances ``[B, horizon]`` of the next ``horizon`` percent returns.

        ``E[sigma2_{T+h}] = omega + (alpha + beta) * E[sigma2_{T+h-1}]`` for h >= 2 (closed form).
        """
        persistence = (self.alpha + self.beta)[:, None]
        k = np.arange(horizon)[None, :]
        pk = persistence**k
        # sum_{j<k} p^j = (1 - p^k) / (1 - p); p < 1 by the constraint
        geo = (1.0 - pk) / (1.0 - persistence)
        return self.next_variance[:, None] * pk + self.omega[:, None] * geo


class _Panel:
    """Percent returns ``[T, B]`` (time-major: each recursion step reads contiguous rows) and masks."""

    def __init__(self, returns: np.ndarray, demean: bool) -> None:
        r = np.asarray(returns, dtype=np.float64) * 100.0
        valid = np.isfinite(r)
        # left padding only: the valid part of each row is contiguous at the right
        n = valid.sum(axis=1)
        self.n = n
        self.mean = np.where(n > 0, np.nansum(r, axis=1) / np.maximum(n, 1), 0.0) if demean else np.zeros(len(r))
        self.r = np.where(valid, r, 0.0).T.copy()  # [T, B]
        self.valid = valid.T.copy()
        W = r.shape[1]
        first = W - n
        self.first = np.zeros_like(self.valid)
        has = n > 0
        self.first[first[has], np.flatnonzero(has)] = True
        e = np.where(valid, r - self.mean[:, None], 0.0)
        # backcast from the first min(75, n) residuals of each series (arch's GARCH.backcast)
        tau = np.minimum(75, n)
        j = np.arange(75)[None, :]
        w = np.where(j < tau[:, None], 0.94**j, 0.0)
        cols = np.clip(first[:, None] + j, 0, W - 1)
        e2 = np.take_along_axis(e, cols, axis=1) ** 2
        self.backcast = (w * e2).sum(axis=1) / np.maximum(w.sum(axis=1), 1e-300)
        var = np.where(valid, e, 0.0) ** 2
        self.scale = np.maximum(var.sum(axis=1) / np.maximum(n, 1), 1e-12)  # mean squared residual
        self.backcast = np.maximum(self.backcast, 1e-12)
        self._flags()

    def _flags(self) -> None:
        # per-step shortcuts: most steps have every series valid and none starting
        self.any_first = self.first.any(axis=1)
        self.all_valid = self.valid.all(axis=1)

    def take(self, idx: np.ndarray) -> _Panel:
        sub = object.__new__(_Panel)
        sub.n, sub.mean, sub.backcast, sub.scale = self.n[idx], self.mean[idx], self.backcast[idx], self.scale[idx]
        sub.r, sub.valid, sub.first = self.r[:, idx], self.valid[:, idx], self.first[:, idx]
        sub._flags()
        return sub


def _loglik(
    p: _Panel, theta: np.ndarray, with_derivatives: bool, demean: bool = True
) -> tuple[np.ndarray, np.ndarray, tuple | None]:
    """Log-likelihood ``[B]``, next-bar variance ``[B]`` and, optionally, its derivatives.

    ``theta`` is ``[B, 4]`` (mu, omega, alpha, beta). With derivatives, the third item is
    ``(g, G, Hs)``: the gradient ``[B, k]``, the sum of per-bar score outer products (BHHH) and
    the exact Hessian ``[B, k, k]`` over the fitted parameters (k = 4 with a mean, else 3), from the derivative
    recursions of sigma2
    (``D_t = b_t + beta D_{t-1}`` and its Jacobian; the backcast is held fixed, as in arch).
    """
    mu, omega, alpha, beta = theta.T
    B = theta.shape[0]
    k = 4 if demean else 3
    m = 1 if demean else 0  # index of omega; mu (when fitted) is 0
    ia, ib = m + 1, m + 2
    bc = p.backcast
    s2 = omega + (alpha + beta) * bc
    e_prev = np.zeros(B)
    ll = np.zeros(B)
    if with_derivatives:
        d_start = np.zeros((B, k))
        d_start[:, m], d_start[:, ia], d_start[:, ib] = 1.0, bc, bc
        d = d_start.copy()
        h = np.zeros((B, k, k))
        g = np.zeros((B, k))
        Hs = np.zeros((B, k, k))
        G = np.zeros((B, k, k))
        base = np.zeros((B, k))
        base[:, m] = 1.0
    for t in range(p.r.shape[0]):
        first, valid = p.first[t], p.valid[t]
        any_first, all_valid = p.any_first[t], p.all_valid[t]
        if t > 0:
            e2p = e_prev * e_prev
            s2_new = omega + alpha * e2p + beta * s2
            if any_first:
                s2_new = np.where(first, omega + (alpha + beta) * bc, s2_new)
            if with_derivatives:
                if demean:
                    base[:, 0] = -2.0 * alpha * e_prev
                base[:, ia], base[:, ib] = e2p, s2
                h *= beta[:, None, None]
                h[:, :, ib] += d
                h[:, ib, :] += d
                if demean:
                    h[:, 0, 0] += 2.0 * alpha
                    h[:, 0, ia] -= 2.0 * e_prev
                    h[:, ia, 0] -= 2.0 * e_prev
                d = base + beta[:, None] * d
                if any_first:
                    h = np.where(first[:, None, None], 0.0, h)
                    d = np.where(first[:, None], d_start, d)
            s2 = s2_new
        e = p.r[t] - mu
        if not all_valid:
            e = np.where(valid, e, 0.0)
        inv = 1.0 / s2
        e2i = e * e * inv
        term = np.log(s2) + e2i
        ll -= 0.5 * (term if all_valid else np.where(valid, term, 0.0)) + 0.5 * _LOG_2PI * (1.0 if all_valid else valid)
        if with_derivatives:
            v = 1.0 if all_valid else valid.astype(np.float64)
            a = 0.5 * (e2i - 1.0) * inv * v
            g += a[:, None] * d
            c = (0.5 - e2i) * inv * inv * v
            outer = d[:, :, None] * d[:, None, :]
            Hs += a[:, None, None] * h + c[:, None, None] * outer
            if demean:
                g[:, 0] += e * inv * v
                # BHHH with the mean score: build the full score vector once
                sc = a[:, None] * d
                sc[:, 0] += e * inv * v
                G += sc[:, :, None] * sc[:, None, :]
                cross = (e * inv * inv * v)[:, None] * d
                Hs[:, 0, :] -= cross
                Hs[:, :, 0] -= cross
                Hs[:, 0, 0] -= inv * v
            else:
                G += (a * a)[:, None, None] * outer
        e_prev = e
    s2_next = omega + alpha * e_prev * e_prev + beta * s2
    return ll, s2_next, ((g, G, Hs) if with_derivatives else None)


def _project(theta: np.ndarray, p: _Panel, demean: bool) -> np.ndarray:
    """Clip parameters into arch's feasible region (omega in [1e-8 v, 10 v], alpha/beta in [0, 1], alpha+beta < 1)."""
    th = theta.copy()
    if not demean:
        th[:, 0] = 0.0
    th[:, 1] = np.clip(th[:, 1], 1e-8 * p.scale, 10.0 * p.scale)
    th[:, 2:] = np.clip(th[:, 2:], 0.0, 1.0)
    s = th[:, 2] + th[:, 3]
    shrink = np.where(s > _MAX_PERSISTENCE, _MAX_PERSISTENCE / np.maximum(s, 1e-300), 1.0)
    th[:, 2] *= shrink
    th[:, 3] *= shrink
    return th


def fit_garch(returns: np.ndarray, *, mean: str = "zero", max_iter: int = 100, tol: float = 1e-8) -> GarchFit:
    """Fit a Gaussian GARCH(1,1) to every row of ``returns`` (log returns, NaN left padding allowed).

    Args:
        returns: ``[B, T]`` returns (fractions, not percent); NaNs only before each row's first value.
        mean: ``"zero"`` (no mean, as the ``garch`` baseline) or ``"constant"`` (a fitted mean).
        max_iter: most Newton/BHHH iterations.
        tol: stop a series when an accepted step improves its log-likelihood by less than ``tol * n``.

    Returns:
        GarchFit on percent returns.
    """
    demean = mean == "constant"
    panel = _Panel(returns, demean)
    B = len(panel.n)
    # starting values: the best of a small grid, omega set so the unconditional variance matches
    # (all grid points in one likelihood pass: the recursion's cost is per step, not per series)
    n_grid = len(_GRID)
    tiled = panel.take(np.tile(np.arange(B), n_grid))
    grid = np.concatenate(
        [
            np.stack([panel.mean, panel.scale * (1.0 - pers), np.full(B, a), np.full(B, pers - a)], axis=1)
            for a, pers in _GRID
        ]
    )
    grid = _project(grid, tiled, demean)
    grid_ll = _loglik(tiled, grid, False)[0].reshape(n_grid, B)
    # the first grid point attaining the maximum, as a sequential strict-improvement scan picks
    scored = np.where(np.isnan(grid_ll), -np.inf, grid_ll)
    pick = np.argmax(scored, axis=0)
    theta = grid.reshape(n_grid, B, 4)[pick, np.arange(B)]
    ll = scored[pick, np.arange(B)]
    theta[ll == -np.inf] = 0.0  # no grid point has a likelihood (too few bars): left at zero
    active = panel.n >= 2
    converged = ~active
    use_bhhh = np.zeros(B, dtype=bool)  # after a failed Newton step: one BHHH step next
    stalled = np.zeros(B, dtype=bool)  # the previous step gained less than tol
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        sub = panel.take(idx)
        th = theta[idx]
        ll0, _, (g, G, Hs) = _loglik(sub, th, True, demean)
        # active set: alpha or beta at 0 with the gradient pointing below 0 stay fixed this step, so
        # the free parameters still move (a projected full step would stall at the bound)
        k = g.shape[1]
        free = np.ones((idx.size, k), dtype=bool)
        free[:, -2:] = ~((th[:, 2:] <= 1e-12) & (g[:, -2:] < 0))
        g = g * free
        eye = np.eye(k)
        mask2 = free[:, :, None] * free[:, None, :]
        fixed = (~free)[:, :, None] * eye
        # Newton where -H is positive definite (quadratic convergence near the optimum), BHHH
        # elsewhere (always positive definite, good far from it); damping keeps both well posed
        negH = -Hs * mask2 + fixed
        bhhh = G * mask2 + fixed
        bhhh = bhhh + (1e-8 * np.trace(bhhh, axis1=1, axis2=2) / k + 1e-12)[:, None, None] * eye
        step = np.linalg.solve(bhhh, g[..., None])[..., 0]
        newton_ok = np.linalg.eigvalsh(negH)[:, 0] > 1e-10 * np.abs(np.trace(negH, axis1=1, axis2=2))
        newton_ok &= ~use_bhhh[idx]
        if newton_ok.any():
            step[newton_ok] = np.linalg.solve(negH[newton_ok], g[newton_ok][..., None])[..., 0]
        full = np.zeros_like(th)
        full[:, 4 - k :] = step
        accepted = np.zeros(idx.size, dtype=bool)
        new_th, new_ll = th.copy(), ll0.copy()
        todo = np.arange(idx.size)
        # Backtracking over lambda = 1, 1/2, ..., 2^-19: each series takes the largest lambda that
        # does not lower its likelihood. lambda = 1 usually does, so it is tried alone; the rest
        # are tried in two batched passes (one likelihood pass per block of lambdas, not per lambda).
        for lams in _LAMBDA_BLOCKS:
            if todo.size == 0:
                break
            n_l, m = len(lams), todo.size
            rep = sub.take(np.tile(todo, n_l))
            steps = np.repeat(np.asarray(lams), m)[:, None] * np.tile(full[todo], (n_l, 1))
            cand = _project(np.tile(th[todo], (n_l, 1)) + steps, rep, demean)
            cll = _loglik(rep, cand, False, demean)[0].reshape(n_l, m)
            ok = np.isfinite(cll) & (cll >= ll0[todo])
            hit = ok.any(axis=0)
            first = ok.argmax(axis=0)[hit]
            rows = todo[hit]
            new_th[rows] = cand.reshape(n_l, m, 4)[first, np.flatnonzero(hit)]
            new_ll[rows] = cll[first, np.flatnonzero(hit)]
            accepted[rows] = True
            todo = todo[~hit]
        gain = new_ll - ll0
        retry = ~accepted & newton_ok  # a Newton step that found no ascent gets one BHHH try
        use_bhhh[idx] = retry
        # stop on the predicted gain g'step/2 of the step taken (the Newton decrement, or the score
        # statistic under BHHH): a small realised gain alone would also stop slow BHHH phases early
        # (a step cut by the bounds can predict much and gain little: two such steps in a row stop too)
        predicted = 0.5 * np.einsum("bk,bk->b", g, step)
        small = gain < tol * np.maximum(sub.n, 1)
        done = ~retry & (~accepted | (small & ((predicted < tol * np.maximum(sub.n, 1)) | stalled[idx])))
        stalled[idx] = small
        theta[idx], ll[idx] = new_th, new_ll
        converged[idx[done]] = True
        active[idx[done]] = False
    ll_final, s2_next, _ = _loglik(panel, theta, False)
    return GarchFit(theta[:, 0], theta[:, 1], theta[:, 2], theta[:, 3], ll_final, s2_next, converged, n_iter)
