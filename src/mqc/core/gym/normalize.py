"""The observation normaliser: running mean/variance over the train split, clipped, frozen outside training.

Its statistics are saved with the model (``to_dict``) and restored for evaluation, backtests and
trading (``from_dict``), so a policy always sees inputs scaled as in training.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.errors import CheckpointError


@dataclass
class ObsNormalizer:
    """``(obs - mean) / sqrt(var + eps)`` clipped to ``+-clip``; ``update`` merges a batch (Chan et al.)."""

    size: int
    clip: float = 10.0
    # variance floor: features live on the scale of returns (~1e-2), so a near-constant one is not
    # blown up to +-clip by noise
    eps: float = 1e-4
    frozen: bool = False
    mean: np.ndarray = field(default=None)  # type: ignore[assignment]
    var: np.ndarray = field(default=None)  # type: ignore[assignment]
    count: float = 1e-4

    def __post_init__(self) -> None:
        if self.mean is None:
            self.mean = np.zeros(self.size)
        if self.var is None:
            self.var = np.ones(self.size)

    def update(self, obs: np.ndarray) -> None:
        """Merge a batch ``[N, size]`` into the running statistics (no-op when frozen)."""
        if self.frozen:
            return
        x = np.asarray(obs, dtype=np.float64).reshape(-1, self.size)
        n = len(x)
        if n == 0:
            return
        bm, bv = x.mean(axis=0), x.var(axis=0)
        delta = bm - self.mean
        tot = self.count + n
        self.mean = self.mean + delta * n / tot
        self.var = (self.var * self.count + bv * n + delta**2 * self.count * n / tot) / tot
        self.count = tot

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        z = (np.asarray(obs, dtype=np.float64) - self.mean) / np.sqrt(self.var + self.eps)
        return np.clip(z, -self.clip, self.clip).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "clip": self.clip,
            "eps": self.eps,
            "mean": self.mean.tolist(),
            "var": self.var.tolist(),
            "count": float(self.count),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ObsNormalizer:
        """A frozen normaliser from ``to_dict``'s output.

        Raises:
            CheckpointError: missing or mis-sized statistics.
        """
        try:
            size = int(d["size"])
            mean, var = np.asarray(d["mean"], dtype=np.float64), np.asarray(d["var"], dtype=np.float64)
            if mean.shape != (size,) or var.shape != (size,):
                raise ValueError(f"statistics of shape {mean.shape}/{var.shape}, expected ({size},)")
            return cls(size, float(d["clip"]), float(d["eps"]), True, mean, var, float(d["count"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"unreadable observation normaliser ({exc})") from exc


class Identity:
    """The normaliser of ``env.normalize = false``: observations as they are."""

    frozen = True

    def update(self, obs: np.ndarray) -> None:
        return None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return np.asarray(obs, dtype=np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"identity": True}
