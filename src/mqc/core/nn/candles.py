"""Candle standardisation: statistics fitted on some rows (a Kronos window, an LM's train split),
applied anywhere, then clipped. One formula for both, so they cannot drift apart."""

from __future__ import annotations

import numpy as np

EPS = 1e-5


def fit_scale(x: np.ndarray, axis: int | tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and ``population std + 1e-5`` of ``x`` over ``axis`` (kept as size-1 axes)."""
    mean = x.mean(axis=axis, keepdims=True)
    scale = x.std(axis=axis, keepdims=True) + np.asarray(EPS, dtype=x.dtype)
    return mean, scale


def standardize(x: np.ndarray, mean: np.ndarray, scale: np.ndarray, clip: float) -> np.ndarray:
    """``clip((x - mean) / scale, -clip, clip)``."""
    return np.clip((x - mean) / scale, -clip, clip)
