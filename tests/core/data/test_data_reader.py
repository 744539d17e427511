"""Reading many file shapes: aliases, epoch units, time zones, yfinance headers, long files, bad files."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.reader import expand_paths, read_bars, read_file
from mqc.core.errors import ArtifactNotFound, DataError

ROWS = "1,2,0.5,1.5,100\n1.5,2.5,1,2,200\n2,3,1.5,2.5,300\n"


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _rows(prefix_times):
    vals = ROWS.strip().splitlines()
    return "".join(f"{t},{v}\n" for t, v in zip(prefix_times, vals, strict=True))


def test_aliases_case_insensitive_and_adj_close(tmp_path):
    p = _write(
        tmp_path / "aapl.csv",
        "Date,OPEN,High,low,Close,Adj Close,Vol\n"
        + "".join(
            f"2020-01-0{i + 1},{o},{h},{lo},{c},{c * 0.9},{v}\n"
            for i, (o, h, lo, c, v) in enumerate([(1, 2, 0.5, 1.5, 100), (1.5, 2.5, 1, 2, 200)])
        ),
    )
    df = read_bars(p)["AAPL"]
    assert list(df.columns) == ["timestamp", "open", "high", "low", "close", "volume"]
    assert df["close"].tolist() == [1.5, 2.0]  # Close, not Adj Close
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_only_adj_close_is_used_as_close(tmp_path):
    p = _write(
        tmp_path / "X.csv", "timestamp,open,high,low,adj close\n2020-01-01,1,2,0.5,1.5\n2020-01-02,1,2,0.5,1.7\n"
    )
    df = read_bars(p)["X"]
    assert df["close"].tolist() == [1.5, 1.7]
    assert df["volume"].isna().all()  # absent volume: validation stores 0 with a warning


@pytest.mark.parametrize(
    ("stamps", "expected"),
    [
        (["1577836800", "1577923200", "1578009600"], "2020-01-01"),  # epoch seconds
        (["1577836800000", "1577923200000", "1578009600000"], "2020-01-01"),  # epoch milliseconds
        (
            ["2020-01-01T05:00:00+05:00", "2020-01-02T05:00:00+05:00", "2020-01-03T05:00:00+05:00"],
            "2020-01-01",
        ),  # tz -> UTC
        (["2019-12-31 19:00:00-05:00", "2020-01-01 19:00:00-05:00", "2020-01-02 19:00:00-05:00"], "2020-01-01"),
        (["1/13/2020", "1/14/2020", "1/15/2020"], "2020-01-13"),  # US dates (1/2/2020 alone could be 1 February)
        (["13/1/2020", "14/1/2020", "15/1/2020"], "2020-01-13"),  # day-first dates
        (["31.12.2019 22:00", "31.12.2019 23:00", "01.01.2020 00:00"], "2019-12-31 22:00"),
    ],
)
def test_timestamp_formats_become_utc(tmp_path, stamps, expected):
    p = _write(tmp_path / "T.csv", "time,open,high,low,close,volume\n" + _rows(stamps))
    ts = read_bars(p)["T"]["timestamp"]
    assert ts.iloc[0] == pd.Timestamp(expected, tz="UTC")
    step = pd.Timedelta(hours=1) if stamps[0].startswith("31.12") else pd.Timedelta(days=1)
    assert (ts.diff().dropna() == step).all()


def test_yfinance_multirow_header_gives_ticker_symbol(tmp_path):
    text = (
        "Price,Adj Close,Close,High,Low,Open,Volume\n"
        "Ticker,MSFT,MSFT,MSFT,MSFT,MSFT,MSFT\n"
        "Date,,,,,,\n"
        "2024-01-02,369.0,370.87,375.9,366.77,373.86,25258600\n"
        "2024-01-03,368.0,370.6,373.26,368.51,369.01,23083500\n"
    )
    [bars] = read_file(_write(tmp_path / "download.csv", text))
    assert bars.symbol == "MSFT"
    assert bars.cols["close"].tolist() == [370.87, 370.6]
    assert bars.rows.tolist() == [4, 5]  # line numbers count the three header lines


def test_long_file_splits_by_symbol_keeping_line_numbers(tmp_path):
    text = "symbol,timestamp,open,high,low,close,volume\n" + "".join(
        f"{s},2020-01-0{d},1,2,0.5,1.5,10\n" for d in (1, 2, 3) for s in ("BBB", "AAA")
    )
    out = read_file(_write(tmp_path / "long.csv", text))
    assert [b.symbol for b in out] == ["AAA", "BBB"]
    assert out[0].rows.tolist() == [3, 5, 7]
    assert len(out[1]) == 3
    [only] = read_file(tmp_path / "long.csv", symbol="bbb")
    assert only.symbol == "BBB" and only.rows.tolist() == [2, 4, 6]
    with pytest.raises(DataError, match=r"no rows for symbol CCC \(the file has AAA, BBB\)"):
        read_file(tmp_path / "long.csv", symbol="CCC")


def test_unnamed_index_column_semicolons_and_gzip(tmp_path):
    p = _write(
        tmp_path / "GOOG.csv",
        ",Open,High,Low,Close,Volume\n2004-08-19,100,104.06,95.96,100.34,22351900\n2004-08-20,101.01,109.08,100.5,108.31,11428600\n",
    )
    assert read_bars(p)["GOOG"]["open"].tolist() == [100.0, 101.01]
    p = _write(
        tmp_path / "semi.csv",
        "timestamp;open;high;low;close;volume\n" + _rows(["2020-01-01", "2020-01-02", "2020-01-03"]).replace(",", ";"),
    )
    assert len(read_bars(p)["SEMI"]) == 3
    gz = tmp_path / "zipped.csv.gz"
    gz.write_bytes(
        gzip.compress(
            ("timestamp,open,high,low,close,volume\n" + _rows(["2020-01-01", "2020-01-02", "2020-01-03"])).encode()
        )
    )
    assert list(read_bars(gz)) == ["ZIPPED"]


def test_parquet_input(tmp_path, synth):
    df = synth(n_assets=1, n_bars=50)["SYN0"]
    df.to_parquet(tmp_path / "S.parquet", index=False)
    got = read_bars(tmp_path / "S.parquet")["S"]
    assert np.allclose(got["close"], df["close"])


def test_empty_file(tmp_path):
    p = _write(tmp_path / "E.csv", "")
    with pytest.raises(DataError, match=r"E\.csv: the file is empty$"):
        read_file(p)


def test_header_only(tmp_path):
    p = _write(tmp_path / "H.csv", "timestamp,open,high,low,close,volume\n")
    with pytest.raises(DataError, match=r"H\.csv: no rows of bars \(only a header\)"):
        read_file(p)


def test_binary_file(tmp_path):
    p = tmp_path / "B.csv"
    p.write_bytes(bytes(range(256)) * 20)
    with pytest.raises(DataError, match=r"B\.csv: binary content, not a CSV text file"):
        read_file(p)


def test_wrong_column_names(tmp_path):
    p = _write(tmp_path / "W.csv", "when,a,b,x,y\n2020-01-01,1,2,3,4\n")
    with pytest.raises(
        DataError, match=r"W\.csv: missing column\(s\) timestamp, open, high, low, close \(found: when, a, b, x, y\)"
    ):
        read_file(p)


def test_corrupted_csv_names_line(tmp_path):
    p = _write(
        tmp_path / "C.csv",
        "timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,1.5,10\n2020-01-02,1,2\n2020-01-03,1,2,0.5,1.5,10\n",
    )
    with pytest.raises(DataError, match=r"C\.csv: row 3: expected 6 fields, got a malformed line '2020-01-02,1,2'"):
        read_file(p)
    [bars] = read_file(p, on_error="drop")
    assert bars.rows.tolist() == [2, 4]
    assert [(n.row, n.action) for n in bars.notes] == [(3, "dropped")]


def test_non_number_names_row_and_field(tmp_path):
    p = _write(
        tmp_path / "N.csv",
        "timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,1.5,10\n2020-01-02,1,2,0.5,abc,10\n",
    )
    with pytest.raises(DataError, match=r"N\.csv: row 3, field 'close': 'abc' is not a number"):
        read_file(p)
    [bars] = read_file(p, on_error="repair")
    assert bars.invalid.tolist() == [False, True]


def test_bad_timestamp_names_row(tmp_path):
    p = _write(
        tmp_path / "D.csv",
        "timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,1.5,10\n2020-01-02,1,2,0.5,1.5,10\nnot-a-date,1,2,0.5,1.5,10\n",
    )
    with pytest.raises(DataError, match=r"D\.csv: row 4, field 'timestamp': 'not-a-date' is not a date/time"):
        read_file(p)


def test_expand_paths(tmp_path):
    for name in ("A.csv", "B.csv", "notes.md"):
        _write(tmp_path / name, "x")
    assert [p.name for p in expand_paths([tmp_path])] == ["A.csv", "B.csv"]
    assert [p.name for p in expand_paths([str(tmp_path / "*.csv")])] == ["A.csv", "B.csv"]
    with pytest.raises(DataError, match="matches no file"):
        expand_paths([str(tmp_path / "*.parquet")])
    with pytest.raises(ArtifactNotFound, match="no such file or folder"):
        expand_paths([tmp_path / "missing.csv"])
