"""Is the strategy's Sharpe ratio better than the 1/N benchmark's, beyond luck?

Two figures, both on per-bar net returns of the same bars:

**Stationary bootstrap of the Sharpe difference** (Politis & Romano 1994). Resample the paired bars
(strategy and benchmark together, so their correlation is kept) in blocks of geometric length with
mean ``b`` (default ``ceil(T^(1/3))``), wrapping around the end. For each resample compute
``D* = SR_s* - SR_b*`` (annualised). Then:

    ci          = 2.5% and 97.5% percentiles of D*
    p_value     = (1 + #{D* - D >= D}) / (B + 1)       one-sided, H0: SR_s <= SR_b (D* re-centred on D)

**Probabilistic and deflated Sharpe ratio** (Bailey & Lopez de Prado 2012, 2014), with per-bar
Sharpe ``SR``, skewness ``g3`` and (non-excess) kurtosis ``g4`` of the strategy's returns over ``n``
bars:

    PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2) )
    DSR      = PSR(SR0),  SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))

with N = ``n_trials`` strategies tried, gamma the Euler-Mascheroni constant and V the variance of
the Sharpe estimates across trials, approximated (the trials are unknown here) by the estimator's
own variance ``(1 - g3 SR + (g4 - 1) / 4 SR^2) / (n - 1)``. With N = 1, SR0 = 0 and DSR = PSR(0).
``psr_vs_benchmark`` uses SR* = the benchmark's per-bar Sharpe.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np

EULER_GAMMA = 0.5772156649015329
_NORMAL = NormalDist()


def stationary_bootstrap_indices(n: int, samples: int, block_length: float, rng: np.random.Generator) -> np.ndarray:
    """``[samples, n]`` resampled bar indices: geometric blocks of mean ``block_length``, circular."""
    p = 1.0 / max(block_length, 1.0)
    new_block = rng.random((samples, n)) < p
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(samples, n))
    pos = np.arange(n)
    last = np.maximum.accumulate(np.where(new_block, pos, 0), axis=1)
    return (np.take_along_axis(starts, last, axis=1) + (pos - last)) % n


def _sharpe_rows(x: np.ndarray) -> np.ndarray:
    sd = x.std(axis=-1, ddof=1)
    mean = x.mean(axis=-1)
    return np.divide(mean, sd, out=np.zeros_like(mean), where=sd > 1e-15)


def _moments(r: np.ndarray) -> tuple[float, float, float]:
    """Per-bar Sharpe, skewness and non-excess kurtosis (population moments)."""
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    if sd <= 1e-15:
        return 0.0, 0.0, 3.0
    z = (r - r.mean()) / r.std(ddof=0)
    return float(r.mean() / sd), float(np.mean(z**3)), float(np.mean(z**4))


def probabilistic_sharpe(sr: float, sr_star: float, n: int, skew: float, kurt: float) -> float:
    """PSR: probability that the true per-bar Sharpe exceeds ``sr_star`` (formula in the module doc)."""
    if n < 2:
        return float("nan")
    denom = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr
    z = (sr - sr_star) * math.sqrt(n - 1) / math.sqrt(max(denom, 1e-12))
    return float(_NORMAL.cdf(z))


def deflated_sharpe(sr: float, n: int, skew: float, kurt: float, n_trials: int) -> tuple[float, float]:
    """DSR and the per-bar Sharpe threshold SR0 it tests against (formula in the module doc)."""
    if n_trials <= 1 or n < 2:
        return probabilistic_sharpe(sr, 0.0, n, skew, kurt), 0.0
    var = max(1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr * sr, 1e-12) / (n - 1)
    q = (1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials) + EULER_GAMMA * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    sr0 = math.sqrt(var) * q
    return probabilistic_sharpe(sr, sr0, n, skew, kurt), sr0


def sharpe_significance(
    strategy: np.ndarray,
    benchmark: np.ndarray,
    bars_per_year: float,
    *,
    samples: int = 2000,
    block_length: float = 0.0,
    n_trials: int = 1,
    seed: int = 0,
    benchmark_name: str = "equal_weight",
) -> dict[str, float | int | str | None]:
    """Bootstrap p-value and CI of the annualised Sharpe difference, plus PSR and DSR.

    Args:
        strategy, benchmark: ``[T]`` per-bar net returns over the same bars.
        bars_per_year: annualisation of the Sharpe ratios.
        samples: bootstrap resamples (0 skips the bootstrap: p-value and CI are None).
        block_length: mean block length in bars (0: ``ceil(T^(1/3))``).
        n_trials: strategies tried (deflated Sharpe).
    Returns:
        A JSON-ready dict (see the module docstring for each figure).
    """
    s = np.asarray(strategy, dtype=np.float64)
    b = np.asarray(benchmark, dtype=np.float64)
    n = int(s.size)
    ann = math.sqrt(bars_per_year)
    sr_s, skew, kurt = _moments(s)
    sr_b, _, _ = _moments(b)
    diff = (sr_s - sr_b) * ann
    block = float(block_length) if block_length > 0 else float(math.ceil(n ** (1.0 / 3.0))) if n else 1.0
    out: dict[str, float | int | str | None] = {
        "benchmark": benchmark_name,
        "sharpe": sr_s * ann,
        "benchmark_sharpe": sr_b * ann,
        "sharpe_diff": diff,
        "ci_low": None,
        "ci_high": None,
        "p_value": None,
        "method": "stationary bootstrap of the paired bars",
        "samples": int(samples),
        "block_length": block,
        "psr": probabilistic_sharpe(sr_s, 0.0, n, skew, kurt),
        "psr_vs_benchmark": probabilistic_sharpe(sr_s, sr_b, n, skew, kurt),
        "n_trials": int(n_trials),
        "skew": skew,
        "kurtosis": kurt,
    }
    dsr, sr0 = deflated_sharpe(sr_s, n, skew, kurt, n_trials)
    out["dsr"] = dsr
    out["dsr_threshold_sharpe"] = sr0 * ann
    if samples > 0 and n >= 3:
        rng = np.random.default_rng(seed)
        boot = np.empty(samples)
        chunk = max(1, min(samples, 2_000_000 // max(n, 1)))  # bound memory to ~16 MB per array
        for i in range(0, samples, chunk):
            m = min(chunk, samples - i)
            idx = stationary_bootstrap_indices(n, m, block, rng)
            boot[i : i + m] = (_sharpe_rows(s[idx]) - _sharpe_rows(b[idx])) * ann
        out["ci_low"] = float(np.percentile(boot, 2.5))
        out["ci_high"] = float(np.percentile(boot, 97.5))
        out["p_value"] = float((1 + np.sum(boot - diff >= diff)) / (samples + 1))
    return out
