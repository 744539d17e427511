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
