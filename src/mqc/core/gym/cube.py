"""The forecast feature cube ``[T, A, F]``: a registered forecaster run at every bar, plus realised features.

Per asset and bar t the forecaster sees the bars up to t only (its last ``context_length``) and
forecasts the next ``prediction_length`` bars; the end-of-horizon log return ``log(c_H / c_t)`` of
its sample paths (or, for quantile-only models, of a dense grid of quantile levels read as equally
weighted pseudo-samples) is summarised as ``FORECAST_FEATURES``. ``REALISED_FEATURES`` come from the
bars themselves. A value is NaN (masked) on bars before it is defined, never zero-filled:
``valid[t, a, f]`` says where it is.

The cube is cached at ``cache_dir()/feature_cube/<key>.npz`` with a ``<key>.json`` beside it (feature
names, symbols, timestamps, forecaster and settings, data fingerprint), keyed by a content hash of the
bars and the settings, so a second run (or a backtest of a policy trained on it) reuses it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import atomic, paths
from mqc.core.errors import ConfigError, DataError
from mqc.core.gym.config import CubeConfig
from mqc.core.progress import NULL, Progress

FORMAT_VERSION = 1
FORECAST_FEATURES = (
    "fc_mean",  # mean log return to the horizon
    "fc_std",  # its std
    "fc_p_up",  # P(log return > 0)
    "fc_q10",
    "fc_q50",
    "fc_q90",
    "fc_simple_mean",  # mean simple return
    "fc_iqr",  # q75 - q25
    "fc_tail_ratio",  # q90 / -q10 (upside over downside tail)
    "fc_skew",
    "fc_kurt",  # excess kurtosis
    "fc_cvar5",  # mean log return of the worst 5% (a return: negative is a loss)
)
MOMENTUM_WINDOWS = (5, 20, 60)
REALISED_FEATURES = (
    *(f"mom_{w}" for w in MOMENTUM_WINDOWS),
    *(f"vol_{w}" for w in MOMENTUM_WINDOWS),
    "prev_ret",
    "range",
    "volume_change",
)
FEATURE_NAMES = FORECAST_FEATURES + REALISED_FEATURES
# pseudo-sample levels of quantile-only forecasters: (k + 0.5) / 40
_GRID = tuple((k + 0.5) / 40 for k in range(40))


@dataclass
class FeatureCube:
    """``values[t, a, f]`` float32 (NaN where undefined), ``valid`` bool, and what they were built from."""

    values: np.ndarray
    valid: np.ndarray
    names: tuple[str, ...]
    symbols: tuple[str, ...]
    timestamps: np.ndarray  # datetime64[ns] [T]
    settings: dict[str, Any]
    data_fingerprint: str
    key: str = ""
    cached: bool = False
    path: Path | None = None
    seconds: float = 0.0

    @property
    def warmup(self) -> int:
        """First bar at which every feature of every asset is defined (``len`` when never)."""
        ok = self.valid.all(axis=(1, 2))
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            return len(ok)
        # defined from here on: a later gap (a bad bar) would be a data problem, caught by the env
        return int(idx[0])

    def index(self, name: str) -> int:
        return self.names.index(name)

    def metadata(self) -> dict[str, Any]:
        """The JSON metadata written beside the cache file."""
        return {
            "format": "mqc-feature-cube",
            "format_version": FORMAT_VERSION,
            "key": self.key,
            "names": list(self.names),
            "symbols": list(self.symbols),
            "timestamps": [str(self.timestamps[0])[:29], str(self.timestamps[-1])[:29]] if len(self.timestamps) else [],
            "n_bars": len(self.timestamps),
            "settings": self.settings,
            "data_fingerprint": self.data_fingerprint,
            "warmup": self.warmup,
        }

    def check_panel(self, panel: Any) -> None:
        """Raise DataError when ``panel`` is not the bars this cube was built from."""
        if tuple(panel.symbols) != self.symbols:
            raise DataError(
                f"the feature cube was built for {','.join(self.symbols)}, the panel holds {','.join(panel.symbols)}",
                hint=f"rebuild it: mqc data features --symbols {','.join(panel.symbols)}",
            )
        if len(panel) != len(self.timestamps) or not np.array_equal(panel.timestamps, self.timestamps):
            raise DataError(
                "the feature cube's bars are not the panel's (other dates)",
                hint="rebuild it for these bars: mqc data features",
            )


def _settings(cfg: CubeConfig) -> dict[str, Any]:
    from mqc.core import config

    return config.to_dict(cfg)


def cube_key(panel: Any, cfg: CubeConfig) -> str:
    """Content hash of the panel's bars (timestamps, symbols, OHLCV, forward-fill mask) and the settings."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(panel.timestamps.astype("datetime64[ns]")).view(np.int64).tobytes())
    h.update(np.ascontiguousarray(panel.values, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(panel.filled, dtype=bool).tobytes())
    meta = {"v": FORMAT_VERSION, "symbols": list(panel.symbols), "settings": _settings(cfg)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:32]


def cache_path(key: str) -> Path:
    return paths.cache_dir() / "feature_cube" / f"{key}.npz"


# ----- realised features ------------------------------------------------------------------------
def realised_features(values: np.ndarray) -> np.ndarray:
    """``[T, A, len(REALISED_FEATURES)]`` from OHLCV ``[T, A, 5]``; row t uses bars <= t, NaN before defined."""
    T, A, _ = values.shape
    close = values[..., 3]
    logc = np.log(close)
    lr = np.full((T, A), np.nan)
    lr[1:] = np.diff(logc, axis=0)
    out = np.full((T, A, len(REALISED_FEATURES)), np.nan)
    k = 0
    for w in MOMENTUM_WINDOWS:
        if T > w:
            out[w:, :, k] = logc[w:] - logc[:-w]
        k += 1
    csum = np.concatenate([np.zeros((1, A)), np.cumsum(np.nan_to_num(lr), axis=0)])
    csq = np.concatenate([np.zeros((1, A)), np.cumsum(np.nan_to_num(lr) ** 2, axis=0)])
    for w in MOMENTUM_WINDOWS:
        # returns t-w+1 .. t (t >= w: all defined); sample variance
        if T > w:
            s = csum[w + 1 :] - csum[1:-w]
            q = csq[w + 1 :] - csq[1:-w]
            var = np.maximum((q - s * s / w) / (w - 1), 0.0)
            out[w:, :, k] = np.sqrt(var)
        k += 1
    out[:, :, k] = lr
    out[:, :, k + 1] = np.log(values[..., 1] / values[..., 2])
    vol = values[..., 4]
    vc = np.full((T, A), np.nan)
    vc[1:] = np.log1p(np.maximum(vol[1:], 0.0)) - np.log1p(np.maximum(vol[:-1], 0.0))
    out[:, :, k + 2] = vc
    return out


# ----- forecast features ------------------------------------------------------------------------
def summarise_log_returns(r: np.ndarray) -> np.ndarray:
    """``[B, N]`` end-of-horizon log returns (samples) -> ``[B, len(FORECAST_FEATURES)]``."""
    s = np.sort(r, axis=1)
    n = r.shape[1]

    def q(level: float) -> np.ndarray:
        pos = level * (n - 1)
        lo = int(np.floor(pos))
        hi = min(lo + 1, n - 1)
        return s[:, lo] * (1 - (pos - lo)) + s[:, hi] * (pos - lo)

    mean = r.mean(axis=1)
    std = r.std(axis=1)
    z = (r - mean[:, None]) / np.where(std > 0, std, 1.0)[:, None]
    skew = np.where(std > 0, (z**3).mean(axis=1), 0.0)
    kurt = np.where(std > 0, (z**4).mean(axis=1) - 3.0, 0.0)
    q10, q50, q90 = q(0.1), q(0.5), q(0.9)
    tail_n = max(1, int(np.ceil(0.05 * n)))
    cvar = s[:, :tail_n].mean(axis=1)
    down = np.maximum(-q10, 1e-12)
    tail_ratio = np.clip(np.maximum(q90, 0.0) / down, 0.0, 100.0)
    return np.stack(
        [
            mean,
            std,
            (r > 0).mean(axis=1),
            q10,
            q50,
            q90,
            np.expm1(r).mean(axis=1),
            q(0.75) - q(0.25),
            tail_ratio,
            skew,
            kurt,
            cvar,
        ],
        axis=-1,
    )


def _forecaster(cfg: CubeConfig) -> Any:
    from mqc.core.forecast.base import create
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.model import ArrayForecaster

    fc = ForecastConfig(
        model=cfg.forecaster,
        prediction_length=cfg.prediction_length,
        context_length=cfg.context_length,
        min_context=cfg.min_context,
        window=cfg.window,
        num_samples=cfg.num_samples,
        seed=cfg.seed,
    )
    model = create(cfg.forecaster, config=fc)
    if not isinstance(model, ArrayForecaster):
        raise ConfigError(
            f"forecaster {cfg.forecaster!r} has no batched array interface, so it cannot build a feature cube",
            hint="use a baseline (bootstrap, ewma-vol, hist-vol, drift, garch) or chronos2",
        )
    return model


def forecast_features(panel: Any, cfg: CubeConfig, progress: Progress = NULL) -> np.ndarray:
    """``[T, A, len(FORECAST_FEATURES)]``: per bar and asset, the forecaster's view of the next bars."""
    from mqc.core.forecast.model import series_key

    model = _forecaster(cfg)
    values = np.asarray(panel.values, dtype=np.float64)
    T, A, _ = values.shape
    L = model.context_bars
    out = np.full((T, A, len(FORECAST_FEATURES)), np.nan)
    first = cfg.min_context - 1  # bar t has t + 1 bars of context
    origins = [(t, a) for t in range(first, T) for a in range(A)]
    if not origins:
        return out
    padded = np.concatenate([np.full((L - 1, A, 5), np.nan), values], axis=0)  # bar t's context: rows t .. t+L-1
    ts_ns = panel.timestamps.astype("datetime64[ns]").astype(np.int64)
    H = cfg.prediction_length
    levels = _GRID
    progress.start(len(origins), f"feature cube: {cfg.forecaster} at {T - first} bars x {A} assets")
    for s in range(0, len(origins), cfg.chunk):
        batch = origins[s : s + cfg.chunk]
        ctx = np.stack([padded[t : t + L, a] for t, a in batch])
        keys = [series_key(panel.symbols[a], int(ts_ns[t])) for t, a in batch]
        q, samples = model.predict_arrays(ctx, H, levels, keys=keys)
        last = ctx[:, -1, 3]
        if samples is not None:
            end = samples[:, :, H - 1, 3]  # [B, N]
        else:
            end = q[:, :, H - 1, 3]  # [B, Q] pseudo-samples
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.log(end / last[:, None])
        stats = summarise_log_returns(r)
        for i, (t, a) in enumerate(batch):
            out[t, a] = stats[i]
        progress.advance(len(batch))
    progress.finish()
    return out


# ----- the cube ---------------------------------------------------------------------------------
def build_cube(
    panel: Any, cfg: CubeConfig | None = None, *, progress: Progress = NULL, cache: bool = True
) -> FeatureCube:
    """The feature cube of ``panel`` (read from the cache when the same bars and settings were built before).

    Raises:
        DataError: too few bars for the features' windows, or non-finite bars.
        ConfigError: unknown forecaster, or one without a batched interface.
    """
    cfg = cfg or CubeConfig()
    need = max(max(MOMENTUM_WINDOWS), cfg.min_context - 1) + 2
    if len(panel) < need:
        raise DataError(
            f"{len(panel)} bars are too few for the feature cube: its windows need {need} (momentum/volatility "
            f"{max(MOMENTUM_WINDOWS)}, forecaster context {cfg.min_context}) plus bars to decide on",
            hint="load more history (--start earlier)",
        )
    if not np.isfinite(panel.values[..., :4]).all() or (panel.values[..., :4] <= 0).any():
        raise DataError("the bars hold non-finite or non-positive prices", hint="check them: mqc data verify")
    _forecaster(cfg)  # unknown or unusable forecaster: fail before any work
    key = cube_key(panel, cfg)
    path = cache_path(key)
    started = time.perf_counter()
    if cache:
        hit = _read(path, panel, key, cfg)
        if hit is not None:
            return hit
    values = np.concatenate([forecast_features(panel, cfg, progress), realised_features(panel.values)], axis=-1)
    valid = np.isfinite(values)
    cube = FeatureCube(
        values=np.where(valid, values, np.nan).astype(np.float32),
        valid=valid,
        names=FEATURE_NAMES,
        symbols=tuple(panel.symbols),
        timestamps=np.asarray(panel.timestamps).astype("datetime64[ns]"),
        settings=_settings(cfg),
        data_fingerprint=panel.fingerprint,
        key=key,
        seconds=time.perf_counter() - started,
    )
    if cache:
        write_cube(cube, path)
    return cube


def write_cube(cube: FeatureCube, path: Path) -> None:
    """The cube as ``path`` (NPZ: values, valid, timestamps) and ``path.with_suffix('.json')`` (metadata),
    atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, values=cube.values, valid=cube.valid, timestamps=cube.timestamps.view(np.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(path, buf.getvalue())
    atomic.write_json(path.with_suffix(".json"), cube.metadata())
    cube.path = path


def _read(path: Path, panel: Any, key: str, cfg: CubeConfig) -> FeatureCube | None:
    try:
        meta = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        with np.load(path) as z:
            values, valid, ts = z["values"], z["valid"], z["timestamps"]
    except Exception:  # absent, torn or foreign: recomputed, never trusted
        return None
    T, A = len(panel), panel.n_assets
    if values.shape != (T, A, len(FEATURE_NAMES)) or meta.get("names") != list(FEATURE_NAMES) or meta.get("key") != key:
        return None
    if not np.array_equal(ts, panel.timestamps.astype("datetime64[ns]").view(np.int64)):
        return None
    return FeatureCube(
        values=values,
        valid=valid,
        names=FEATURE_NAMES,
        symbols=tuple(panel.symbols),
        timestamps=np.asarray(panel.timestamps).astype("datetime64[ns]"),
        settings=_settings(cfg),
        data_fingerprint=panel.fingerprint,
        key=key,
        cached=True,
        path=path,
    )


def cube_from_settings(panel: Any, settings: dict[str, Any], *, progress: Progress = NULL) -> FeatureCube:
    """Rebuild (or read from the cache) the cube a checkpoint or dataset recorded ``settings`` of."""
    from mqc.core import config

    known = {f.name for f in dataclasses.fields(CubeConfig)}
    cfg = config.from_dict(CubeConfig, {k: v for k, v in settings.items() if k in known}, "cube settings")
    return build_cube(panel, cfg, progress=progress)


def slice_cube(cube: FeatureCube, start: int, stop: int) -> FeatureCube:
    """Rows ``start .. stop - 1`` of a cube (the cube of ``panel.slice(start, stop)`` when ``start == 0``:
    every row depends on bars up to its own only)."""
    return dataclasses.replace(
        cube,
        values=cube.values[start:stop],
        valid=cube.valid[start:stop],
        timestamps=cube.timestamps[start:stop],
        cached=False,
        path=None,
    )
