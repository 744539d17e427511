"""Policy inputs: candle features plus optional extra ``FeatureProvider`` columns, standardised with
train-split statistics only.

A ``FeatureProvider`` adds causal per-asset columns (e.g. Kronos forecast features). Its
``name`` and ``to_dict()`` are stored in the checkpoint; loading the checkpoint rebuilds it through
``build_feature_provider`` from the registry below, so a trained policy sees the same inputs in a
backtest as in training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from mqc.core.data.config import FeatureConfig
from mqc.core.data.features import compute_features
from mqc.core.errors import CheckpointError, DataError
from mqc.core.registry import Registry


@runtime_checkable
class FeatureProvider(Protocol):
    """Extra causal per-asset features appended to the candle features.

    ``compute(panel)`` returns ``(values [T, A, F] float32, valid [T, A] bool)``; row t may use
    bars <= t only. Invalid entries are set to 0 after standardisation.
    """

    name: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-able settings that ``build_feature_provider`` turns back into this provider."""
        ...

    def compute(self, panel: Any) -> tuple[np.ndarray, np.ndarray]: ...


_PROVIDERS = Registry("feature provider")


def register_feature_provider(name: str, factory: Callable[[dict[str, Any]], FeatureProvider]) -> None:
    """Make ``name`` loadable from checkpoints: ``factory(settings) -> FeatureProvider``."""
    _PROVIDERS.register(name, factory)


def register_lazy_feature_provider(name: str, target: str) -> None:
    """Register ``"package.module:factory"``, imported only when a checkpoint needs it."""
    _PROVIDERS.register_lazy(name, target)


# Implementations are registered by the layer that builds them (the train layer registers the
# built-in ones in ``mqc.core.train.providers``), so this module names none of them.


def build_feature_provider(spec: dict[str, Any]) -> FeatureProvider:
    """Rebuild a provider from its checkpoint entry ``{"name": ..., "settings": {...}}``.

    Raises:
        CheckpointError: the provider is not registered in this installation.
    """
    name = spec.get("name")
    factory = _PROVIDERS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise CheckpointError(
            f"checkpoint needs feature provider {name!r}, which is not registered",
            hint='install the package that provides it (from the mqc checkout: pip install -e ".[forecast,kronos]")',
        )
    return factory(dict(spec.get("settings") or {}))


def provider_specs(providers: Sequence[FeatureProvider]) -> list[dict[str, Any]]:
    return [{"name": p.name, "settings": p.to_dict()} for p in providers]


@dataclass
class PolicyInputs:
    """Standardised inputs for every bar of a panel.

    ``values[t, a, f]`` (float32) is zero where invalid; ``warmup`` is the first bar at which every
    candle feature is defined.
    """

    values: np.ndarray
    names: tuple[str, ...]
    warmup: int

    @property
    def n_features(self) -> int:
        return self.values.shape[-1]


def check_finite(panel: Any) -> None:
    """Raise DataError naming the first symbol/bar with a NaN/inf or non-positive price."""
    vals = np.asarray(panel.values, dtype=np.float64)
    bad = ~np.isfinite(vals).all(-1)
    prices = vals[..., :4]
    bad |= ~(prices > 0).all(-1) & np.isfinite(prices).all(-1)
    if bad.any():
        t, a = map(int, np.argwhere(bad)[0])
        raise DataError(
            f"{panel.symbols[a]}: NaN/inf or non-positive price at"
            f" {np.datetime_as_string(panel.timestamps[t], unit='s')} ({int(bad.sum())} bad bars in the panel)",
            hint="repair the bars (mqc data validate / --on-error repair) or exclude the symbol",
        )


def raw_inputs(
    panel: Any, feature_cfg: FeatureConfig, providers: Sequence[FeatureProvider] = ()
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], int]:
    """Unstandardised ``[T, A, F]`` features, their validity ``[T, A, F]``, names and warmup."""
    check_finite(panel)
    fs = compute_features(panel.values, feature_cfg)
    vals = [fs.values.astype(np.float32)]
    valid = [np.broadcast_to(fs.valid[:, None, None], fs.values.shape)]
    names = list(fs.names)
    for p in providers:
        v, ok = p.compute(panel)
        v = np.asarray(v, dtype=np.float32)
        if v.ndim != 3 or v.shape[:2] != fs.values.shape[:2]:
            raise DataError(
                f"feature provider {p.name!r} returned shape {v.shape}, expected [T, A, F] with T, A ="
                f" {fs.values.shape[:2]}"
            )
        ok = np.asarray(ok, dtype=bool)[..., None] & np.isfinite(v)
        vals.append(np.where(ok, v, 0.0).astype(np.float32))
        valid.append(np.broadcast_to(ok, v.shape))
        names += [f"{p.name}:{i}" for i in range(v.shape[-1])]
    return np.concatenate(vals, -1), np.concatenate(valid, -1), tuple(names), fs.warmup


def fit_stats(values: np.ndarray, valid: np.ndarray, stop: int) -> dict[str, list[float]]:
    """Per-feature mean/std over valid entries of bars ``[0, stop)`` (the train split only)."""
    v = values[:stop].astype(np.float64)
    ok = valid[:stop]
    n = np.maximum(ok.sum((0, 1)), 1)
    mean = np.where(ok, v, 0.0).sum((0, 1)) / n
    var = np.where(ok, (v - mean) ** 2, 0.0).sum((0, 1)) / n
    std = np.sqrt(var)
    std = np.where(std > 1e-8, std, 1.0)
    return {"mean": mean.tolist(), "std": std.tolist()}


def standardise(values: np.ndarray, valid: np.ndarray, stats: dict[str, list[float]]) -> np.ndarray:
    """``(x - mean) / std`` clipped to +-10, zero where invalid; float32."""
    mean = np.asarray(stats["mean"], dtype=np.float64)
    std = np.asarray(stats["std"], dtype=np.float64)
    if mean.shape[0] != values.shape[-1]:
        raise CheckpointError(
            f"feature statistics cover {mean.shape[0]} features but the inputs have {values.shape[-1]}"
        )
    z = np.clip((values - mean) / std, -10.0, 10.0)
    return np.where(valid, z, 0.0).astype(np.float32)


def build_inputs(
    panel: Any,
    feature_cfg: FeatureConfig,
    providers: Sequence[FeatureProvider] = (),
    *,
    stats: dict[str, list[float]] | None = None,
    fit_stop: int | None = None,
) -> tuple[PolicyInputs, dict[str, list[float]]]:
    """Standardised policy inputs for ``panel``.

    Args:
        stats: stored statistics (from a checkpoint); when None they are fitted on bars
            ``[0, fit_stop)``, which must be the train split.
    Returns:
        (PolicyInputs, stats used).
    """
    values, valid, names, warmup = raw_inputs(panel, feature_cfg, providers)
    if stats is None:
        if fit_stop is None:
            raise ValueError("fit_stop is required when stats are not given")
        stats = fit_stats(values, valid, fit_stop)
    return PolicyInputs(standardise(values, valid, stats), names, warmup), stats
