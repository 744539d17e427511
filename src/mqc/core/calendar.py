"""Exchange calendars: when a market is open, in one place.

Every session / holiday / early-close question in mqc is answered here, from the maintained
``exchange_calendars`` package (it works offline): ``XNYS`` for US equities, ``24/7`` for crypto, and
any other code it knows (``XLON``, ``XTKS``, ... or an alias such as ``NYSE``) by name.

``exchange_calendar(code)`` builds a calendar once per process (about 0.2 s for XNYS from 1885 to
2099) and keeps its answers as sorted numpy arrays, so a question costs a binary search, not a
pandas holiday computation. Days are numbered like numpy: days since 1970-01-01.

Causality: ``exchange_calendars`` lists one-off closures (9/11, Hurricane Sandy, days of mourning)
as holidays like any other, but a forecast made before one was announced must not skip it. Each
one-off closure therefore carries the first day it could be known (``_ANNOUNCED``; one not listed
there counts as a surprise, known only on the day itself), and ``closed_days(..., known_by=day)``
leaves out those not yet known on ``day``. Yearly holidays and early closes are known in advance.

``exchange_calendars`` itself is imported on first use only: the CLI must start without it.
"""

from __future__ import annotations

import difflib
import warnings
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from mqc.core.errors import ConfigError, DataError

DAY_NS = 86_400_000_000_000
ALWAYS_OPEN = "24/7"
_START, _END = pd.Timestamp("1885-01-01"), pd.Timestamp("2099-12-31")  # XNYS's whole recorded history
_ANNOUNCED: dict[str, dict[str, str]] = {
    "XNYS": {
        "1994-04-27": "1994-04-22",  # President Nixon died on April 22
        # Sept 11 2001 itself was a surprise; the rest of that week was known from then on
        "2001-09-12": "2001-09-11",
        "2001-09-13": "2001-09-11",
        "2001-09-14": "2001-09-11",
        "2004-06-11": "2004-06-05",  # President Reagan died on June 5
        "2007-01-02": "2006-12-26",  # President Ford died on Dec 26
        "2012-10-29": "2012-10-28",
        "2012-10-30": "2012-10-28",  # Hurricane Sandy: announced Sunday the 28th
        "2018-12-05": "2018-11-30",  # President G. H. W. Bush died on Nov 30
        "2025-01-09": "2024-12-29",  # President Carter died on Dec 29
    },
}


