"""The ``kronos`` forecaster: Monte-Carlo candle paths from Kronos, summarised into quantiles.

Every path is kept (``Forecast.samples``), so quantiles, probabilities and path statistics come
from the same draws. Each symbol is sampled from its own random stream, seeded from the seed, the
symbol and the origin, so its forecast is the same alone or beside other symbols.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mqc.core.data.catalog import guess_asset_class
from mqc.core.errors import ConfigError, DataError
from mqc.core.forecast.base import Forecast, sort_quantiles
from mqc.core.forecast.calendar import future_timestamps
from mqc.core.forecast.kronos.config import DEFAULT_MODEL, KronosModelConfig
from mqc.core.forecast.model import series_key

FIELDS5 = ("open", "high", "low", "close", "volume")
# ForecastConfig fields that carry over to Kronos settings when not given explicitly
_FROM_FORECAST = {
    "context_length": "context",
    "num_samples": "sample_count",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
}


def resolve_settings(config: Any = None, kronos: KronosModelConfig | None = None, **settings: Any) -> KronosModelConfig:
    """Kronos settings: ``kronos`` (or defaults + ``MQC_KRONOS_MODEL_*`` env) < ForecastConfig fields < ``settings``.

    Raises:
        ConfigError: an unknown setting or an invalid value.
    """
    if kronos is None:
        from mqc.core.config import resolve

        kronos = resolve(KronosModelConfig).value  # honours MQC_KRONOS_MODEL_TOKENIZER_PATH etc.
    base = kronos
    values: dict[str, Any] = {}
    if config is not None:
        for src, dst in _FROM_FORECAST.items():
            if hasattr(config, src):
                values[dst] = getattr(config, src)
        model_id = getattr(config, "model_id", None)
        if model_id and "chronos" not in str(model_id).lower():
            values["model_path"] = model_id
        for name in ("model_path", "tokenizer_path", "tokenizer_id"):
            if getattr(config, name, None):
                values["tokenizer_path" if name == "tokenizer_id" else name] = getattr(config, name)
    known = {f.name for f in dataclasses.fields(KronosModelConfig)}
    for key, value in settings.items():
        if value is None:
            continue
        if key not in known:
            from mqc.core.config import did_you_mean

            raise ConfigError(
                f"unknown kronos setting {key!r}{did_you_mean(key, known)}",
                hint=f"settings: {', '.join(sorted(known))}",
            )
        values[key] = value
    return dataclasses.replace(base, **values)


class KronosForecaster:
    """Forecaster over Kronos sample paths (see module doc)."""

    name = "kronos"
    has_samples = True

    def __init__(self, settings: KronosModelConfig) -> None:
        self.settings = settings
        self._model: Any = None
        self._tokenizer: Any = None

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            from mqc.core.forecast.kronos.checkpoint import load_model, load_tokenizer, set_threads

            set_threads(self.settings.threads)
            self._tokenizer = load_tokenizer(self.settings.tokenizer_path, self.settings.device)
            self._model = load_model(self.settings.model_path, self.settings.device)
        return self._model, self._tokenizer

    def sample_windows(
        self,
        windows: Sequence[np.ndarray],
        context_timestamps: Sequence[np.ndarray],
        future: Sequence[np.ndarray],
        keys: Sequence[tuple[int, ...]] | None = None,
    ) -> list[np.ndarray]:
        """Sample paths for windows of any lengths, each from its own seeded random stream.

        Every window is sampled with its own generator seeded from ``(seed, *key)``, so its paths
        do not depend on which other windows are in the call (the paths of one window still form
        one batch of ``sample_count``).

        Args:
            windows: per series ``[L_i, 5]`` OHLCV, last row = origin.
            context_timestamps: per series ``[L_i]`` timestamps; ``future`` ``[H]`` future timestamps.
            keys: per series, a stable random-stream key (``model.series_key``: symbol and origin);
                None keys each window on its own data.

        Returns:
            Per series ``[S, H, 6]`` float32 paths (open, high, low, close, volume, amount).
        """
        from mqc.core.forecast.kronos.sampler import (
            SamplingSettings,
            calendar_stamps,
            make_generator,
            sample_paths,
        )

        if keys is not None and len(keys) != len(windows):
            raise ValueError(f"{len(keys)} random-stream keys for {len(windows)} windows")
        model, tokenizer = self._load()
        s = self.settings
        sampling = SamplingSettings(s.sample_count, s.temperature, s.top_k, s.top_p, s.clip, s.max_context, s.use_cache)
        out: list[np.ndarray] = []
        for i, w in enumerate(windows):
            key = keys[i] if keys is not None else _data_key(w)
            seed = int(np.random.SeedSequence([int(s.seed), *key]).generate_state(1, np.uint64)[0] >> 1)
            paths = sample_paths(
                model,
                tokenizer,
                w[None],
                calendar_stamps(context_timestamps[i])[None],
                calendar_stamps(future[i])[None],
                sampling,
                make_generator(seed, s.device),
            )
            out.append(paths[0])
        return out

    def predict(
        self,
        context: Mapping[str, pd.DataFrame],
        prediction_length: int,
        quantile_levels: tuple[float, ...],
    ) -> dict[str, Forecast]:
        """Forecast every symbol of ``context`` (canonical frames, last row = origin).

        Raises:
            DataError: a symbol has fewer than 2 bars or non-finite context values.
            ArtifactNotFound / CheckpointError: the weights cannot be found or loaded.
        """
        if prediction_length < 1:
            raise ConfigError(f"prediction_length must be >= 1, got {prediction_length}")
        levels = tuple(sorted(quantile_levels))
        symbols = list(context)
        windows, stamps, futures = [], [], []
        for sym in symbols:
            df = context[sym].iloc[-self.settings.context :]
            if len(df) < 2:
                raise DataError(f"{sym}: kronos needs at least 2 context bars, got {len(df)}", hint="load more history")
            arr = df[list(FIELDS5)].to_numpy(dtype=np.float64)
            if not np.isfinite(arr).all():
                raise DataError(f"{sym}: context has missing or non-finite OHLCV values", hint="mqc data validate")
            ts = pd.DatetimeIndex(context[sym]["timestamp"].iloc[-2000:])
            asset_class = context[sym].attrs.get("asset_class") or guess_asset_class(sym)
            fut = future_timestamps(ts, prediction_length, asset_class=asset_class)
            windows.append(arr)
            stamps.append(_naive_utc(pd.DatetimeIndex(df["timestamp"])))
            futures.append(_naive_utc(fut))
        keys = [
            series_key(sym, int(stamps[i][-1].astype("datetime64[ns]").astype(np.int64)))
            for i, sym in enumerate(symbols)
        ]
        paths = self.sample_windows(windows, stamps, futures, keys)
        out: dict[str, Forecast] = {}
        for i, sym in enumerate(symbols):
            samples = paths[i][..., :4].astype(np.float64)
            q = sort_quantiles(np.quantile(samples, levels, axis=0))
            df = context[sym]
            fut = pd.DatetimeIndex(futures[i]).tz_localize("UTC")
            out[sym] = Forecast(
                symbol=sym,
                origin=pd.Timestamp(df["timestamp"].iloc[-1]),
                timestamps=fut,
                quantile_levels=levels,
                quantiles=q,
                last_close=float(df["close"].iloc[-1]),
                samples=samples,
                model=self.name,
            )
        return out


def _data_key(window: np.ndarray) -> tuple[int]:
    """A stable random-stream key from a window's own values (when the caller has no symbol key)."""
    import hashlib

    digest = hashlib.blake2b(np.ascontiguousarray(window, dtype=np.float64).tobytes(), digest_size=8).digest()
    return (int.from_bytes(digest, "little"),)


def _naive_utc(idx: pd.DatetimeIndex) -> np.ndarray:
    """UTC wall-clock timestamps without tz (what the calendar stamps are computed from)."""
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy()


def create(config: Any = None, kronos: KronosModelConfig | None = None, **settings: Any) -> KronosForecaster:
    """Factory registered as ``kronos`` (see ``resolve_settings`` for precedence).

    Raises:
        ConfigError: unknown or invalid settings.
    """
    return KronosForecaster(resolve_settings(config, kronos, **settings))


__all__ = ["DEFAULT_MODEL", "KronosForecaster", "create", "resolve_settings"]
