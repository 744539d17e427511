"""One date format per timestamp column, one epoch unit per column, and drop notes that say why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.reader import read_file
from mqc.core.data.validate import validate_arrays
from mqc.core.errors import DataError

HEADER = "timestamp,open,high,low,close,volume\n"


def _csv(path, stamps) -> str:
    path.write_text(HEADER + "".join(f"{s},10,11,9,10.5,100\n" for s in stamps), encoding="utf-8")
    return path


def _days(bars, mask=None) -> list[str]:
    ts = bars.ts if mask is None else bars.ts[mask]
    return [str(d) for d in ts.view("datetime64[ns]").astype("datetime64[D]")]


def _notes(bars) -> list[tuple[int, str, str]]:
    return [(n.row, n.detail, n.action) for n in bars.notes]


def test_day_first_file_is_read_day_first_in_every_row(tmp_path):
    # 10/01/2020 fits both orders; 13/01/2020 only day-first. One format for the column: all January.
    p = _csv(tmp_path / "EU.csv", ["10/01/2020", "13/01/2020", "14/01/2020", "15/01/2020"])
    [bars] = read_file(p)
    assert _days(bars) == ["2020-01-10", "2020-01-13", "2020-01-14", "2020-01-15"]
    assert not bars.invalid.any() and bars.notes == []
    clean, report = validate_arrays(bars)  # in order: nothing sorted, nothing to warn about
    assert report.issues == [] and len(clean) == 4


def test_an_odd_row_among_iso_dates_is_a_bad_row_not_a_bar_elsewhere(tmp_path):
    p = _csv(tmp_path / "MIXED.csv", ["2020-01-02", "2020-01-03", "2020-01-06", "07.01.2020", "2020-01-08"])
    with pytest.raises(
        DataError,
        match=(
            r"^.*MIXED\.csv: row 5, field 'timestamp': '07\.01\.2020' is not a date/time in the column's format "
            r"\(ISO-8601, like 2020-01-31 or 2020-01-31 09:30:00\)$"
        ),
    ):
        read_file(p)
    for mode in ("repair", "drop"):
        [bars] = read_file(p, on_error=mode)
        assert bars.invalid.tolist() == [False, False, False, True, False]
        assert _notes(bars) == [
            (
                5,
                "'07.01.2020' is not a date/time in the column's format "
                "(ISO-8601, like 2020-01-31 or 2020-01-31 09:30:00)",
                "dropped",
            )
        ]
        clean, report = validate_arrays(bars, on_error=mode)
        assert _days(clean) == ["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-08"]  # no July bar
        assert [i.kind for i in report.issues] == ["timestamp"]  # nothing sorted, no gap


def test_a_value_that_does_not_fit_the_explicit_format_names_the_format(tmp_path):
    p = _csv(tmp_path / "D.csv", ["13/01/2020", "14/01/2020", "2020-01-15", "16/01/2020"])
    with pytest.raises(
        DataError,
        match=(
            r"D\.csv: row 4, field 'timestamp': '2020-01-15' is not a date/time in the column's format \(DD/MM/YYYY\)$"
        ),
    ):
        read_file(p)
    [bars] = read_file(p, on_error="drop")
    assert _days(bars, ~bars.invalid) == ["2020-01-13", "2020-01-14", "2020-01-16"]
    assert _notes(bars) == [(4, "'2020-01-15' is not a date/time in the column's format (DD/MM/YYYY)", "dropped")]


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        # Both orders fit every value; only the day-first reading is in time order (ascending) ...
        (
            ["11/01/2020", "12/01/2020", "01/02/2020", "02/02/2020"],
            ["2020-01-11", "2020-01-12", "2020-02-01", "2020-02-02"],
        ),
        # ... or, for a newest-first file, descending.
        (
            ["03/02/2020", "02/02/2020", "01/02/2020", "12/01/2020"],
            ["2020-02-03", "2020-02-02", "2020-02-01", "2020-01-12"],
        ),
        # Month-first in order, day-first not.
        (
            ["01/11/2020", "01/12/2020", "02/01/2020", "02/02/2020"],
            ["2020-01-11", "2020-01-12", "2020-02-01", "2020-02-02"],
        ),
        # Both readings identical (day == month): no ambiguity in the result.
        (["01/01/2020", "02/02/2020", "03/03/2020"], ["2020-01-01", "2020-02-02", "2020-03-03"]),
    ],
)
def test_time_order_decides_between_day_first_and_month_first(tmp_path, stamps, expected):
    [bars] = read_file(_csv(tmp_path / "O.csv", stamps))
    assert _days(bars) == expected


@pytest.mark.parametrize("mode", ["fail", "repair", "drop"])
def test_undecidable_day_month_order_is_one_clear_error(tmp_path, mode):
    p = _csv(tmp_path / "AMB.csv", ["01/02/2020", "02/03/2020", "03/04/2020"])
    with pytest.raises(DataError) as info:
        read_file(p, on_error=mode)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(p) + ": ")
    assert (
        "day/month order is ambiguous: '01/02/2020' reads as 2020-01-02 (MM/DD/YYYY) or 2020-02-01 (DD/MM/YYYY)" in msg
    )
    assert "all values fit both and both readings are in time order" in msg
    assert "YYYY-MM-DD" in info.value.hint


def test_times_with_a_day_first_date(tmp_path):
    stamps = ["31/12/2019 22:00", "31/12/2019 23:00", "01/01/2020 00:00", "01/01/2020 01:00"]
    [bars] = read_file(_csv(tmp_path / "H.csv", stamps))
    assert bars.ts.tolist() == pd.to_datetime(stamps, format="%d/%m/%Y %H:%M", utc=True).as_unit("ns").asi8.tolist()


@pytest.mark.parametrize(
    ("stamps", "bad", "detail"),
    [
        # One epoch-seconds value among milliseconds (it used to be a 1970-01-19 bar).
        (
            ["1577923200000", "1578009600000", "1578268800", "1578355200000"],
            2,
            "1578268800 looks like epoch seconds, but the column holds epoch milliseconds",
        ),
        # One milliseconds value among seconds: the column's unit is the one most values have.
        (
            ["1577923200", "1578009600", "1578268800000", "1578355200"],
            2,
            "1578268800000 looks like epoch milliseconds, but the column holds epoch seconds",
        ),
        (
            ["1577923200.5", "1578009600.25", "1578268800000.5", "1578355200.0"],
            2,
            "1578268800000.5 looks like epoch milliseconds, but the column holds epoch seconds",
        ),
    ],
)
def test_epoch_value_of_another_unit_is_a_bad_row(tmp_path, stamps, bad, detail):
    p = _csv(tmp_path / "EP.csv", stamps)
    with pytest.raises(
        DataError,
        match=rf"EP\.csv: row {bad + 2}, field 'timestamp': {detail.replace('.', '[.]').replace('+', '[+]')}$",
    ):
        read_file(p)
    [bars] = read_file(p, on_error="drop")
    assert bars.invalid.tolist() == [i == bad for i in range(4)]
    assert _notes(bars) == [(bad + 2, detail, "dropped")]
    clean, report = validate_arrays(bars, on_error="drop")
    assert _days(clean) == ["2020-01-02", "2020-01-03", "2020-01-07"]
    assert not [i for i in report.issues if i.kind == "gap"]


def test_nanosecond_epochs_read_exactly(tmp_path):
    [bars] = read_file(_csv(tmp_path / "NS.csv", ["1577923200000000001", "1578009600000000000"]))
    assert bars.ts.tolist() == [1577923200000000001, 1578009600000000000]


@pytest.mark.parametrize("route", ["typed", "strings", "epoch"])
def test_dropped_timestamps_say_what_is_wrong_per_row(tmp_path, route):
    if route == "typed":  # pyarrow types the column; 2262-04-12 does not fit nanoseconds
        stamps = ["2262-04-09", "2262-04-10", "", "2262-04-12", "2300-01-01"]
        beyond = ["2262-04-12 00:00:00", "2300-01-01 00:00:00"]
    elif route == "strings":  # one odd value keeps pyarrow from typing it: pandas parses the rest
        stamps = ["2262-04-09", "2262-04-10", "", "2262-04-12", "2300-01-01", "soon"]
        beyond = ["'2262-04-12'", "'2300-01-01'"]
    else:
        stamps = ["9200000000", "9200086400", "", "9300000000", "9400000000"]
        beyond = ["9300000000 (epoch seconds)", "9400000000 (epoch seconds)"]
    [bars] = read_file(_csv(tmp_path / "F.csv", stamps), on_error="drop")
    storable = "is outside 1677-09-21 .. 2262-04-11, the dates that can be stored"
    expected = [
        (4, "missing timestamp", "dropped"),
        (5, f"{beyond[0]} {storable}", "dropped"),
        (6, f"{beyond[1]} {storable}", "dropped"),
    ]
    if route == "strings":
        expected.append(
            (
                7,
                "'soon' is not a date/time in the column's format (ISO-8601, like 2020-01-31 or 2020-01-31 09:30:00)",
                "dropped",
            )
        )
    assert _notes(bars) == expected
    assert np.flatnonzero(bars.invalid).tolist() == [2, 3, 4] + ([5] if route == "strings" else [])


def test_yyyymmdd_numbers_are_dates_not_epoch_seconds(tmp_path):
    path = tmp_path / "N.csv"
    path.write_text(
        "date,open,high,low,close,volume\n20200102,1,2,0.5,1.5,10\n20200103,1,2,0.5,1.5,10\n20200106,1,2,0.5,1.5,10\n"
    )
    [bars] = read_file(path)
    assert pd.DatetimeIndex(bars.ts.view("datetime64[ns]")).strftime("%Y-%m-%d").tolist() == [
        "2020-01-02",
        "2020-01-03",
        "2020-01-06",
    ]
    # Real epoch seconds stay epochs.
    path.write_text("date,open,high,low,close,volume\n1577923200,1,2,0.5,1.5,10\n1578009600,1,2,0.5,1.5,10\n")
    [bars] = read_file(path)
    assert pd.DatetimeIndex(bars.ts.view("datetime64[ns]")).strftime("%Y-%m-%d").tolist() == [
        "2020-01-02",
        "2020-01-03",
    ]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (
            ["01/02/20", "01/03/20", "01/13/20"],
            ["2020-01-02 00:00", "2020-01-03 00:00", "2020-01-13 00:00"],
        ),  # two-digit years
        (["02-Jan-20", "03-Jan-20"], ["2020-01-02 00:00", "2020-01-03 00:00"]),
        (["20200102.0", "20200103.0"], ["2020-01-02 00:00", "2020-01-03 00:00"]),  # YYYYMMDD as floats
        (["202001020930", "202001021030"], ["2020-01-02 09:30", "2020-01-02 10:30"]),  # YYYYMMDDhhmm, not 1976 ms
        (["20200102093000", "20200102103000"], ["2020-01-02 09:30", "2020-01-02 10:30"]),
        (["1577957400000", "1577961000000"], ["2020-01-02 09:30", "2020-01-02 10:30"]),  # real ms epochs stay epochs
    ],
)
def test_number_and_short_year_layouts(tmp_path, cells, expected):
    path = tmp_path / "L.csv"
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(f"{c},1,2,0.5,1.5,10\n" for c in cells))
    [bars] = read_file(path)
    assert pd.DatetimeIndex(bars.ts.view("datetime64[ns]")).strftime("%Y-%m-%d %H:%M").tolist() == expected


def test_a_column_with_no_parseable_value_hints_at_iso(tmp_path):
    path = tmp_path / "U.csv"
    path.write_text("timestamp,open,high,low,close,volume\nfoo,1,2,0.5,1.5,10\nbar,1,2,0.5,1.5,10\n")
    with pytest.raises(DataError) as err:
        read_file(path)
    assert "ISO YYYY-MM-DD" in err.value.hint


@pytest.mark.parametrize(
    "stamps, expected",
    [
        (["2020-01-02", "2020-01-03", "2020-01-06"], ("1d", True)),  # a day and a weekend: whole days
        (["2020-01-02", "2020-01-03", "2020-01-06", "2020-01-07"], ("1d", True)),
        (["2020-01-02", "2020-01-06"], ("4d", False)),  # one step
        (["2020-01-01", "2020-01-04", "2020-01-09"], ("3d", False)),  # 3 and 5 days: unrelated
    ],
)
def test_how_many_steps_back_a_guessed_bar_size(tmp_path, stamps, expected):
    [bars] = read_file(_csv(tmp_path / "G.csv", stamps))
    _, report = validate_arrays(bars)
    assert (report.timeframe, report.timeframe_reliable) == expected