def _day(value: str | pd.Timestamp) -> int:
    return int(pd.Timestamp(value).as_unit("ns").value // DAY_NS)


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


def _stamp_ns(ts) -> int:
    """One timestamp (str, datetime, pd.Timestamp; naive means UTC) -> UTC nanoseconds."""
    t = pd.Timestamp(ts)
    return int((t.tz_convert("UTC") if t.tz is not None else t).as_unit("ns").value)


class ExchangeCalendar:
    """One exchange's sessions, full-day closures, early closes and late opens as sorted arrays.

    Build it with ``exchange_calendar(code)`` (cached). Session dates and closure days are day numbers
    (days since 1970-01-01, the session's local date); opens and closes are UTC nanoseconds.
    """

    def __init__(self, code: str) -> None:
        import exchange_calendars as xc

        cal = _build(xc, code)
        self.code: str = cal.name
        self.tz: str = str(cal.tz)
        self.always_open: bool = self.code == ALWAYS_OPEN
        sessions = cal.sessions.as_unit("ns").asi8 // DAY_NS
        self.first_day, self.last_day = int(sessions[0]), int(sessions[-1])
        self._sessions = _frozen(sessions)
        self._opens, self._closes = _frozen(utc_ns(cal.opens)), _frozen(utc_ns(cal.closes))
        # NaT (no lunch break) reads as the smallest int64
        self._break_starts, self._break_ends = _frozen(utc_ns(cal.break_starts)), _frozen(utc_ns(cal.break_ends))
        # Full-day closures: the exchange's weekdays (its weekmask) that are not sessions.
        days = np.arange(self.first_day, self.last_day + 1, dtype=np.int64)
        trading_weekday = np.array([c == "1" for c in cal.weekmask])
        closed = np.setdiff1d(days[trading_weekday[(days + 3) % 7]], sessions)
        self._closed = _frozen(closed)
        self._closed_from, self._closed_to = self._local_midnights(closed)  # UTC span of each local day
        known = np.full(closed.size, np.iinfo(np.int64).min, dtype=np.int64)  # rule holidays: always known
        announced = {_day(d): _day(k) for d, k in _ANNOUNCED.get(self.code, {}).items()}
        for d in (_day(t) for t in cal.adhoc_holidays):
            i = int(np.searchsorted(closed, d))
            if i < closed.size and closed[i] == d:
                known[i] = announced.get(d, d)  # unlisted one-off closures: known on the day only
        self._known = _frozen(known)
        self._early_days, self._early_close_s = self._special(cal.early_closes, self._closes)
        self._late_days, self._late_open_s = self._special(cal.late_opens, self._opens)

    def _special(self, days: pd.DatetimeIndex, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Session days in ``days`` and, for each, the local time of day of ``times`` in seconds."""
        day_no = np.unique(days.as_unit("ns").asi8 // DAY_NS) if len(days) else np.empty(0, np.int64)
        day_no = day_no[np.isin(day_no, self._sessions)]
        at = times[np.searchsorted(self._sessions, day_no)]
        local = pd.DatetimeIndex(at.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(self.tz).tz_localize(None)
        seconds = (local.as_unit("ns").asi8 - day_no * DAY_NS) // 1_000_000_000
        return _frozen(day_no), _frozen(seconds.astype(np.int64))

    # -- days ---------------------------------------------------------------------------------
    def closed_days(self, first_day: int, last_day: int, *, known_by: int | None = None) -> np.ndarray:
        """Full-day closures (holidays on the exchange's weekdays) in ``first_day .. last_day``, sorted.

        With ``known_by`` (a day number), one-off closures that could not yet be known on that day
        are left out. Days outside the calendar's range have no closures."""
        a, b = np.searchsorted(self._closed, first_day), np.searchsorted(self._closed, last_day, side="right")
        if known_by is None:
            return self._closed[a:b]
        return self._closed[a:b][self._known[a:b] <= known_by]

    def is_closed(self, days: np.ndarray, *, known_by: int | None = None) -> np.ndarray:
        """Per day number: a full-day closure (known by ``known_by`` when given)."""
        days = np.asarray(days, dtype=np.int64)
        i = np.minimum(np.searchsorted(self._closed, days), max(0, self._closed.size - 1))
        if self._closed.size == 0:
            return np.zeros(days.shape, dtype=bool)
        hit = self._closed[i] == days
        return hit if known_by is None else hit & (self._known[i] <= known_by)

    def early_closes(self, first_day: int, last_day: int) -> tuple[np.ndarray, np.ndarray]:
        """Sessions in ``first_day .. last_day`` that close early: (day numbers, local close time in
        seconds after midnight), e.g. 13:00 -> 46800 on NYSE's Christmas Eve."""
        a, b = np.searchsorted(self._early_days, first_day), np.searchsorted(self._early_days, last_day, side="right")
        return self._early_days[a:b], self._early_close_s[a:b]

    def late_opens(self, first_day: int, last_day: int) -> tuple[np.ndarray, np.ndarray]:
        """Sessions in ``first_day .. last_day`` that open late: (day numbers, local open seconds)."""
        a, b = np.searchsorted(self._late_days, first_day), np.searchsorted(self._late_days, last_day, side="right")
        return self._late_days[a:b], self._late_open_s[a:b]

    def sessions(self, start, end) -> pd.DatetimeIndex:
        """Session dates from ``start`` to ``end`` (dates or timestamps, both included), tz-naive."""
        a, b = np.searchsorted(self._sessions, [_stamp_ns(start) // DAY_NS, _stamp_ns(end) // DAY_NS + 1])
        return pd.DatetimeIndex((self._sessions[a:b] * DAY_NS).astype("datetime64[ns]"))

    # -- instants -------------------------------------------------------------------------------
    def is_open(self, timestamps) -> bool | np.ndarray:
        """Whether the exchange is open (open <= t < close, outside a lunch break) at one timestamp
        (naive = UTC; returns a bool) or at each of many (returns a bool array)."""
        one = isinstance(timestamps, str | pd.Timestamp) or not hasattr(timestamps, "__len__")
        ns = np.array([_stamp_ns(timestamps)]) if one else utc_ns(timestamps)
        i = np.searchsorted(self._opens, ns, side="right") - 1
        j = np.maximum(i, 0)
        out = (i >= 0) & (ns < self._closes[j])
        starts, ends = self._break_starts[j], self._break_ends[j]
        out &= ~((starts != np.iinfo(np.int64).min) & (ns >= starts) & (ns < ends))
        return bool(out[0]) if one else out

    def next_open(self, ts) -> pd.Timestamp:
        """The first session open strictly after ``ts`` (UTC)."""
        return self._next(self._opens, ts)

    def next_close(self, ts) -> pd.Timestamp:
        """The first session close strictly after ``ts`` (UTC): today's close during a session."""
        return self._next(self._closes, ts)

    def _next(self, times: np.ndarray, ts) -> pd.Timestamp:
        ns = _stamp_ns(ts)
        i = int(np.searchsorted(times, ns, side="right"))
        if i >= times.size:
            raise DataError(
                f"{pd.Timestamp(ns, tz='UTC')} is past the end of the {self.code} calendar"
                f" ({pd.Timestamp(self.last_day * DAY_NS).date()})"
            )
        return pd.Timestamp(int(times[i]), tz="UTC")

    # -- histories -----------------------------------------------------------------------------
    def _local_midnights(self, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """UTC nanoseconds of the exchange's local midnight starting and ending each day."""
        midnights = pd.DatetimeIndex(np.concatenate([days, days + 1]).astype("datetime64[D]").astype("datetime64[ns]"))
        utc = (
            midnights.tz_localize(self.tz, ambiguous=np.zeros(2 * days.size, dtype=bool), nonexistent="shift_forward")
            .as_unit("ns")
            .asi8
        )
        return _frozen(utc[: days.size]), _frozen(utc[days.size :])

    def local_days(self, ns: np.ndarray, *, daily: bool) -> np.ndarray:
        """Day numbers of UTC nanosecond timestamps: UTC dates for daily bars, local dates otherwise."""
        ns = np.asarray(ns, dtype=np.int64)
        if daily or ns.size == 0:
            return ns // DAY_NS
        local = pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC").tz_convert(self.tz).tz_localize(None)
        return local.as_unit("ns").asi8 // DAY_NS

    def trades_on_closures(self, ns: np.ndarray, *, daily: bool) -> bool:
        """Whether sorted bar timestamps (UTC ns) have a bar on one of this exchange's closures within
        their span: then the history keeps its own calendar (another market, filled holiday rows).
        Daily bars are matched on their UTC date (they carry their trading date at any time of day),
        intraday bars on the exchange's local date."""
        if ns.size == 0:
            return False
        a = np.searchsorted(self._closed, ns[0] // DAY_NS - 1)
        b = np.searchsorted(self._closed, ns[-1] // DAY_NS + 1, side="right")
        if daily:
            start, end = self._closed[a:b] * DAY_NS, (self._closed[a:b] + 1) * DAY_NS
        else:
            start, end = self._closed_from[a:b], self._closed_to[a:b]
        return bool((np.searchsorted(ns, end) > np.searchsorted(ns, start)).any())

    def closures_between(self, first_ns: np.ndarray, last_ns: np.ndarray, *, daily: bool) -> np.ndarray:
        """Per pair, the full-day closures strictly between the day of ``first_ns`` and that of ``last_ns``."""
        d0, d1 = self.local_days(first_ns, daily=daily), self.local_days(last_ns, daily=daily)
        return np.searchsorted(self._closed, d1, side="left") - np.searchsorted(self._closed, d0, side="right")


def _frozen(a) -> np.ndarray:
    out = np.array(a, dtype=np.int64)
    out.flags.writeable = False
    return out


def _build(xc: Any, code: str) -> Any:
    """The ``exchange_calendars`` calendar over 1885-2099, or over as much of it as it records."""
    try:
        return xc.get_calendar(code, start=_START, end=_END)
    except ValueError:  # a calendar recorded over a shorter span (lunar holiday tables, ...)
        cls = type(xc.get_calendar(code))
        lo, hi = cls.bound_min(), cls.bound_max()
        start = max(_START, pd.Timestamp(lo).tz_localize(None) if lo is not None else _START)
        end = min(_END, pd.Timestamp(hi).tz_localize(None) if hi is not None else _END)
        return xc.get_calendar(code, start=start, end=end)


@lru_cache(maxsize=16)
def _calendar(code: str) -> ExchangeCalendar:
    with warnings.catch_warnings():
        # exchange_calendars' own use of pandas APIs that pandas 3 deprecates (Series.values of
        # tz-aware times, DatetimeIndex.weekday): not the user's to act on
        warnings.simplefilter("ignore", DeprecationWarning)
        return ExchangeCalendar(code)


@lru_cache(maxsize=64)
def exchange_calendar(code: str = "XNYS") -> ExchangeCalendar:
    """The calendar of an exchange by its ``exchange_calendars`` code or alias (``XNYS``, ``NYSE``,
    ``XLON``, ``24/7``, ...); built once per process.

    Raises:
        ConfigError: an unknown code (with the closest known ones).
    """
    import exchange_calendars as xc

    names = xc.get_calendar_names(include_aliases=True)
    if code not in names:
        upper = {n.upper(): n for n in names}
        if code.strip().upper() in upper:
            code = upper[code.strip().upper()]
        else:
            close = difflib.get_close_matches(code.upper(), list(upper), n=3)
            hint = (
                f"did you mean {', '.join(upper[c] for c in close)}?"
                if close
                else "see exchange_calendars.get_calendar_names()"
            )
            raise ConfigError(f"unknown exchange calendar {code!r}", hint=hint)
    return _calendar(xc.resolve_alias(code))


def default_exchange(asset_class: str, tz: str) -> str | None:
    """The exchange mqc assumes for a history: ``24/7`` for crypto, ``XNYS`` for equities on New
    York time, none otherwise (weekdays only)."""
    if asset_class == "crypto":
        return ALWAYS_OPEN
    if asset_class == "equity" and tz == "America/New_York":
        return "XNYS"
    return None


def closures_in_gaps(ns: np.ndarray, gaps: np.ndarray, *, daily: bool, code: str = "XNYS") -> np.ndarray:
    """Full-day closures of ``code`` inside each gap ``ns[i] -> ns[i + 1]`` (``i`` in ``gaps``) of
    sorted bar timestamps; all 0 when the history has bars on that exchange's closures (it keeps its
    own calendar)."""
    cal = exchange_calendar(code)
    if gaps.size == 0 or cal.trades_on_closures(ns, daily=daily):
        return np.zeros(gaps.size, dtype=np.int64)
    return cal.closures_between(ns[gaps], ns[gaps + 1], daily=daily)
