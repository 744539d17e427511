"""Kronos Monte-Carlo path features: per asset and bar t, sample paths from the bars up to t.

For each horizon h the sampled close paths are summarised relative to the origin close c0:
``ret_mean``, ``ret_std``, ``p_up``, ``ret_q10``, ``ret_q50``, ``ret_q90`` of the end return
``c_h / c0 - 1``; ``path_vol``, the root-mean-square one-bar close change over the first h bars (as
a fraction of c0), averaged over paths; and ``path_range``, ``(max high - min low) / c0`` over the
first h bars, averaged over paths. Bars with fewer than ``context`` bars of history (or non-finite
bars in their window) are invalid, never zero-filled.

Features are cached per asset at ``cache_dir()/kronos_features/<hash>.npz`` keyed by the asset's
bars, both checkpoints' hashes and the settings, so a second run reuses them. Origins are sampled in
fixed batches of exactly ``batch_size`` rows aligned to bar 0 (bars without a usable window get a
dummy row), each batch seeded from the base seed and its start: a bar's features depend on its own
window only, never on later bars nor on how many bars follow. The future timestamps of origin t
(they feed the model's temporal embeddings) follow the calendar learned from the trailing
``CALENDAR_HISTORY`` timestamps ending at t, so a later change of the bar schedule (a vendor adding
extended-hours bars, say) never reaches features at or before t.
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

from mqc.core import paths
from mqc.core.atomic import write_bytes
from mqc.core.errors import ConfigError, DataError
from mqc.core.forecast.kronos.config import KronosFeatureConfig
from mqc.core.progress import NULL, Progress

STATS = ("ret_mean", "ret_std", "p_up", "ret_q10", "ret_q50", "ret_q90", "path_vol", "path_range")
# 2: the future calendar of origin t is learned from timestamps <= t (1 learned it from the panel)
# 3: US equity calendars skip NYSE closures (future timestamps are model inputs)
# 4: one-off NYSE closures only once they could be known at the origin
# 5: NYSE closures, early closes and late opens from exchange_calendars (core/calendar.py)
FORMAT_VERSION = 5
# timestamps up to and including the origin that its future calendar is learned from; a fixed
# trailing window keeps the work per origin constant (no O(T^2) on long panels)
CALENDAR_HISTORY = 500
PROVIDER_NAME = "kronos"


def feature_names(config: KronosFeatureConfig) -> tuple[str, ...]:
    return tuple(f"kronos_h{h}_{s}" for h in config.horizons for s in STATS)


@dataclass
class KronosFeatures:
    """``values[t, a, f]`` (float32, NaN where invalid), ``valid[t, a]`` and where they came from."""

    values: np.ndarray
    valid: np.ndarray
    names: tuple[str, ...]
    cache_hits: int = 0
    computed_origins: int = 0
    seconds: float = 0.0


def summarise(paths_: np.ndarray, c0: np.ndarray, horizons: tuple[int, ...]) -> np.ndarray:
    """Path statistics ``[B, len(horizons) * len(STATS)]`` from paths ``[B, S, H, 6]`` and closes ``[B]``."""
    close = paths_[..., 3].astype(np.float64)
    high = paths_[..., 1].astype(np.float64)
    low = paths_[..., 2].astype(np.float64)
    c0 = np.asarray(c0, dtype=np.float64)[:, None]
    prev = np.concatenate([np.broadcast_to(c0[:, :, None], close.shape[:2] + (1,)), close[..., :-1]], axis=-1)
    step = (close - prev) / c0[..., None]
    out = []
    for h in horizons:
        r = close[..., h - 1] / c0 - 1.0
        q10, q50, q90 = np.quantile(r, (0.1, 0.5, 0.9), axis=1)
        vol = np.sqrt(np.mean(step[..., :h] ** 2, axis=-1)).mean(axis=1)
        rng = ((high[..., :h].max(-1) - low[..., :h].min(-1)) / c0).mean(axis=1)
        out += [r.mean(1), r.std(1), (r > 0).mean(1), q10, q50, q90, vol, rng]
    return np.stack(out, axis=-1)


def _settings_key(config: KronosFeatureConfig) -> dict[str, Any]:
    d = dataclasses.asdict(config)
    # paths are identified by their weight hashes; device/threads do not change the draws on CPU
    for k in ("model_path", "tokenizer_path", "device", "threads"):
        d.pop(k)
    d["device_type"] = config.device.split(":")[0]
    return d


def cache_key(
    timestamps: np.ndarray, ohlcv: np.ndarray, model_hash: str, tokenizer_hash: str, config: KronosFeatureConfig
) -> str:
    """Content hash of one asset's bars, both checkpoints and the settings."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(timestamps.astype("datetime64[ns]")).view(np.int64).tobytes())
    h.update(np.ascontiguousarray(ohlcv, dtype=np.float64).tobytes())
    meta = {"v": FORMAT_VERSION, "model": model_hash, "tokenizer": tokenizer_hash, "settings": _settings_key(config)}
    h.update(json.dumps(meta, sort_keys=True).encode())
    return h.hexdigest()[:32]


