"""Future bar timestamps on a symbol's own calendar, learned from its history.

* 24/7 series (crypto, or any history with weekend bars and every intraday slot): regular steps.
* Daily bars without weekend bars: the next weekdays.
* Intraday bars with sessions (hourly equities): the time-of-day slots seen on most days of the
  recent history, learned in the exchange time zone so daylight-saving shifts map correctly to UTC.

Equities whose exchange time zone is ``America/New_York`` also skip the NYSE's full-day closures
(``core/calendar.py``, from ``exchange_calendars``; one-off closures only once they could be known),
unless the history itself has bars on such days (a market that trades them, or data with filled
holiday rows): the data's own calendar wins. Their intraday sessions also end at the exchange's
early close (1 pm on July 3, the day after Thanksgiving, Christmas Eve) and start no earlier than a
late open. Other exchanges get weekdays only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mqc.core.calendar import DAY_NS as _DAY_NS
from mqc.core.calendar import ExchangeCalendar, default_exchange, exchange_calendar, utc_ns
from mqc.core.errors import DataError

__all__ = ["Calendar", "future_timestamps", "learn_calendar", "season_bars", "utc_ns"]

_RECENT = 500  # bars of history used to learn the calendar (~70 sessions of hourly equity bars)


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
    exchange: str | None = None  # skip this exchange's closures (``core/calendar.py``); None: weekdays only

    @property
    def regular(self) -> bool:
        return not self.slots and len(self.weekdays) == 7


def learn_calendar(
    timestamps: pd.DatetimeIndex | np.ndarray, *, asset_class: str = "equity", tz: str = "America/New_York"
) -> Calendar:
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
        return Calendar(step, weekdays, (), "UTC", _exchange_followed(ns, asset_class, tz, daily=True))
    local = (
        pd.DatetimeIndex(ns.astype("datetime64[ns]"))
        .tz_localize("UTC")
        .tz_convert(tz)
        .tz_localize(None)
        .as_unit("ns")
        .asi8
    )
    days = local // _DAY_NS
    weekdays = tuple(int(d) for d in np.unique((days + 3) % 7))
    per_day = 86400 // step
    sec = (local - days * _DAY_NS) // 1_000_000_000
    n_days = max(1, np.unique(days).size)
    values, counts = np.unique(sec, return_counts=True)
    # Slots traded on at least half the days; half-days and odd prints do not shape the session.
    slots = tuple(int(v) for v, c in zip(values, counts, strict=True) if c >= 0.5 * n_days)
    if len(weekdays) == 7 and len(slots) >= per_day:
        return Calendar(step, tuple(range(7)), (), "UTC")
    return Calendar(
        step, weekdays, slots or tuple(int(v) for v in values), tz, _exchange_followed(ns, asset_class, tz, daily=False)
    )


def _exchange_followed(ns: np.ndarray, asset_class: str, tz: str, *, daily: bool) -> str | None:
    """The exchange whose closures a history follows: the default one for its asset class and time
    zone (``core.calendar.default_exchange``), unless the history has a bar on one of its closures."""
    code = default_exchange(asset_class, tz)
    if code is None or code == "24/7":
        return None
    return None if exchange_calendar(code).trades_on_closures(ns, daily=daily) else code


def season_bars(
    timestamps: pd.DatetimeIndex | np.ndarray, *, asset_class: str = "equity", tz: str = "America/New_York"
) -> int:
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
    exchange = exchange_calendar(cal.exchange) if cal.exchange else None
    if cal.regular or not cal.slots:
        # Regular steps, or daily-and-longer bars kept only on trading weekdays (vectorised: this
        # runs once per symbol per forecast, so it must stay cheap).
        k = np.arange(1, (n if cal.regular else 2 * n + 14) + 1, dtype=np.int64)
        cand = ns[-1] + k * step_ns
        if not cal.regular:
            keep = np.isin(_weekday(cand), cal.weekdays)
            if exchange is not None:
                # closures known on the last bar's day only (no hindsight about one-off closures)
                keep &= ~exchange.is_closed(cand // _DAY_NS, known_by=int(ns[-1] // _DAY_NS))
            cand = cand[keep][:n]
        return pd.DatetimeIndex(cand.astype("datetime64[ns]")).tz_localize("UTC")
    return _session_timestamps(ns[-1], n, cal, exchange)


def _session_timestamps(last_ns: int, n: int, cal: Calendar, exchange: ExchangeCalendar | None) -> pd.DatetimeIndex:
    """The ``n`` session slots after ``last_ns`` (UTC), built on local days and moved to UTC."""
    local_last = int(pd.Timestamp(int(last_ns), tz="UTC").tz_convert(cal.tz).tz_localize(None).value)
    first_day, last_sec = local_last // _DAY_NS, (local_last % _DAY_NS) // 1_000_000_000
    slots = np.asarray(cal.slots, dtype=np.int64)
    span = 2 * (n // slots.size) + 14
    while True:
        days = first_day + np.arange(span, dtype=np.int64)
        days = days[np.isin((days + 3) % 7, cal.weekdays)]
        ok = np.ones((days.size, slots.size), dtype=bool)
        ok[days == first_day] &= slots > last_sec
        if exchange is not None:
            # closures known on the last bar's (UTC) day only; early closes and late opens are scheduled
            ok[exchange.is_closed(days, known_by=int(last_ns // _DAY_NS))] = False
            for special, keep in (
                (exchange.early_closes, lambda t: slots < t),
                (exchange.late_opens, lambda t: slots + cal.bar_seconds > t),
            ):
                s_days, s_times = special(int(days[0]), int(days[-1])) if days.size else (days, days)
                rows = np.searchsorted(days, s_days)
                hit = rows < days.size
                hit[hit] = days[rows[hit]] == s_days[hit]
                for r, t in zip(rows[hit], s_times[hit], strict=True):
                    ok[r] &= keep(t)
        local = (days[:, None] * _DAY_NS + slots[None, :] * 1_000_000_000)[ok]
        if local.size >= n:
            break
        if span > 10 * n + 14:  # pragma: no cover - a calendar with no trading days
            raise DataError("could not build future timestamps: the learned calendar has no trading slots")
        span *= 2
    local_idx = pd.DatetimeIndex(local[:n].astype("datetime64[ns]")).tz_localize(
        cal.tz, ambiguous=True, nonexistent="shift_forward"
    )
    return local_idx.tz_convert("UTC")
