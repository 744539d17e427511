"""Behaviour policies on the feature cube, each a ``Strategy`` (``mqc backtest --policy NAME``).

- ``topk``: equal weight on the ``k`` assets with the best forecast score (mean log return).
- ``kelly``: fractional Kelly ``f * mu / sigma^2`` per asset (forecast mean simple return and
  variance of log return), clipped to ``+-cap`` per asset; when the gross exceeds the market's
  leverage cap the whole book is scaled *down*, never up, so the per-asset cap still holds after
  normalisation (the seed system renormalised to 1 and broke it).
- ``blended``: ``blend * topk + (1 - blend) * kelly``.

Rows before the cube's warm-up are 0 (cash). Shorting rules and leverage caps are then applied by the
market's fill, as for every strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.errors import ConfigError, DataError
from mqc.core.gym.config import CubeConfig
from mqc.core.gym.cube import build_cube
from mqc.core.market.config import MarketConfig

POLICIES = ("topk", "kelly", "blended")


@dataclass(frozen=True)
class PolicySettings:
    """Settings of the behaviour policies."""

    k: int = 1
    kelly_fraction: float = 0.5
    kelly_cap: float = 0.5  # per-asset |weight| cap
    blend: float = 0.5

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ConfigError(f"topk k must be >= 1, got {self.k}")
        if not 0.0 < self.kelly_cap <= 10.0 or self.kelly_fraction <= 0:
            raise ConfigError("kelly_cap must be in (0, 10] and kelly_fraction > 0")
        if not 0.0 <= self.blend <= 1.0:
            raise ConfigError(f"blend must be in [0, 1], got {self.blend}")


def topk_weights(score: np.ndarray, k: int) -> np.ndarray:
    """``[T, A]``: ``1/k`` on the ``k`` highest scores of each row (ties by asset order)."""
    T, A = score.shape
    k = min(k, A)
    order = np.argsort(-score, axis=1, kind="stable")[:, :k]
    w = np.zeros((T, A))
    np.put_along_axis(w, order, 1.0 / k, axis=1)
    return w


def kelly_weights(
    mu: np.ndarray, sigma: np.ndarray, fraction: float, cap: float, gross_cap: float, short: bool
) -> np.ndarray:
    """``[T, A]`` fractional Kelly weights, each within ``+-cap``, gross scaled down to ``gross_cap``."""
    var = np.maximum(sigma, 1e-6) ** 2
    w = np.clip(fraction * mu / var, -cap if short else 0.0, cap)
    gross = np.abs(w).sum(axis=1, keepdims=True)
    scale = np.minimum(1.0, gross_cap / np.maximum(gross, 1e-12))
    return w * scale


@dataclass
class BehaviourPolicy:
    """A behaviour policy as a ``Strategy`` over a panel's feature cube."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    cube_cfg: CubeConfig = field(default_factory=CubeConfig)
    settings: PolicySettings = field(default_factory=PolicySettings)
    lookback: int = 1

    def __post_init__(self) -> None:
        if self.kind not in POLICIES:
            raise ConfigError(f"unknown policy {self.kind!r}; known: {', '.join(POLICIES)}")

    @property
    def warmup(self) -> int:
        from mqc.core.gym.replay import cube_warmup

        return cube_warmup(self.cube_cfg)

    def weights_from_cube(self, cube: Any) -> np.ndarray:
        """``[T, A]`` target weights from a built cube (rows before its warm-up: 0)."""
        T = cube.values.shape[0]
        s = self.settings
        mean = np.nan_to_num(cube.values[..., cube.index("fc_mean")].astype(np.float64))
        out = np.zeros((T, len(cube.symbols)))
        first = cube.warmup
        if first >= T:
            return out
        if self.kind in ("topk", "blended"):
            top = topk_weights(mean[first:], s.k)
        if self.kind in ("kelly", "blended"):
            mu = np.nan_to_num(cube.values[first:, :, cube.index("fc_simple_mean")].astype(np.float64))
            sd = np.nan_to_num(cube.values[first:, :, cube.index("fc_std")].astype(np.float64))
            horizon = max(self.cube_cfg.prediction_length, 1)
            # per-bar Kelly: the horizon's mean and variance both scale with the horizon
            kel = kelly_weights(
                mu / horizon,
                sd / np.sqrt(horizon),
                s.kelly_fraction,
                s.kelly_cap,
                self.market.max_gross_leverage,
                self.market.allow_short,
            )
        if self.kind == "topk":
            out[first:] = top
        elif self.kind == "kelly":
            out[first:] = kel
        else:
            out[first:] = s.blend * top + (1.0 - s.blend) * kel
        return out

    def target_weights(self, panel: Any, cube: Any = None) -> np.ndarray:
        """``[T, A]`` float64 targets; row t uses bars <= t only."""
        if tuple(panel.symbols) != self.symbols:
            raise DataError(
                f"the policy was set up for {','.join(self.symbols)}, the panel holds {','.join(panel.symbols)}"
            )
        cube = cube if cube is not None else build_cube(panel, self.cube_cfg)
        cube.check_panel(panel)
        return self.weights_from_cube(cube)
