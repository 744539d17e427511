"""Number formats of CSV files: decimal commas, thousands separators, ; and tab separators.

A misread number must never be stored: a file is read under its own decimal mark, or refused."""

from __future__ import annotations

import pytest

from mqc.core.data.config import ImportConfig
from mqc.core.data.importer import validate_paths
from mqc.core.data.reader import read_bars
from mqc.core.errors import DataError


def _write(path, text):
    path.write_text(text)
    return path


def test_semicolon_decimal_comma_is_read_as_decimals(tmp_path):
    # The issue's file: 10,03 was stored as 1003 (100x) with exit 0.
    p = _write(
        tmp_path / "EU.csv",
        "Date;Open;High;Low;Close;Volume\n2020-01-02;10,03;10,50;9,90;10,20;1000\n"
        "2020-01-03;10,21;10,60;10,00;10,40;1.200\n2020-01-06;10,4;10,7;10,1;10,5;900\n",
    )
    df = read_bars(p)["EU"]
    assert df["open"].tolist() == [10.03, 10.21, 10.4]
    assert df["high"].tolist() == [10.5, 10.6, 10.7]
    assert df["volume"].tolist() == [1000.0, 1200.0, 900.0]  # 1.200 groups thousands in this file
    report = validate_paths([p]).items[0].report
    assert report.issues == [] and report.rows_out == 3  # no misleading "high is below max(open, close)"


def test_tab_separated_with_european_thousands(tmp_path):
    p = _write(
        tmp_path / "T.tsv",
        "Date\tOpen\tHigh\tLow\tClose\tVolume\n2020-01-02\t1.234,5\t1.240,50\t1.200,90\t1.220,20\t1000\n"
        "2020-01-03\t1.221\t1.260,60\t1.200,00\t1.240,40\t1.200.000\n",
    )
    df = read_bars(p)["T"]
    assert df["open"].tolist() == [1234.5, 1221.0]
    assert df["volume"].tolist() == [1000.0, 1_200_000.0]


def test_us_thousands_separators_in_quoted_fields(tmp_path):
    p = _write(
        tmp_path / "US.csv",
        'Date,Open,High,Low,Close,Volume\n2020-01-02,"1,234.5",1240.5,1200.9,1220.2,1000\n2020-01-03,1221,1260.6,1200,1240.4,"1,200,000"\n',
    )
    df = read_bars(p)["US"]
    assert df["open"].tolist() == [1234.5, 1221.0]
    assert df["volume"].tolist() == [1000.0, 1_200_000.0]


def test_two_decimal_marks_are_refused_naming_both(tmp_path):
    p = _write(
        tmp_path / "M.csv",
        "Date;Open;High;Low;Close;Volume\n2020-01-02;10.5;11.5;9;10;1000\n2020-01-03;10.5;11,55;9;10;1000\n",
    )
    with pytest.raises(
        DataError,
        match=(
            r"M\.csv: numbers written with two decimal marks: '10\.5' \(row 2\) uses '\.', '11,55' \(row 3\) uses ','"
        ),
    ):
        read_bars(p)


def test_ambiguous_comma_in_semicolon_file_is_refused(tmp_path):
    p = _write(tmp_path / "A.csv", "Date;Open;High;Low;Close;Volume\n2020-01-02;1,234;1,240;1,200;1,220;1000\n")
    with pytest.raises(
        DataError,
        match=(
            r"A\.csv: row 2: cannot tell whether '1,234' means 1\.234 \(decimal comma\) or 1234 \(thousands"
            r" separator\)$"
        ),
    ):
        read_bars(p)
    # A ;-separated file is a European export: 1.200 may well be 1200.
    p = _write(tmp_path / "B.csv", "Date;Open;High;Low;Close;Volume\n2020-01-02;10;11;9;10;1.200\n")
    with pytest.raises(
        DataError, match=r"B\.csv: row 2: cannot tell whether '1\.200' means 1\.200 \(decimal point\) or 1200"
    ):
        read_bars(p)
    # A tab-separated file with 3-decimal prices reads as written (US convention).
    p = _write(tmp_path / "C.tsv", "Date\tOpen\tHigh\tLow\tClose\tVolume\n2020-01-02\t10.125\t11\t9\t10\t1200\n")
    assert read_bars(p)["C"]["open"].tolist() == [10.125]


def test_stray_thousands_mark_is_not_a_number_never_another_number(tmp_path):
    # Past the sniffed sample, a quoted '10,03' in a '.' file must not become 1003.
    lines = ["timestamp,open,high,low,close,volume\n"]
    lines += [f'2020-01-01T00:{k // 60:02d}:{k % 60:02d}Z,"10.{k % 90 + 10}",11,9,10,5\n' for k in range(2500)]
    lines.append('2020-01-01T01:00:00Z,"10,03",11,9,10,5\n')
    p = _write(tmp_path / "S.csv", "".join(lines))
    with pytest.raises(
        DataError, match=r"row 2502, field 'open': '10,03' is not a number \(this file's decimal mark '\.'"
    ):
        read_bars(p)


@pytest.mark.parametrize("kind", ["ones", "text"])
def test_one_long_line_is_refused_quickly_as_not_a_bar_file(tmp_path, kind):
    # The issue: a 200 MB single line gave "the file is empty" (1,1,1,...) or a csv field-limit
    # internal error, after reading it whole. Here 3 MB of it.
    p = tmp_path / "LINE.csv"
    p.write_text(",".join(["1"] * 1_500_000) if kind == "ones" else "abcdefgh " * 350_000)
    with pytest.raises(DataError, match=r"LINE\.csv: no line break in the first 64 KiB: not a CSV of bars"):
        read_bars(p)


def test_a_single_short_line_is_no_bars_not_an_empty_file(tmp_path):
    p = _write(tmp_path / "ONE.csv", "1,1,1,1,1,1")
    with pytest.raises(DataError, match=r"ONE\.csv: one line and no line break \('1,1,1,1,1,1'\): no bars"):
        read_bars(p)


def test_an_overlong_bar_line_is_a_malformed_line_not_an_internal_error(tmp_path):
    p = _write(
        tmp_path / "L.csv",
        "timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,1,1\n"
        + "x" * 3_000_000
        + "\n2020-01-02,1,2,0.5,1,1\n",
    )
    with pytest.raises(DataError, match=r"L\.csv: row 3: expected 6 fields, got a malformed line 'xxxx"):
        read_bars(p)
    report = validate_paths([p], ImportConfig(on_error="drop")).items[0].report
    assert (report.rows_in, report.rows_out) == (3, 2)
