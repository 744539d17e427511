"""Future bar timestamps on a symbol's own calendar, learned from its history.

* 24/7 series (crypto, or any history with weekend bars and every intraday slot): regular steps.
* Daily bars without weekend bars: the next weekdays (exchange holidays are not modelled: a
  forecast for a holiday is labelled with that weekday).
* Intraday bars with sessions (hourly equities): the time-of-day slots seen on most days of the
  recent history, learned in the exchange time zone so daylight-saving shifts map correctly to UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mqc.core.errors import DataError

_RECENT = 500  # bars of history used to learn the calendar (~70 sessions of hourly equity bars)


def utc_ns(timestamps) -> np.ndarray:
    """Timestamps (any tz / naive UTC / int64 ns) -> int64 nanoseconds since the epoch, UTC."""
    if isinstance(timestamps, np.ndarray) and timestamps.dtype == np.int64:
        return timestamps
    arr = timestamps if hasattr(timestamps, "asi8") else getattr(timestamps, "array", None)
    if arr is not None and hasattr(arr, "asi8"):
        # a datetime Series/Index: its int64 values are already UTC nanoseconds (no object round trip)
        unit = getattr(arr, "unit", "ns")
        return arr.asi8.astype(np.int64) * {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}[unit]
    idx = pd.DatetimeIndex(timestamps)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.as_unit("ns").asi8.astype(np.int64)


def _weekday(ns: np.ndarray) -> np.ndarray:
    """Monday = 0 weekday of UTC nanosecond timestamps (1970-01-01 was a Thursday)."""
    return ((ns // 86_400_000_000_000) + 3) % 7


@dataclass(frozen=True)
class Calendar:
    """What ``future_timestamps`` learned: bar size, trading weekdays and intraday session slots."""

    bar_seconds: int
    weekdays: tuple[int, ...]  # 0 = Monday
    slots: tuple[int, ...]  # seconds after local midnight of each intraday bar ((): not session-based)
    tz: str

    @property
    def regular(self) -> bool:
        return not self.slots and len(self.weekdays) == 7


def learn_calendar(timestamps: pd.DatetimeIndex | np.ndarray, *, asset_class: str = "equity", tz: str = "America/New_York") -> Calendar:
    """Learn bar size, weekdays and session slots from the recent history of one symbol.

    Raises:
        DataError: fewer than 2 bars.
    """
    ns = utc_ns(timestamps)[-_RECENT:]
    if ns.size < 2:
        raise DataError("need at least 2 bars to learn a calendar")
    gaps = np.diff(ns) // 1_000_000_000
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        raise DataError("cannot infer the bar size: all timestamps are equal")
    vals, cnts = np.unique(gaps, return_counts=True)
    step = int(vals[np.argmax(cnts)])
    if asset_class == "crypto":
        return Calendar(step, tuple(range(7)), (), "UTC")
    if step >= 86400:
        weekdays = tuple(int(d) for d in np.unique(_weekday(ns)))
        return Calendar(step, weekdays if len(weekdays) < 7 else tuple(range(7)), (), "UTC")
    recent = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")
    local = recent.tz_convert(tz)
    days = local.normalize()
    weekdays = tuple(sorted(set(int(d) for d in local.day_of_week)))
    per_day = 86400 // step
    sec = (local - days).total_seconds().to_numpy().astype(np.int64)
    n_days = max(1, len(np.unique(days.asi8)))
    values, counts = np.unique(sec, return_counts=True)
    # Slots traded on at least half the days; half-days and odd prints do not shape the session.
    slots = tuple(int(v) for v, c in zip(values, counts, strict=True) if c >= 0.5 * n_days)
    if len(weekdays) == 7 and len(slots) >= per_day:
        return Calendar(step, tuple(range(7)), (), "UTC")
    return Calendar(step, weekdays, slots or tuple(int(v) for v in values), tz)


def future_timestamps(
    timestamps: pd.DatetimeIndex | np.ndarray,
    n: int,
    *,
    asset_class: str = "equity",
    tz: str = "America/New_York",
    calendar: Calendar | None = None,
) -> pd.DatetimeIndex:
    """The ``n`` bar timestamps (UTC) that follow the last of ``timestamps`` on its calendar."""
    ns = utc_ns(timestamps)
    if ns.size < 2:
        raise DataError("need at least 2 bars to build future timestamps")
    cal = calendar or learn_calendar(ns, asset_class=asset_class, tz=tz)
    step_ns = cal.bar_seconds * 1_000_000_000
    if cal.regular or not cal.slots:
        # Regular steps, or daily-and-longer bars kept only on trading weekdays (vectorised: this
        # runs once per symbol per forecast, so it must stay cheap).
        k = np.arange(1, (n if cal.regular else 2 * n + 7) + 1, dtype=np.int64)
        cand = ns[-1] + k * step_ns
        if not cal.regular:
            cand = cand[np.isin(_weekday(cand), cal.weekdays)][:n]
        return pd.DatetimeIndex(cand.astype("datetime64[ns]")).tz_localize("UTC")
    last = pd.Timestamp(ns[-1]).tz_localize("UTC")
    local_last = last.tz_convert(cal.tz)
    day = local_last.normalize().tz_localize(None)
    last_sec = int((local_last.tz_localize(None) - day).total_seconds())
    out_local: list[pd.Timestamp] = []
    pending = [s for s in cal.slots if s > last_sec]
    guard = 0
    while len(out_local) < n:
        if day.day_of_week in cal.weekdays:
            out_local.extend(day + pd.Timedelta(seconds=s) for s in pending)
        day = day + pd.Timedelta(days=1)
        pending = list(cal.slots)
        guard += 1
        if guard > 10 * n + 14:  # pragma: no cover - a calendar with no trading days
            raise DataError("could not build future timestamps: the learned calendar has no trading slots")
    local_idx = pd.DatetimeIndex(out_local[:n]).tz_localize(cal.tz, ambiguous=True, nonexistent="shift_forward")
    return local_idx.tz_convert("UTC")