def cache_path(key: str) -> Path:
    return paths.cache_dir() / "kronos_features" / f"{key}.npz"


def _read_cache(path: Path, n_bars: int, n_feat: int) -> tuple[np.ndarray, np.ndarray] | None:
    try:
        with np.load(path) as z:
            values, valid = z["values"], z["valid"]
    except Exception:  # a torn or foreign file is recomputed, never trusted
        return None
    if values.shape != (n_bars, n_feat) or valid.shape != (n_bars,):
        return None
    return values, valid


def _write_cache(path: Path, values: np.ndarray, valid: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez(buf, values=values, valid=valid)
    write_bytes(path, buf.getvalue())


class _Sampler:
    """Loads the checkpoints on first use and samples batches of origins of one asset."""

    def __init__(self, config: KronosFeatureConfig) -> None:
        self.config = config
        self.model: Any = None
        self.tokenizer: Any = None

    def load(self) -> None:
        if self.model is None:
            from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer, set_threads

            set_threads(self.config.threads)
            self.tokenizer = load_tokenizer(self.config.tokenizer_path, self.config.device)
            self.model = load_model(self.config.model_path, self.config.device)

    def run(self, windows: np.ndarray, x_ts: np.ndarray, y_ts: np.ndarray, seed: int) -> np.ndarray:
        from mqc.core.forecast.kronos.sampler import (
            SamplingSettings,
            calendar_stamps,
            make_generator,
            sample_paths,
        )

        self.load()
        c = self.config
        settings = SamplingSettings(c.sample_count, c.temperature, c.top_k, c.top_p, c.clip, c.max_context, c.use_cache)
        xs = np.stack([calendar_stamps(t) for t in x_ts])
        ys = np.stack([calendar_stamps(t) for t in y_ts])
        return sample_paths(self.model, self.tokenizer, windows, xs, ys, settings, make_generator(seed, c.device))


class _FutureStamps:
    """Future bar timestamps per origin, each from the calendar learned on timestamps up to it.

    Memoised per origin so the assets of one panel (same timestamps, same asset class) share them.
    """

    def __init__(self, timestamps: np.ndarray, asset_class: str, horizon: int) -> None:
        self.timestamps = timestamps
        self.asset_class = asset_class
        self.horizon = horizon
        self._memo: dict[int, np.ndarray] = {}

    def __call__(self, t: int) -> np.ndarray:
        """``[horizon]`` naive-UTC timestamps after bar ``t``; reads ``timestamps[: t + 1]`` only."""
        fut = self._memo.get(t)
        if fut is None:
            from mqc.core.forecast.calendar import future_timestamps, learn_calendar

            history = self.timestamps[max(0, t + 1 - CALENDAR_HISTORY) : t + 1]
            calendar = learn_calendar(history, asset_class=self.asset_class)
            idx = future_timestamps(history[-2:], self.horizon, calendar=calendar)
            fut = idx.tz_convert("UTC").tz_localize(None).to_numpy()
            self._memo[t] = fut
        return fut


def _asset_features(
    sampler: _Sampler,
    timestamps: np.ndarray,
    ohlcv: np.ndarray,
    future: _FutureStamps,
    progress: Progress,
    started: float,
    total: int,
    done: list[int],
) -> tuple[np.ndarray, np.ndarray, int]:
    c = sampler.config
    n, L, H = len(ohlcv), c.context, c.max_horizon
    values = np.full((n, len(c.horizons) * len(STATS)), np.nan, dtype=np.float32)
    valid = np.zeros(n, dtype=bool)
    finite = np.isfinite(ohlcv).all(-1) & (ohlcv[:, 3] > 0)
    bad_before = np.concatenate([[0], np.cumsum(~finite)])
    # an origin t is usable when its whole window [t-L+1, t] is finite
    ok = np.zeros(n, dtype=bool)
    ts = np.arange(L - 1, n)
    ok[ts] = (bad_before[ts + 1] - bad_before[ts + 1 - L]) == 0
    computed = 0
    bs = c.batch_size
    dummy_ts = timestamps[:L] if n >= L else None
    for b0 in range(0, n, bs):
        rows = range(b0, b0 + bs)
        origins = [t for t in rows if t < n and ok[t]]
        if not origins or dummy_ts is None:
            continue
        # every batch has exactly bs rows (row r <-> bar b0 + r; unusable bars get a dummy window),
        # so the random draws of a bar never depend on which later bars exist or are finite
        windows = np.zeros((bs, L, 5))
        x_ts = np.broadcast_to(dummy_ts, (bs, L)).copy()
        y_ts = np.broadcast_to(future(L - 1), (bs, H)).copy()
        for t in origins:
            r = t - b0
            windows[r] = ohlcv[t - L + 1 : t + 1]
            x_ts[r] = timestamps[t - L + 1 : t + 1]
            y_ts[r] = future(t)
        seed = (c.seed * 1_000_003 + b0) % (2**63)
        paths_ = sampler.run(windows, x_ts, y_ts, seed)
        idx = np.asarray(origins) - b0
        values[origins] = summarise(paths_[idx], ohlcv[origins, 3], c.horizons).astype(np.float32)
        valid[origins] = True
        computed += len(origins)
        done[0] += len(origins)
        rate = done[0] / max(time.perf_counter() - started, 1e-9)
        progress.advance(len(origins), eta_s=round((total - done[0]) / rate, 1) if rate > 0 else None)
    valid &= np.isfinite(values).all(-1)
    return values, valid, computed


def compute_kronos_features(
    timestamps: np.ndarray,
    ohlcv: np.ndarray,
    config: KronosFeatureConfig,
    *,
    asset_classes: tuple[str, ...] | None = None,
    progress: Progress | None = None,
    use_disk_cache: bool = True,
) -> KronosFeatures:
    """Kronos path features for every bar and asset of a panel.

    Args:
        timestamps: ``[T]`` bar timestamps (UTC).
        ohlcv: ``[T, A, 5]`` open, high, low, close, volume.
        config: feature settings.
        asset_classes: per asset (learns 24/7 vs session calendars for the future stamps; the
            calendar of origin t is learned from ``timestamps[: t + 1]`` only).
        progress: sink; ``advance`` carries ``eta_s`` over the origins still to sample.
        use_disk_cache: read and write ``cache_dir()/kronos_features``.

    Returns:
        KronosFeatures with values ``[T, A, F]`` (NaN where invalid) and valid ``[T, A]``.

    Raises:
        DataError: shapes do not match.
        ArtifactNotFound / CheckpointError: the Kronos checkpoints cannot be found or loaded.
    """
    from mqc.core.forecast.kronos.checkpoint import weights_hash

    started = time.perf_counter()
    progress = progress or NULL
    ohlcv = np.asarray(ohlcv, dtype=np.float64)
    timestamps = np.asarray(timestamps, dtype="datetime64[ns]")
    if ohlcv.ndim != 3 or ohlcv.shape[-1] < 5 or ohlcv.shape[0] != len(timestamps):
        raise DataError(
            f"kronos features need ohlcv [T, A, 5] matching {len(timestamps)} timestamps, got {ohlcv.shape}"
        )
    n, n_assets = ohlcv.shape[:2]
    names = feature_names(config)
    m_hash = weights_hash(config.model_path, "model")
    t_hash = weights_hash(config.tokenizer_path, "tokenizer")
    values = np.full((n, n_assets, len(names)), np.nan, dtype=np.float32)
    valid = np.zeros((n, n_assets), dtype=bool)
    todo, hits = [], 0
    for a in range(n_assets):
        key = cache_key(timestamps, ohlcv[:, a, :5], m_hash, t_hash, config)
        cached = _read_cache(cache_path(key), n, len(names)) if use_disk_cache else None
        if cached is not None:
            values[:, a], valid[:, a] = cached
            hits += 1
        else:
            todo.append((a, key))
    total = sum(max(0, n - config.context + 1) for _ in todo)
    progress.start(total, f"kronos features: {len(todo)} asset(s) x {total // max(len(todo), 1)} bars")
    sampler, done, computed = _Sampler(config), [0], 0
    futures: dict[str, _FutureStamps] = {}
    for a, key in todo:
        cls = asset_classes[a] if asset_classes else "equity"
        future = futures.setdefault(cls, _FutureStamps(timestamps, cls, config.max_horizon))
        v, ok, k = _asset_features(sampler, timestamps, ohlcv[:, a, :5], future, progress, started, total, done)
        values[:, a], valid[:, a] = v, ok
        computed += k
        if use_disk_cache:
            _write_cache(cache_path(key), v, ok)
    progress.finish()
    return KronosFeatures(values, valid, names, hits, computed, time.perf_counter() - started)


class KronosFeatureProvider:
    """``FeatureProvider`` of ``mqc.core.policy.inputs``: Kronos path features for a panel."""

    name = PROVIDER_NAME

    def __init__(self, config: KronosFeatureConfig | None = None, progress: Progress | None = None) -> None:
        self.config = config or KronosFeatureConfig()
        self.progress = progress
        self.last: KronosFeatures | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d["horizons"] = list(self.config.horizons)
        return d

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.config)

    def compute(self, panel: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(values [T, A, F] float32, valid [T, A] bool)`` for ``panel`` (row t uses bars <= t)."""
        self.last = compute_kronos_features(
            panel.timestamps,
            panel.values[..., :5],
            self.config,
            asset_classes=tuple(getattr(panel, "asset_classes", ()) or ()) or None,
            progress=self.progress,
        )
        return self.last.values, self.last.valid


def provider_from_settings(settings: dict[str, Any]) -> KronosFeatureProvider:
    """Rebuild the provider from a checkpoint's stored settings.

    Raises:
        ConfigError: the stored settings are not valid Kronos feature settings.
    """
    known = {f.name for f in dataclasses.fields(KronosFeatureConfig)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"checkpoint kronos provider has unknown settings {unknown}")
    values = dict(settings)
    if "horizons" in values:
        values["horizons"] = tuple(int(h) for h in values["horizons"])
    return KronosFeatureProvider(KronosFeatureConfig(**values))
