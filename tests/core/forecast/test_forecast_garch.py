"""Vectorised GARCH(1,1) against the ``arch`` package (the oracle) and inside the ``garch`` baseline."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.forecast.garch import fit_garch

arch = pytest.importorskip("arch")

# (omega, alpha, beta) in percent^2: interior, high persistence, alpha at 0 (a boundary optimum)
PARAMS = [(0.05, 0.08, 0.9), (0.1, 0.15, 0.8), (0.02, 0.05, 0.93), (0.2, 0.1, 0.6)]


def _simulate(n: int, omega: float, alpha: float, beta: float, seed: int, mu: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s2, r = omega / (1 - alpha - beta), np.empty(n)
    for t in range(n):
        e = np.sqrt(s2) * rng.standard_normal()
        r[t], s2 = mu + e, omega + alpha * e * e + beta * s2
    return r / 100.0  # fractions, as the baseline passes log returns


@pytest.mark.parametrize("mean", ["zero", "constant"])
def test_fit_and_variance_forecasts_match_arch(mean):
    R = np.stack([_simulate(400, *p, seed=i, mu=0.03) for i, p in enumerate(PARAMS)])
    R[1, :60] = np.nan  # a shorter series in the same batch (left padding)
    fit = fit_garch(R, mean=mean)
    assert fit.converged.all()
    for i in range(len(R)):
        r = R[i][np.isfinite(R[i])] * 100
        res = arch.arch_model(
            r, mean="Zero" if mean == "zero" else "Constant", vol="GARCH", p=1, q=1, rescale=False
        ).fit(disp="off", show_warning=False)
        ours = np.array([fit.omega[i], fit.alpha[i], fit.beta[i]])
        theirs = res.params[["omega", "alpha[1]", "beta[1]"]].to_numpy()
        np.testing.assert_allclose(ours, theirs, atol=5e-3, rtol=2e-2)
        if mean == "constant":
            assert fit.mu[i] == pytest.approx(res.params["mu"], abs=5e-3)
        assert fit.loglik[i] >= res.loglikelihood - 1e-3  # at least as good an optimum
        var = res.forecast(horizon=10, reindex=False).variance.to_numpy()[-1]
        np.testing.assert_allclose(fit.variance_paths(10)[i], var, rtol=1e-2)


def test_boundary_optimum_alpha_zero_matches_arch():
    r = np.random.default_rng(5).normal(0, 0.01, 300)  # white noise: arch puts alpha (or beta) at 0
    fit = fit_garch(r[None, :])
    res = arch.arch_model(r * 100, mean="Zero", vol="GARCH", p=1, q=1, rescale=False).fit(
        disp="off", show_warning=False
    )
    assert fit.loglik[0] >= res.loglikelihood - 1e-3
    var = res.forecast(horizon=5, reindex=False).variance.to_numpy()[-1]
    np.testing.assert_allclose(fit.variance_paths(5)[0], var, rtol=3e-2)


def test_garch_baseline_uses_the_fit_and_is_batch_independent(synth):
    from mqc.core.forecast import base
    from mqc.core.forecast.config import ForecastConfig

    frames = synth(n_assets=3, n_bars=300, seed=4)
    m = base.create("garch", config=ForecastConfig(model="garch", window=200))
    both = m.predict(frames, 5, (0.1, 0.5, 0.9))
    alone = m.predict({"SYN1": frames["SYN1"]}, 5, (0.1, 0.5, 0.9))
    np.testing.assert_allclose(both["SYN1"].quantiles, alone["SYN1"].quantiles, rtol=1e-6)
    q = both["SYN0"].quantiles[:, :, 3]
    assert (q[0] < q[1]).all() and (q[1] < q[2]).all()
    # the 10-90% close band widens with the horizon, as the cumulative variance does
    assert (np.diff(np.log(q[2] / q[0])) > 0).all()
