"""``ArrayForecaster``: the shared ``predict`` of mqc's own models, built on a batched array core.

Subclasses implement ``predict_arrays`` over left-NaN-padded context arrays ``[B, L, 5]``
(open, high, low, close, volume), so the evaluation harness can forecast thousands of windows in one
call without building timestamps; ``predict`` adds the per-symbol calendar and ``Forecast`` objects.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from mqc.core.data.catalog import guess_asset_class
from mqc.core.errors import DataError
from mqc.core.forecast.base import Forecast
from mqc.core.forecast.calendar import future_timestamps, utc_ns
from mqc.core.forecast.config import ForecastConfig

FIELDS5 = ("open", "high", "low", "close", "volume")


def column_values(df: pd.DataFrame, name: str):
    """One column's values without building a Series (``df[name]`` costs ~15 us each, which is
    most of the wrapper's time on a tiny model). Falls back to the public path on other pandas."""
    getter = getattr(df, "_get_column_array", None)
    if getter is not None:
        try:
            loc = df.columns.get_loc(name)
            if isinstance(loc, int):
                return getter(loc)  # ndarray, or a DatetimeArray for tz-aware timestamps
        except (KeyError, TypeError, AttributeError):
            pass
    return df[name].array


def frame_array(df: pd.DataFrame, length: int | None = None) -> np.ndarray:
    """The last ``length`` bars of a canonical frame as float64 ``[T, 5]``."""
    # Column by column on the tail: ``df[list]`` copies the whole frame through a reindex first.
    start = -length if length else 0
    return np.column_stack([np.asarray(column_values(df, c)[start:], dtype=np.float64) for c in FIELDS5])


def stack_context(context: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Left-pad (NaN) and stack the last ``length`` bars of each ``[T_i, 5]`` array -> ``[B, L, 5]``."""
    if not isinstance(context, np.ndarray):
        L = min(length, max(len(c) for c in context))
        out = np.full((len(context), L, 5), np.nan)
        for i, c in enumerate(context):
            c = c[-L:]
            out[i, L - len(c) :] = c
        return out
    return context[:, -length:]


def series_key(symbol: str, origin_ns: int) -> tuple[int, int]:
    """Stable random-stream key of one (symbol, origin): a 64-bit hash of the name and the origin time.

    Sampling models seed each series from ``(seed, *key)``, so a symbol's draws do not depend on
    which other symbols share the batch, on the eval chunk size, or on Python's salted ``hash``.
    """
    import hashlib

    sym = int.from_bytes(hashlib.blake2b(symbol.encode("utf-8"), digest_size=8).digest(), "little")
    return sym, int(origin_ns) & 0xFFFF_FFFF_FFFF_FFFF


def check_context(symbol: str, n_bars: int, min_context: int) -> None:
    """Raise DataError when a symbol has fewer than ``min_context`` bars of context."""
    if n_bars < min_context:
        raise DataError(
            f"{symbol}: only {n_bars} context bars, the forecaster needs at least {min_context}",
            hint=(
                "import more history (mqc data import), pick a later --end, or lower min_context ([forecast]"
                " min_context in a profile, or MQC_FORECAST_MIN_CONTEXT)"
            ),
        )


class ArrayForecaster(abc.ABC):
    """Base class: ``predict`` over frames, delegating the maths to ``predict_arrays``."""

    name = "base"
    has_samples = False
    want_samples = True  # the evaluation harness turns this off: it scores quantiles only
    # True when one call's series inform each other's forecasts (Chronos-2 cross-learning): the
    # evaluation harness then never mixes origins in one call, so no later bar reaches an earlier origin.
    shares_across_series = False

    def __init__(self, config: ForecastConfig | None = None, **overrides: object) -> None:
        import dataclasses

        cfg = config or ForecastConfig()
        self.config = dataclasses.replace(cfg, **overrides) if overrides else cfg

    @property
    def context_bars(self) -> int:
        """Bars of context each series needs (window models need more than ``context_length``)."""
        return self.config.context_length

    @abc.abstractmethod
    def predict_arrays(
        self,
        context: Sequence[np.ndarray] | np.ndarray,
        prediction_length: int,
        quantile_levels: tuple[float, ...],
        keys: Sequence[tuple[int, ...]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Forecast a batch of series.

        Args:
            context: ``B`` arrays ``[T_i, 5]`` (or one ``[B, L, 5]`` array, NaN left-padded), last row = origin.
            prediction_length: bars to forecast.
            quantile_levels: sorted levels in (0, 1).
            keys: per series, the stable random-stream key (``series_key``) of sampling models;
                deterministic models ignore it. None: sampling models key each series on its data.

        Returns:
            ``quantiles [B, Q, H, 4]`` (sorted, OHLC-consistent) and ``samples [B, N, H, 4]`` or None.
        """

    def predict(
        self,
        context: Mapping[str, pd.DataFrame],
        prediction_length: int,
        quantile_levels: tuple[float, ...],
    ) -> dict[str, Forecast]:
        """Forecast every symbol of ``context`` in one batched call (see ``Forecaster``)."""
        levels = tuple(sorted(quantile_levels))
        symbols = list(context)
        if not symbols:
            return {}
        arrays, stamps = [], []
        for s in symbols:
            df = context[s]
            check_context(s, len(df), self.config.min_context)
            arrays.append(frame_array(df, self.context_bars))
            stamps.append(utc_ns(column_values(df, "timestamp")[-500:]))
        keys = [series_key(s, int(stamps[i][-1])) for i, s in enumerate(symbols)]
        q, samples = self.predict_arrays(arrays, prediction_length, levels, keys=keys)
        out: dict[str, Forecast] = {}
        # Symbols on the same calendar (same asset class and recent timestamps: a basket of
        # equities, say) share one future calendar instead of learning it once each.
        calendars: dict[tuple[str, bytes], pd.DatetimeIndex] = {}
        for i, s in enumerate(symbols):
            asset_class = context[s].attrs.get("asset_class") or guess_asset_class(s)
            tail = stamps[i]
            key = (asset_class, tail.tobytes())
            if key not in calendars:
                calendars[key] = future_timestamps(
                    tail, prediction_length, asset_class=asset_class, tz=self.config.exchange_tz
                )
            out[s] = Forecast(
                symbol=s,
                origin=pd.Timestamp(int(tail[-1]), tz="UTC"),
                timestamps=calendars[key],
                quantile_levels=levels,
                quantiles=q[i],
                last_close=float(arrays[i][-1, 3]),
                samples=None if samples is None else samples[i],
                model=self.name,
            )
        return out
