"""Validation rules under fail / repair / drop, with the exact messages and reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.bars import Bars
from mqc.core.data.validate import validate_arrays, validate_bars
from mqc.core.errors import DataError


def frame(rows):
    df = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    return df


GOOD = [
    ("2020-01-01", 10, 11, 9, 10.5, 100),
    ("2020-01-02", 10.5, 12, 10, 11, 120),
    ("2020-01-03", 11, 11.5, 10.5, 11.2, 90),
    ("2020-01-04", 11.2, 11.6, 10.8, 11.0, 80),
]


def test_clean_bars_pass_unchanged():
    df = frame(GOOD)
    out, rep = validate_bars(df, symbol="X", source="x.csv")
    assert rep.rows_out == 4 and rep.repaired == 0 and rep.dropped == 0
    assert rep.timeframe == "1d"
    assert np.array_equal(out["close"].to_numpy(), df["close"].to_numpy())


def test_negative_price_fails_with_row_and_field():
    rows = list(GOOD)
    rows[2] = ("2020-01-03", 11, 11.5, -1, 11.2, 90)
    with pytest.raises(DataError, match=r"^x\.csv: row 4, field 'low': price must be > 0, got -1$"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert rep.rows_out == 3
    assert [(i.row, i.field, i.action) for i in rep.issues if i.action != "warning"] == [(4, "low", "dropped")]
    assert rep.gaps == 1  # 2020-01-01 is a Wednesday and bars run into the weekend: a 24/7 series with a hole


def test_duplicate_timestamp_fails_then_keeps_last():
    rows = [*GOOD[:2], ("2020-01-02", 10.5, 12, 10, 11.5, 130), *GOOD[2:]]
    with pytest.raises(
        DataError,
        match=r"^x\.csv: row 4, field 'timestamp': duplicate timestamp 2020-01-02 00:00:00 \(also at row 3\)$",
    ):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="drop")
    assert len(out) == 4 and out["close"].iloc[1] == 11.5
    assert [(i.kind, i.row, i.action) for i in rep.issues] == [("duplicate", 3, "dropped")]


def test_out_of_order_fails_then_sorted():
    rows = [GOOD[0], GOOD[2], GOOD[1], GOOD[3]]
    with pytest.raises(
        DataError,
        match=(
            r"row 4, field 'timestamp': 2020-01-02 00:00:00 is earlier than the row before \(2020-01-03 00:00:00\): out"
            r" of order"
        ),
    ):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert out["timestamp"].is_monotonic_increasing and rep.repaired == 1


def test_high_low_repaired_or_dropped():
    rows = list(GOOD)
    rows[1] = ("2020-01-02", 10.5, 10.8, 10, 11, 120)  # high < close
    with pytest.raises(
        DataError,
        match=r"row 3, field 'high': high is below max\(open, close\) \(repair: high = max of the bar\), got 10.8",
    ):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert out["high"].iloc[1] == 11 and rep.repaired == 1 and rep.dropped == 0
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="drop")
    assert len(out) == 3 and rep.dropped == 1


def test_volume_missing_and_negative():
    rows = list(GOOD)
    rows[1] = ("2020-01-02", 10.5, 12, 10, 11, np.nan)
    rows[2] = ("2020-01-03", 11, 11.5, 10.5, 11.2, -5)
    with pytest.raises(DataError, match=r"row 3, field 'volume': missing volume"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert out["volume"].tolist() == [100, 0, 5, 80] and rep.repaired == 2
    no_vol = frame([r[:5] + (np.nan,) for r in GOOD])
    out, rep = validate_bars(no_vol, symbol="X", source="x.csv")
    assert (out["volume"] == 0).all() and rep.warnings[0].detail.startswith("no volume")


def test_nan_price_and_all_invalid():
    rows = [("2020-01-01", np.nan, 11, 9, 10.5, 100)]
    with pytest.raises(DataError, match=r"row 2, field 'open': missing or non-finite price"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    with pytest.raises(DataError, match="no valid rows left after validation"):
        validate_bars(frame(rows), symbol="X", source="x.csv", on_error="drop")


def test_gaps_and_spikes_are_warnings(synth):
    df = synth(n_assets=1, n_bars=300, seed=3)["SYN0"]
    df = df.drop(index=range(100, 110)).reset_index(drop=True)  # a 24/7 daily series with a hole
    df.loc[200, ["open", "high", "low", "close"]] *= 3.0  # one-bar spike that reverts
    df.loc[200, "open"] = df.loc[199, "close"]
    df.loc[200, "low"] = min(df.loc[200, "open"], df.loc[200, "close"])
    out, rep = validate_bars(df, symbol="X", source="x.csv")
    assert rep.gaps == 1 and rep.largest_gap_bars == pytest.approx(11)
    kinds = {i.kind for i in rep.warnings}
    assert kinds == {"gap", "spike"}
    assert len(out) == len(df)


def test_intraday_spikes_only_within_a_session():
    # Hourly equity sessions 09:00-15:00 New York time; closes drift gently.
    days = pd.bdate_range("2024-03-04", "2024-05-31")
    stamps = pd.DatetimeIndex([d + pd.Timedelta(hours=h) for d in days for h in range(9, 16)]).tz_localize(
        "America/New_York"
    )
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, len(stamps))))
    last_of_day = np.flatnonzero(stamps.hour == 15)
    k = last_of_day[20]
    close[k:] *= 1.05  # a +5% last hour that the next morning's open gaps back: news, not a bad print
    close[k + 1 :] /= 1.05
    j = k + 3  # a one-bar print inside the next session that reverts
    close[j] *= 1.06
    df = pd.DataFrame(
        {
            "timestamp": stamps.tz_convert("UTC"),
            "open": close,
            "high": close,
            "low": close,
            "close": close,
            "volume": 1.0,
        }
    )
    _, rep = validate_bars(df, symbol="X", source="x.csv")
    spikes = [i.row - 2 for i in rep.warnings if i.kind == "spike"]
    assert spikes == [j]


def test_equity_weekends_are_not_gaps(synth):
    df = synth(n_assets=1, n_bars=300, seed=1, weekdays_only=True)["SYN0"]
    _, rep = validate_bars(df, symbol="X", source="x.csv")
    assert rep.gaps == 0 and rep.timeframe == "1d"


def test_timeframe_override_warns_on_mismatch():
    b = Bars.from_frame(frame(GOOD), symbol="X", source="x.csv")
    _, rep = validate_arrays(b, bar_seconds=3600)
    assert rep.timeframe == "1h"
    assert any(i.kind == "timeframe" for i in rep.warnings)


def test_infinite_and_zero_values_still_caught():
    rows = list(GOOD[:3])
    rows[1] = ("2020-01-02", 10.5, np.inf, 10, 11, 120)
    with pytest.raises(DataError, match=r"^x\.csv: row 3, field 'high': missing or non-finite price$"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    rows[1] = ("2020-01-02", 10.5, 12, 10, 0.0, 120)
    with pytest.raises(DataError, match=r"^x\.csv: row 3, field 'close': price must be > 0, got 0$"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    rows[1] = ("2020-01-02", 10.5, 12, 10, 11, np.inf)
    with pytest.raises(DataError, match=r"^x\.csv: row 3, field 'volume': missing volume \(repair: 0\)$"):
        validate_bars(frame(rows), symbol="X", source="x.csv")
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert out["volume"].tolist() == [100, 0, 90] and rep.repaired == 1
    rows[2] = ("2020-01-03", 11, 11.5, 10.5, 11.2, -4)  # inf and negative volume together
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="repair")
    assert out["volume"].tolist() == [100, 0, 4] and rep.repaired == 2
    out, rep = validate_bars(frame(rows), symbol="X", source="x.csv", on_error="drop")
    assert out["volume"].tolist() == [100] and rep.dropped == 2
