"""The one causal feature module: every value at bar t uses bars <= t only.

Per asset and bar: log(O_t / C_{t-1}), log(H_t / O_t), log(L_t / O_t), log(C_t / O_t), realised
volatility of close-to-close log returns over each window, log momentum log(C_t / C_{t-w}), and log
volume over its rolling mean. Rolling windows are trailing, so perturbing any bar after t leaves
features up to t unchanged (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mqc.core.data.config import FeatureConfig


@dataclass(frozen=True)
class FeatureSet:
    values: np.ndarray  # float32 [T, A, F]; rows before ``warmup`` are NaN-free but not meaningful
    names: tuple[str, ...]
    warmup: int  # first bar index at which every feature is defined
    valid: np.ndarray  # bool [T]: t >= warmup


def feature_names(config: FeatureConfig) -> tuple[str, ...]:
    names = ["gap", "hi", "lo", "body"]
    names += [f"vol{w}" for w in config.vol_windows]
    names += [f"mom{w}" for w in config.momentum_windows]
    if config.include_volume:
        names.append(f"lvol{config.volume_window}")
    return tuple(names)


def _trailing_sum(x: np.ndarray, w: int) -> np.ndarray:
    """Sum of x[t-w+1 .. t] along axis 0 (zeros before there are w values)."""
    c = np.cumsum(x, axis=0, dtype=np.float64)
    out = c.copy()
    out[w:] = c[w:] - c[:-w]
    return out


def compute_features(values: np.ndarray, config: FeatureConfig | None = None) -> FeatureSet:
    """Features for a ``[T, A, 5]`` OHLCV array (fields open, high, low, close, volume).

    Returns a FeatureSet; entries at t < warmup are filled with 0 and flagged invalid.
    """
    cfg = config or FeatureConfig()
    v = np.asarray(values, dtype=np.float64)
    o, h, lo, c, vol = (v[:, :, i] for i in range(5))
    T = v.shape[0]
    logc = np.log(c)
    prev_c = np.concatenate([c[:1], c[:-1]], axis=0)
    r = np.zeros_like(logc)
    r[1:] = logc[1:] - logc[:-1]
    cols = [np.log(o / prev_c), np.log(h / o), np.log(lo / o), np.log(c / o)]
    cols[0][0] = 0.0
    for w in cfg.vol_windows:
        s1 = _trailing_sum(r, w)
        s2 = _trailing_sum(r * r, w)
        var = np.maximum(s2 / w - (s1 / w) ** 2, 0.0) * w / (w - 1)
        cols.append(np.sqrt(var))
    for w in cfg.momentum_windows:
        m = np.zeros_like(logc)
        m[w:] = logc[w:] - logc[:-w]
        cols.append(m)
    if cfg.include_volume:
        w = cfg.volume_window
        lv = np.log1p(np.maximum(vol, 0.0))
        mean = _trailing_sum(lv, w) / w
        cols.append(lv - mean)
    feats = np.stack(cols, axis=-1)
    warmup = min(cfg.warmup, T)
    feats[:warmup] = 0.0
    feats = np.nan_to_num(feats, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)
    valid = np.arange(T) >= warmup
    return FeatureSet(feats, feature_names(cfg), warmup, valid)
