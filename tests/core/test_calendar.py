"""The one exchange calendar (core/calendar.py): sessions, closures, early closes, causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.calendar import DAY_NS, closures_in_gaps, default_exchange, exchange_calendar
from mqc.core.errors import ConfigError


def _day(s: str) -> int:
    return int(pd.Timestamp(s).value // DAY_NS)


def _dates(days: np.ndarray) -> list[str]:
    return [pd.Timestamp(int(d) * DAY_NS).strftime("%Y-%m-%d") for d in days]


def _closed(year: int) -> list[str]:
    days = exchange_calendar("XNYS").closed_days(_day(f"{year}-01-01"), _day(f"{year}-12-31"))
    return [d[5:] for d in _dates(days)]


def test_nyse_closures_follow_the_exchange_rules():
    # 2025: New Year, Carter's day of mourning, MLK, Presidents, Good Friday, Memorial, Juneteenth,
    # Independence, Labor, Thanksgiving, Christmas.
    assert _closed(2025) == [
        "01-01",
        "01-09",
        "01-20",
        "02-17",
        "04-18",
        "05-26",
        "06-19",
        "07-04",
        "09-01",
        "11-27",
        "12-25",
    ]
    # 2022: New Year's Day on a Saturday is not observed; Juneteenth (Sunday) -> Monday 06-20;
    # Christmas (Sunday) -> Monday 12-26.
    assert _closed(2022) == ["01-17", "02-21", "04-15", "05-30", "06-20", "07-04", "09-05", "11-24", "12-26"]
    assert "07-03" in _closed(2026)  # July 4th on a Saturday closes Friday
    assert "06-19" not in _closed(2021)  # before Juneteenth was an exchange holiday
    assert "01-19" not in _closed(1997) and "01-19" in _closed(1998)  # MLK from 1998
    # one-off closures the old hand-written rules did not know: Nixon's funeral, Hurricane Gloria
    assert "04-27" in _closed(1994) and "09-27" in _closed(1985)
    assert _closed(2001)[-6:] == ["09-11", "09-12", "09-13", "09-14", "11-22", "12-25"]


def test_one_off_closures_only_from_the_day_they_could_be_known():
    nyse = exchange_calendar("XNYS")
    oct_2012 = (_day("2012-10-01"), _day("2012-11-30"))
    assert _dates(nyse.closed_days(*oct_2012)) == ["2012-10-29", "2012-10-30", "2012-11-22"]
    # Hurricane Sandy's closure was announced on Sunday the 28th; Thanksgiving is known in advance.
    assert _dates(nyse.closed_days(*oct_2012, known_by=_day("2012-10-26"))) == ["2012-11-22"]
    assert _dates(nyse.closed_days(*oct_2012, known_by=_day("2012-10-28"))) == [
        "2012-10-29",
        "2012-10-30",
        "2012-11-22",
    ]
    # 9/11 itself was a surprise (known on the day only), the rest of that week known from then on;
    # a closure missing from the announcement table (Hurricane Gloria) counts as a surprise too.
    sept = np.array([_day(f"2001-09-{d}") for d in (11, 12, 13, 14)])
    assert nyse.is_closed(sept, known_by=_day("2001-09-10")).tolist() == [False] * 4
    assert nyse.is_closed(sept, known_by=_day("2001-09-11")).tolist() == [True] * 4
    assert not nyse.is_closed(np.array([_day("1985-09-27")]), known_by=_day("1985-09-26"))[0]
    assert nyse.is_closed(np.array([_day("2025-01-09")]), known_by=_day("2024-12-29"))[0]
    assert not nyse.is_closed(np.array([_day("2025-01-09")]), known_by=_day("2024-12-28"))[0]


def test_every_announcement_date_belongs_to_a_listed_one_off_closure():
    from mqc.core.calendar import _ANNOUNCED

    nyse = exchange_calendar("XNYS")
    for day, known in _ANNOUNCED["XNYS"].items():
        d = np.array([_day(day)])
        assert known <= day and nyse.is_closed(d)[0], day
        assert nyse.is_closed(d, known_by=_day(known))[0] and not nyse.is_closed(d, known_by=_day(known) - 1)[0], day


def test_nyse_early_closes_and_sessions():
    nyse = exchange_calendar("NYSE")  # an alias names the same calendar
    assert nyse is exchange_calendar("XNYS") and nyse.tz == "America/New_York"
    days, close = nyse.early_closes(_day("2024-01-01"), _day("2026-12-31"))
    # July 3 on Mon-Thu, the day after Thanksgiving, Christmas Eve on Mon-Thu (2026: July 3 is the
    # observed Independence Day, a full closure), all at 13:00 New York time.
    assert _dates(days) == [
        "2024-07-03",
        "2024-11-29",
        "2024-12-24",
        "2025-07-03",
        "2025-11-28",
        "2025-12-24",
        "2026-11-27",
        "2026-12-24",
    ]
    assert set(close.tolist()) == {13 * 3600}
    # 1996-07-05, the Friday after a Thursday July 4th, closed at 1 pm as well (not a rule of thumb)
    assert "1996-07-05" in _dates(nyse.early_closes(_day("1996-01-01"), _day("1996-12-31"))[0])
    sessions = nyse.sessions("2024-01-01", "2024-12-31")
    assert (
        len(sessions) == 252
        and sessions[0] == pd.Timestamp("2024-01-02")
        and sessions[-1] == pd.Timestamp("2024-12-31")
    )


def test_open_and_next_open_close_in_utc():
    nyse = exchange_calendar("XNYS")
    assert nyse.is_open("2024-12-24 17:30") and not nyse.is_open("2024-12-24 18:30")  # 1 pm early close
    assert nyse.is_open(pd.Timestamp("2024-07-05 10:00", tz="America/New_York"))
    assert nyse.is_open(
        pd.DatetimeIndex(["2024-07-04 15:00", "2024-07-05 15:00", "2024-07-06 15:00"], tz="UTC")
    ).tolist() == [False, True, False]
    assert nyse.next_open("2024-12-24 18:30") == pd.Timestamp("2024-12-26 14:30", tz="UTC")  # skips Christmas
    assert nyse.next_close("2024-12-24 15:00") == pd.Timestamp("2024-12-24 18:00", tz="UTC")
    assert nyse.next_open("2024-03-08 22:00") == pd.Timestamp("2024-03-11 13:30", tz="UTC")  # EDT from Sunday


def test_crypto_is_always_open_and_other_exchanges_by_code():
    assert default_exchange("crypto", "UTC") == "24/7"
    assert default_exchange("equity", "America/New_York") == "XNYS"
    assert default_exchange("equity", "Europe/London") is None
    always = exchange_calendar("24/7")
    assert always.is_open("2024-12-25 03:00") and len(always.sessions("2024-01-01", "2024-12-31")) == 366
    assert always.closed_days(_day("2024-01-01"), _day("2024-12-31")).size == 0
    lon = exchange_calendar("xlon")  # codes are case-insensitive
    assert lon.code == "XLON" and lon.tz == "Europe/London"
    assert _dates(lon.closed_days(_day("2024-12-20"), _day("2025-01-02"))) == ["2024-12-25", "2024-12-26", "2025-01-01"]
    hk = exchange_calendar("XHKG")  # a lunch break is not open
    assert hk.is_open("2024-03-05 03:30") and not hk.is_open("2024-03-05 04:30") and hk.is_open("2024-03-05 05:30")
    with pytest.raises(ConfigError, match="unknown exchange calendar 'XNYZ'") as err:
        exchange_calendar("XNYZ")
    assert "XNYS" in (err.value.hint or "")


def _nyse_days(start: str, end: str) -> np.ndarray:
    days = pd.bdate_range(start, end).as_unit("ns").asi8 // DAY_NS
    return days[~exchange_calendar("XNYS").is_closed(days)]


def test_closures_in_gaps_only_for_histories_on_the_calendar():
    ns = _nyse_days("2012-10-01", "2012-11-30") * DAY_NS
    gap = np.flatnonzero(np.diff(ns) > 4 * DAY_NS)  # Fri Oct 26 -> Wed Oct 31
    assert _dates(ns[gap] // DAY_NS) == ["2012-10-26"]
    assert closures_in_gaps(ns, gap, daily=True).tolist() == [2]
    # a history with a bar on Thanksgiving keeps its own calendar: nothing is explained away
    with_holiday = np.sort(np.r_[ns, _day("2012-11-22") * DAY_NS])
    gap = np.flatnonzero(np.diff(with_holiday) > 4 * DAY_NS)
    assert closures_in_gaps(with_holiday, gap, daily=True).tolist() == [0]
