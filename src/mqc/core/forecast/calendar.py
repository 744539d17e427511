"""Future bar timestamps on a symbol's own calendar, learned from its history.

* 24/7 series (crypto, or any history with weekend bars and every intraday slot): regular steps.
* Daily bars without weekend bars: the next weekdays.
* Intraday bars with sessions (hourly equities): the time-of-day slots seen on most days of the
  recent history, learned in the exchange time zone so daylight-saving shifts map correctly to UTC.

Equities whose exchange time zone is ``America/New_York`` also skip NYSE full-day closures (the
holiday rules below plus the one-off closures since 2001), unless the history itself has bars on
such days (a market that trades them, or data with filled holiday rows): the data's own calendar
wins. Their intraday sessions also end at 1 pm local on the NYSE early-close days (July 3,
the day after Thanksgiving, Christmas Eve). Other exchanges get weekdays only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from mqc.core.data.timeframe import DAY_NS as _DAY_NS
from mqc.core.errors import DataError

_RECENT = 500  # bars of history used to learn the calendar (~70 sessions of hourly equity bars)
# NYSE closures outside the yearly rules (Sept 11 2001, national days of mourning, Hurricane Sandy),
# each with the first day it could be known: a forecast made before then must not skip it.
_NYSE_ONE_OFF = (
    ("2001-09-11", "2001-09-11"), ("2001-09-12", "2001-09-11"), ("2001-09-13", "2001-09-11"), ("2001-09-14", "2001-09-11"),
    ("2004-06-11", "2004-06-05"),  # President Reagan died on the 5th
    ("2007-01-02", "2006-12-26"),  # President Ford died on Dec 26
    ("2012-10-29", "2012-10-28"), ("2012-10-30", "2012-10-28"),  # Hurricane Sandy: closure announced on the 28th
    ("2018-12-05", "2018-11-30"),  # President G. H. W. Bush died on Nov 30
    ("2025-01-09", "2024-12-29"),  # President Carter died on Dec 29
)
# The same as day numbers (days since 1970-01-01), parsed once: calendars are learned per origin.
_ONE_OFF_DAYS = np.array([np.datetime64(d, "D").astype(np.int64) for d, _ in _NYSE_ONE_OFF])
_ONE_OFF_KNOWN = np.array([np.datetime64(k, "D").astype(np.int64) for _, k in _NYSE_ONE_OFF])
_ONE_OFF_YEARS = np.array([int(d[:4]) for d, _ in _NYSE_ONE_OFF])


def nyse_closed_days(first_year: int, last_year: int, known_by: int | None = None) -> np.ndarray:
    """NYSE full-day closures in ``first_year .. last_year`` as sorted days since 1970-01-01
    (weekdays only). With ``known_by`` (a day number), one-off closures that could not yet be known
    on that day are left out: the yearly rules are known in advance, a hurricane is not.

    Rules as the exchange applies them: New Year's Day (Sunday -> Monday; none when it falls on a
    Saturday), Martin Luther King Jr. Day (from 1998), Washington's Birthday, Good Friday, Memorial
    Day, Juneteenth (from 2022), Independence Day and Christmas (Saturday -> Friday, Sunday ->
    Monday), Labor Day, Thanksgiving; plus the one-off closures since 2001.
    """
    rules = _nyse_rule_days(first_year, last_year)
    days, known, years = _ONE_OFF_DAYS, _ONE_OFF_KNOWN, _ONE_OFF_YEARS
    pick = (years >= first_year) & (years <= last_year)
    if known_by is not None:
        pick &= known <= known_by
    return np.union1d(rules, days[pick])


@lru_cache(maxsize=8)
def _nyse_rule_days(first_year: int, last_year: int) -> np.ndarray:
    """The yearly-rule part of ``nyse_closed_days`` (cached; read-only)."""
    from pandas.tseries.holiday import (
        MO,
        TH,
        AbstractHolidayCalendar,
        GoodFriday,
        Holiday,
        nearest_workday,
        sunday_to_monday,
    )
    from pandas.tseries.offsets import DateOffset

    class _NYSE(AbstractHolidayCalendar):
        rules = [  # noqa: RUF012 - pandas reads a class attribute
            Holiday("New Year's Day", month=1, day=1, observance=sunday_to_monday),
            Holiday("Martin Luther King Jr. Day", month=1, day=1, start_date="1998-01-01", offset=DateOffset(weekday=MO(3))),
            Holiday("Washington's Birthday", month=2, day=1, start_date="1971-01-01", offset=DateOffset(weekday=MO(3))),
            GoodFriday,
            Holiday("Memorial Day", month=5, day=31, start_date="1971-01-01", offset=DateOffset(weekday=MO(-1))),
            Holiday("Juneteenth", month=6, day=19, start_date="2022-01-01", observance=nearest_workday),
            Holiday("Independence Day", month=7, day=4, observance=nearest_workday),
            Holiday("Labor Day", month=9, day=1, offset=DateOffset(weekday=MO(1))),
            Holiday("Thanksgiving", month=11, day=1, offset=DateOffset(weekday=TH(4))),
            Holiday("Christmas", month=12, day=25, observance=nearest_workday),
        ]

    days = _NYSE().holidays(f"{first_year}-01-01", f"{last_year}-12-31")
    days = days[(days.year >= first_year) & (days.year <= last_year) & (days.day_of_week < 5)]
    out = np.unique(days.as_unit("ns").asi8 // _DAY_NS)
    out.flags.writeable = False
    return out


@lru_cache(maxsize=8)
def nyse_early_close_days(first_year: int, last_year: int) -> np.ndarray:
    """NYSE 1 pm early closes in ``first_year .. last_year`` (days since 1970-01-01, read-only):
    July 3 when it falls Monday-Thursday, the day after Thanksgiving, and Christmas Eve when it falls
    Monday-Thursday."""
    out = []
    for y in range(first_year, last_year + 1):
        july3, eve = pd.Timestamp(y, 7, 3), pd.Timestamp(y, 12, 24)
        nov1 = pd.Timestamp(y, 11, 1)
        thanksgiving = nov1 + pd.Timedelta(days=(3 - nov1.day_of_week) % 7 + 21)
        out += [d for d in (july3, eve) if d.day_of_week <= 3] + [thanksgiving + pd.Timedelta(days=1)]
    arr = np.unique(np.array([d.value // _DAY_NS for d in out], dtype=np.int64))
    arr.flags.writeable = False
    return arr


_EARLY_CLOSE_S = 13 * 3600  # local time of an early close: no bar starts at or after it


def _closed_days_between(first_ns: int, last_ns: int, known_by: int) -> np.ndarray:
    """NYSE closures of the years spanned (one more at the end), as known on day ``known_by``."""
    first, last = (int(np.datetime64(v, "ns").astype("datetime64[Y]").astype(np.int64)) + 1970 for v in (first_ns, last_ns))
    return nyse_closed_days(first, last + 1, known_by)


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
    nyse_holidays: bool = False  # skip NYSE full-day closures (see the module docstring)

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
        if len(weekdays) == 7:
            return Calendar(step, tuple(range(7)), (), "UTC")
        # Daily bars carry their trading date in UTC whatever their time of day (00:00, 05:00 or
        # the 21:00 close), so holidays are matched on UTC dates.
        return Calendar(step, weekdays, (), "UTC", _trades_nyse_calendar(ns // _DAY_NS, asset_class, tz))
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
    local_days = np.unique(days.tz_localize(None).as_unit("ns").asi8 // _DAY_NS)
    return Calendar(step, weekdays, slots or tuple(int(v) for v in values), tz, _trades_nyse_calendar(local_days, asset_class, tz))


def _trades_nyse_calendar(days: np.ndarray, asset_class: str, tz: str) -> bool:
    """Whether an equity history (days since the epoch of its bars) follows NYSE closures: it must
    be on New York time and have no bar on a closure day within its span."""
    if asset_class != "equity" or tz != "America/New_York" or days.size == 0:
        return False
    closed = _closed_days_between(int(days[0]) * _DAY_NS, int(days[-1]) * _DAY_NS, int(days[-1]))
    return not bool(np.isin(days, closed).any())


def season_bars(timestamps: pd.DatetimeIndex | np.ndarray, *, asset_class: str = "equity", tz: str = "America/New_York") -> int:
    """The natural seasonal period of a symbol, in bars: a week of daily (or longer) bars on its
    trading weekdays (5, or 7 for 24/7 markets), one session of session-based intraday bars, one
    day of 24/7 intraday bars."""
    cal = learn_calendar(timestamps, asset_class=asset_class, tz=tz)
    if cal.bar_seconds >= 86400:
        return max(1, len(cal.weekdays))
    if cal.slots:
        return len(cal.slots)
    return max(1, 86400 // cal.bar_seconds)


def learned_season(frame: pd.DataFrame, symbol: str, *, tz: str = "America/New_York") -> int:
    """``season_bars`` of a symbol's frame (asset class from ``frame.attrs`` or the symbol's name)."""
    from mqc.core.data.catalog import guess_asset_class

    asset_class = frame.attrs.get("asset_class") or guess_asset_class(symbol)
    return season_bars(utc_ns(frame["timestamp"].array[-_RECENT:]), asset_class=asset_class, tz=tz)


def with_learned_season(cfg, frame: pd.DataFrame, symbol: str):
    """``cfg`` (a ForecastConfig) with an unset ``season_length`` learned from ``frame`` (see
    ``season_bars``) when it configures ``seasonal-naive``; other configs are returned as they are."""
    if cfg.season_length is not None or cfg.model != "seasonal-naive":
        return cfg
    import dataclasses

    return dataclasses.replace(cfg, season_length=learned_season(frame, symbol, tz=cfg.exchange_tz))


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
        k = np.arange(1, (n if cal.regular else 2 * n + 14) + 1, dtype=np.int64)
        cand = ns[-1] + k * step_ns
        if not cal.regular:
            keep = np.isin(_weekday(cand), cal.weekdays)
            if cal.nyse_holidays:
                # closures known on the last bar's day only (no hindsight about one-off closures)
                keep &= ~np.isin(cand // _DAY_NS, _closed_days_between(int(cand[0]), int(cand[-1]), int(ns[-1] // _DAY_NS)))
            cand = cand[keep][:n]
        return pd.DatetimeIndex(cand.astype("datetime64[ns]")).tz_localize("UTC")
    last = pd.Timestamp(ns[-1]).tz_localize("UTC")
    local_last = last.tz_convert(cal.tz)
    day = local_last.normalize().tz_localize(None)
    last_sec = int((local_last.tz_localize(None) - day).total_seconds())
    out_local: list[pd.Timestamp] = []
    pending = [s for s in cal.slots if s > last_sec]
    guard = 0
    closed = early = np.empty(0, np.int64)
    if cal.nyse_holidays:
        span_end = int(last.value) + (2 * (n // max(1, len(cal.slots))) + 14) * _DAY_NS
        closed = _closed_days_between(int(last.value), span_end, int(last.value // _DAY_NS))
        years = pd.DatetimeIndex([int(last.value), span_end]).year
        early = nyse_early_close_days(int(years[0]), int(years[1]) + 1)
    while len(out_local) < n:
        day_no = day.value // _DAY_NS
        if day.day_of_week in cal.weekdays and not np.isin(day_no, closed):
            if np.isin(day_no, early):
                pending = [s for s in pending if s < _EARLY_CLOSE_S]
            out_local.extend(day + pd.Timedelta(seconds=s) for s in pending)
        day = day + pd.Timedelta(days=1)
        pending = list(cal.slots)
        guard += 1
        if guard > 10 * n + 14:  # pragma: no cover - a calendar with no trading days
            raise DataError("could not build future timestamps: the learned calendar has no trading slots")
    local_idx = pd.DatetimeIndex(out_local[:n]).tz_localize(cal.tz, ambiguous=True, nonexistent="shift_forward")
    return local_idx.tz_convert("UTC")
