"""Gap warnings leave out whole days the exchange was closed (9/11, Hurricane Sandy, holidays)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mqc.core.calendar import DAY_NS, exchange_calendar
from mqc.core.data.validate import validate_bars


def _frame(stamps: pd.DatetimeIndex) -> pd.DataFrame:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, len(stamps))))
    return pd.DataFrame(
        {"timestamp": stamps, "open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1.0}
    )


def _nyse_days(start: str, end: str) -> pd.DatetimeIndex:
    days = pd.bdate_range(start, end)
    return days[~exchange_calendar("XNYS").is_closed(days.as_unit("ns").asi8 // DAY_NS)]


def _gaps(df: pd.DataFrame) -> list[str]:
    _, rep = validate_bars(df, symbol="X", source="x.csv")
    assert rep.gaps == len([i for i in rep.warnings if i.kind == "gap"])
    return [str(df["timestamp"].iloc[i.row - 2].date()) for i in rep.warnings if i.kind == "gap"]


def test_known_closures_are_no_gaps_in_daily_and_hourly_bars():
    days = _nyse_days("2000-06-01", "2013-06-28")  # 9/11 (a week), Ford 2007, Hurricane Sandy 2012
    assert _gaps(_frame(days.tz_localize("UTC"))) == []
    hours = pd.DatetimeIndex([d + pd.Timedelta(hours=h, minutes=30) for d in days[-400:] for h in range(9, 16)])
    assert _gaps(_frame(hours.tz_localize("America/New_York").tz_convert("UTC"))) == []
    # a real hole is still one: the week after Sandy missing too
    holed = days[(days < "2012-11-05") | (days > "2012-11-09")]
    assert _gaps(_frame(holed.tz_localize("UTC"))) == ["2012-11-12"]


def test_a_history_that_trades_on_closures_keeps_its_gap_warnings():
    # Weekdays with bars on US holidays (another market, or filled rows), missing only Sandy's days:
    # the NYSE calendar does not explain that history's hole.
    days = pd.bdate_range("2012-06-01", "2012-12-31")
    days = days[(days < "2012-10-29") | (days > "2012-10-30")]
    assert _gaps(_frame(days.tz_localize("UTC"))) == ["2012-10-31"]


def test_real_us_equity_files_have_no_gap_warnings(shared_ohlcv):
    """SPY (2007-2021: Ford, Sandy) and AMD (1998-2017: 9/11 too) warned about 1 and 3 gaps before."""
    from mqc.core.data.reader import read_file
    from mqc.core.data.validate import validate_arrays

    for path in (
        shared_ohlcv / "daily" / "SPY.csv",
        shared_ohlcv / "hourly" / "SPY.csv",
        shared_ohlcv / "daily" / "AMD.csv",
    ):
        (bars,) = read_file(path)
        _, rep = validate_arrays(bars)
        assert rep.gaps == 0 and not [i for i in rep.issues if i.kind == "gap"], (path, [i.line() for i in rep.issues])
    # crypto holes are still reported
    (bars,) = read_file(shared_ohlcv / "hourly" / "BTCUSDT.csv")
    assert validate_arrays(bars)[1].gaps > 0
