"""Forecast-accuracy metrics on close-price quantile forecasts (vectorised over origins x symbols).

Everything is measured on returns relative to the origin close (scale-free across symbols):

* ``mae``: mean |median return - realised return|; ``mase``: that MAE over persistence's MAE
  (persistence predicts a zero return), so < 1 beats persistence.
* ``crps``: mean over levels of twice the pinball loss, the usual quantile approximation of CRPS.
* ``wql``: weighted quantile loss (pinball in price units over the sum of |actual price|, per
  symbol, averaged over symbols and levels).
* ``coverage_50/80/90``: share of outcomes inside the central intervals; ``coverage_error`` their
  mean absolute gap to nominal.
* ``hit_rate``: share of non-zero median moves whose sign is right (None for persistence).
* ``rank_ic``: mean over origins of the Spearman correlation, across symbols, of predicted and
  realised returns (None with fewer than 3 symbols or constant predictions); only origins where
  every symbol has an origin at the same timestamp count (a cross-section).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mqc.core.forecast.config import INTERVALS

LOWER_IS_BETTER = {
    "mae": True,
    "mase": True,
    "crps": True,
    "wql": True,
    "coverage_error": True,
    "hit_rate": False,
    "rank_ic": False,
}
# Metrics measured across symbols at each origin: undefined for one symbol, so no per-symbol choice.
CROSS_SECTIONAL = frozenset({"rank_ic"})
PER_SYMBOL_METRICS = tuple(m for m in LOWER_IS_BETTER if m not in CROSS_SECTIONAL)


def _level_index(levels: tuple[float, ...], q: float) -> int:
    arr = np.asarray(levels)
    i = int(np.argmin(np.abs(arr - q)))
    if abs(arr[i] - q) > 1e-9:
        raise ValueError(f"quantile level {q} not among {list(levels)}")
    return i


def pinball(pred: np.ndarray, actual: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """Pinball loss ``[..., Q]`` of quantile predictions ``pred [..., Q]`` for ``actual [...]``."""
    q = np.asarray(levels)
    diff = actual[..., None] - pred
    return np.maximum(q * diff, (q - 1.0) * diff)


def score(
    pred: np.ndarray,
    actual: np.ndarray,
    last: np.ndarray,
    levels: tuple[float, ...],
    valid: np.ndarray | None = None,
    cross: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Metrics of close quantiles ``pred [O, S, Q]`` against ``actual [O, S]`` from origin closes ``last [O, S]``.

    Args:
        valid: bool ``[O, S]``, the cells that are origins (per-symbol origins leave padding); None = all.
        cross: bool ``[O]``, rows that are one cross-section (every symbol at one timestamp), the only
            rows RankIC reads; None = every fully valid row.
    """
    valid = np.ones(actual.shape, dtype=bool) if valid is None else valid
    cross = valid.all(axis=1) if cross is None else cross & valid.all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rel_pred = pred / last[..., None] - 1.0
        rel_true = actual / last - 1.0
    med = rel_pred[..., _level_index(levels, 0.5)]
    err = np.abs(med - rel_true)[valid]
    naive_err = np.abs(rel_true)[valid].sum()
    out: dict[str, float | None] = {"n": int(err.size)}
    out["mae"] = float(err.mean())
    out["mase"] = float(err.sum() / naive_err) if naive_err > 0 else None
    loss = pinball(rel_pred, rel_true, levels)[valid]
    out["crps"] = float(2.0 * loss.mean())
    price_loss = np.where(valid[..., None], pinball(pred, actual, levels), 0.0)  # [O, S, Q]
    denom = np.where(valid, np.abs(actual), 0.0).sum(axis=0)  # [S]
    has = valid.any(axis=0)
    out["wql"] = float(np.mean(2.0 * price_loss.sum(axis=0)[has] / denom[has, None]))
    gaps = []
    for width in INTERVALS:
        lo = pred[..., _level_index(levels, (1 - width) / 2)]
        hi = pred[..., _level_index(levels, (1 + width) / 2)]
        cov = float(((actual >= lo) & (actual <= hi))[valid].mean())
        out[f"coverage_{int(round(width * 100))}"] = cov
        gaps.append(abs(cov - width))
    out["coverage_error"] = float(np.mean(gaps))
    moved = (np.abs(med) > 1e-12) & valid
    out["hit_rate"] = float((np.sign(med[moved]) == np.sign(rel_true[moved])).mean()) if moved.any() else None
    # Float noise around a zero median (persistence, zero-drift walks) must not be ranked as a signal.
    out["rank_ic"] = rank_ic(np.where(moved, med, 0.0)[cross], rel_true[cross]) if cross.any() else None
    return out


def rank_ic(pred: np.ndarray, actual: np.ndarray) -> float | None:
    """Mean cross-sectional Spearman correlation over the rows of ``[O, S]`` arrays."""
    if pred.ndim != 2 or pred.shape[1] < 3:
        return None
    rp = pd.DataFrame(pred).rank(axis=1).to_numpy()
    ra = pd.DataFrame(actual).rank(axis=1).to_numpy()
    rp = rp - rp.mean(axis=1, keepdims=True)
    ra = ra - ra.mean(axis=1, keepdims=True)
    den = np.sqrt((rp**2).sum(axis=1) * (ra**2).sum(axis=1))
    ok = den > 0
    if not ok.any():
        return None
    return float(((rp * ra).sum(axis=1)[ok] / den[ok]).mean())


def metric_value(metrics: dict[str, float | None], name: str) -> float:
    """A metric as a number to minimise (sign flipped for higher-is-better; missing -> +inf)."""
    if name not in LOWER_IS_BETTER:
        from mqc.core.config import did_you_mean
        from mqc.core.errors import ConfigError

        raise ConfigError(
            f"unknown metric {name!r}{did_you_mean(name, LOWER_IS_BETTER)}", hint=f"one of {', '.join(LOWER_IS_BETTER)}"
        )
    v = metrics.get(name)
    if v is None or not np.isfinite(v):
        return float("inf")
    return float(v) if LOWER_IS_BETTER[name] else -float(v)


def check_per_symbol_metric(name: str, command: str) -> None:
    """Raise ConfigError unless ``name`` can rank candidates for a single symbol.

    Raises:
        ConfigError: unknown metric, or a cross-sectional one (``rank_ic``) that has no per-symbol value.
    """
    from mqc.core.errors import ConfigError

    metric_value({}, name)  # unknown names, with a did-you-mean
    if name in CROSS_SECTIONAL:
        raise ConfigError(
            f"{command}: metric {name!r} is cross-sectional (across symbols at each origin), so it has no value per"
            " symbol",
            hint=f"use one of {', '.join(PER_SYMBOL_METRICS)}",
        )


def best_candidate(scores: dict[str, float | None], name: str, what: str) -> str:
    """The candidate (key of ``scores``) with the best ``name`` score; ties keep the first.

    Raises:
        DataError: no candidate has a finite score (nothing to choose on).
    """
    from mqc.core.errors import DataError

    usable = {k: metric_value({name: v}, name) for k, v in scores.items()}
    finite = {k: v for k, v in usable.items() if np.isfinite(v)}
    if not finite:
        raise DataError(
            f"{what}: no candidate has a {name} score (every one is undefined), so there is nothing to choose on",
            hint=(
                f"pick another metric ({', '.join(PER_SYMBOL_METRICS)}); hit_rate is undefined for flat forecasts like"
                " naive"
            ),
        )
    return min(finite, key=lambda k: finite[k])
