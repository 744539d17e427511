"""Future timestamps follow each symbol's own calendar."""

from __future__ import annotations

import pandas as pd

from mqc.core.forecast.calendar import future_timestamps, learn_calendar


def test_daily_equity_skips_weekends():
    ts = pd.bdate_range("2024-01-01", "2024-03-01", tz="UTC")  # last bar Friday 2024-03-01
    out = future_timestamps(ts, 3)
    assert [t.strftime("%Y-%m-%d") for t in out] == ["2024-03-04", "2024-03-05", "2024-03-06"]


def test_daily_crypto_is_every_day():
    ts = pd.date_range("2024-01-01", "2024-03-01", freq="D", tz="UTC")
    out = future_timestamps(ts, 3, asset_class="crypto")
    assert [t.strftime("%Y-%m-%d") for t in out] == ["2024-03-02", "2024-03-03", "2024-03-04"]


def _hourly_sessions(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    local = [d + pd.Timedelta(hours=h) for d in days for h in range(9, 16)]
    return pd.DatetimeIndex(local).tz_localize("America/New_York").tz_convert("UTC")


def test_hourly_equity_sessions_learned_across_dst():
    # History ends Friday 2024-03-08 (EST, UTC-5); the next session (Mon 03-11) is in EDT (UTC-4).
    ts = _hourly_sessions(pd.bdate_range("2024-01-02", "2024-03-08"))
    cal = learn_calendar(ts)
    assert cal.weekdays == (0, 1, 2, 3, 4) and len(cal.slots) == 7
    out = future_timestamps(ts, 8)
    assert out[0] == pd.Timestamp("2024-03-11 13:00", tz="UTC")  # 09:00 EDT
    assert out[6] == pd.Timestamp("2024-03-11 19:00", tz="UTC")
    assert out[7] == pd.Timestamp("2024-03-12 13:00", tz="UTC")


def test_hourly_session_continues_within_the_day():
    ts = _hourly_sessions(pd.bdate_range("2024-06-03", "2024-06-28"))[:-3]  # stop at 12:00 ET on Friday
    out = future_timestamps(ts, 4)
    assert [t.tz_convert("America/New_York").hour for t in out] == [13, 14, 15, 9]
    assert out[3].tz_convert("America/New_York").day_of_week == 0


def test_hourly_crypto_is_regular():
    ts = pd.date_range("2024-01-01", periods=500, freq="h", tz="UTC")
    out = future_timestamps(ts, 3)
    assert (out - ts[-1]).tolist() == [pd.Timedelta(hours=k) for k in (1, 2, 3)]


def test_batch_shares_calendars_only_between_identical_histories(synth):
    from mqc.core.forecast import base
    from mqc.core.forecast.config import ForecastConfig

    eq = synth(n_assets=2, n_bars=120, seed=3, weekdays_only=True)
    crypto = synth(n_assets=1, n_bars=120, seed=4, weekdays_only=False)["SYN0"]
    crypto.attrs["asset_class"] = "crypto"
    frames = {"EQ0": eq["SYN0"], "EQ1": eq["SYN1"], "BTC": crypto}
    out = base.create("naive", config=ForecastConfig(model="naive")).predict(frames, 6, (0.5,))
    assert out["EQ0"].timestamps.equals(out["EQ1"].timestamps)
    assert all(t.day_of_week < 5 for t in out["EQ0"].timestamps)
    alone = base.create("naive", config=ForecastConfig(model="naive")).predict({"BTC": crypto}, 6, (0.5,))
    assert out["BTC"].timestamps.equals(alone["BTC"].timestamps)
    assert (out["BTC"].timestamps.to_series().diff().dropna() == pd.Timedelta(days=1)).all()


def _nyse_daily(start: str, end: str) -> pd.DatetimeIndex:
    """Weekdays without NYSE closures, as a real US equity daily file has them."""
    from mqc.core.calendar import exchange_calendar

    days = pd.bdate_range(start, end, tz="UTC")
    day_no = days.tz_localize(None).as_unit("ns").asi8 // 86_400_000_000_000
    return days[~exchange_calendar("XNYS").is_closed(day_no)]


def _dates(idx: pd.DatetimeIndex) -> list[str]:
    return [t.strftime("%Y-%m-%d") for t in idx]


def test_daily_us_equity_skips_exchange_holidays():
    ts = _nyse_daily("2023-06-01", "2025-11-26")  # last bar Wednesday before Thanksgiving
    assert learn_calendar(ts).exchange == "XNYS"
    assert _dates(future_timestamps(ts, 3)) == ["2025-11-28", "2025-12-01", "2025-12-02"]
    ts = _nyse_daily("2023-06-01", "2025-12-23")
    assert _dates(future_timestamps(ts, 8)) == [
        "2025-12-24",
        "2025-12-26",
        "2025-12-29",
        "2025-12-30",
        "2025-12-31",
        "2026-01-02",
        "2026-01-05",
        "2026-01-06",
    ]


def test_history_with_bars_on_holidays_keeps_its_own_calendar():
    # Plain weekdays (a market that trades US holidays, or filled holiday rows): no NYSE closures.
    ts = pd.bdate_range("2023-06-01", "2025-11-26", tz="UTC")
    assert learn_calendar(ts).exchange is None
    assert _dates(future_timestamps(ts, 2)) == ["2025-11-27", "2025-11-28"]
    # Another exchange's time zone, or crypto: no NYSE closures either.
    nyse = _nyse_daily("2023-06-01", "2025-11-26")
    assert learn_calendar(nyse, tz="Europe/London").exchange is None
    assert learn_calendar(nyse, asset_class="crypto").exchange is None


def test_hourly_us_equity_sessions_skip_exchange_holidays():
    ts = _hourly_sessions(_nyse_daily("2025-08-01", "2025-11-26").tz_localize(None))
    out = future_timestamps(ts, 8)
    local = [t.strftime("%m-%d %H") for t in out.tz_convert("America/New_York")]
    # Not Thanksgiving; the day after closes at 1 pm, so its last hourly bar starts at 12:00.
    assert local == ["11-28 09", "11-28 10", "11-28 11", "11-28 12", "12-01 09", "12-01 10", "12-01 11", "12-01 12"]


def test_real_us_equity_calendars_predict_the_next_bars_exactly(shared_ohlcv):
    from mqc.core.data.reader import read_bars

    for timeframe, days in (
        ("hourly", ("2019-07-04", "2019-11-28", "2020-04-10", "2020-12-25")),
        ("daily", ("2016-01-18", "2017-04-14")),
    ):
        frame = next(iter(read_bars(shared_ohlcv / timeframe / "SPY.csv").values()))
        stamps = pd.DatetimeIndex(frame["timestamp"])
        for day in days:
            cut = int((stamps < pd.Timestamp(day, tz="UTC")).sum())
            predicted = future_timestamps(stamps[:cut], 20)
            assert predicted.equals(stamps[cut : cut + 20]), (timeframe, day)


def test_one_off_closures_only_once_they_could_be_known():
    # Hurricane Sandy closed the NYSE on 2012-10-29/30, announced on Sunday the 28th: a forecast from
    # Friday the 26th could not skip those days; one from a history that already shows the closure can.
    before = _nyse_daily("2011-01-03", "2012-10-26")
    assert _dates(future_timestamps(before, 3)) == ["2012-10-29", "2012-10-30", "2012-10-31"]
    assert _dates(future_timestamps(_nyse_daily("2000-01-03", "2001-09-10"), 2)) == ["2001-09-11", "2001-09-12"]
    # President Carter died on 2024-12-29; the 2025-01-09 closure is known from then on.
    assert "2025-01-09" in _dates(future_timestamps(_nyse_daily("2023-06-01", "2024-12-27"), 9))
    assert "2025-01-09" not in _dates(future_timestamps(_nyse_daily("2023-06-01", "2025-01-06"), 4))


def test_exchange_calendar_closures_the_old_rules_missed():
    # Nixon died on 1994-04-22 and the NYSE closed for his funeral on the 27th: known by the 26th.
    assert _dates(future_timestamps(_nyse_daily("1993-01-04", "1994-04-26"), 2)) == ["1994-04-28", "1994-04-29"]
    # Hurricane Gloria (1985-09-27) was not announced the day before: a forecast still expects the bar.
    assert _dates(future_timestamps(_nyse_daily("1984-06-01", "1985-09-26"), 1)) == ["1985-09-27"]
    # The Friday after a Thursday July 4th closed at 1 pm in 2002 (not only July 3 on Mon-Thu).
    ts = _hourly_sessions(_nyse_daily("2002-04-01", "2002-07-03").tz_localize(None))
    local = [t.strftime("%m-%d %H") for t in future_timestamps(ts, 5).tz_convert("America/New_York")]
    assert local == ["07-05 09", "07-05 10", "07-05 11", "07-05 12", "07-08 09"]
