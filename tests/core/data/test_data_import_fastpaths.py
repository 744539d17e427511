"""The import's fast paths give exactly what the general rules give: lazy line numbers, the
timestamp shortcut, integer gap screening, sampled bar-size inference, clean-column shortcuts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.bars import Bars, LineNumbers
from mqc.core.data.reader import read_file
from mqc.core.data.timeframe import infer_bar_seconds_ns
from mqc.core.data.validate import validate_arrays
from mqc.core.errors import DataError

MIN_NS = 60_000_000_000
DAY_NS = 86_400_000_000_000


def test_line_numbers_index_like_an_arange():
    lines, ref = LineNumbers(5, 10), np.arange(10) + 5
    assert len(lines) == 10 and lines.tolist() == ref.tolist() and np.array_equal(np.asarray(lines), ref)
    assert lines[0] == 5 and lines[-1] == 14 and isinstance(lines[3], np.integer)
    mask = np.zeros(10, dtype=bool)
    mask[[1, 7]] = True
    for index in (mask, np.array([3, -1, 0]), slice(2, 8, 3), slice(None, None, -1), np.array([], dtype=np.int64)):
        assert np.array_equal(lines[index], ref[index])
    for bad in (10, -11, np.array([10]), np.zeros(9, dtype=bool)):
        with pytest.raises(IndexError):
            lines[bad]
    b = Bars(
        "X",
        "x.csv",
        np.arange(10, dtype=np.int64),
        {c: np.ones(10) for c in ("open", "high", "low", "close", "volume")},
        lines,
    )
    assert b.take(mask).rows.tolist() == [6, 12]


def _csv(path, text: str):
    path.write_text(text)
    return path


def test_timestamp_units_and_offsets_match_pandas(tmp_path):
    stamps = ["2021-03-01T10:00:00Z", "2021-03-01T10:01:00.250Z", "2021-03-01T12:02:00+02:00", "2021-03-01T10:03:00Z"]
    body = "".join(f"{s},1,2,0.5,1.5,10\n" for s in stamps)
    [bars] = read_file(_csv(tmp_path / "T.csv", "timestamp,open,high,low,close,volume\n" + body))
    assert bars.ts.tolist() == pd.to_datetime(stamps, utc=True, format="ISO8601").as_unit("ns").asi8.tolist()
    assert isinstance(bars.rows, LineNumbers) and bars.rows.tolist() == [2, 3, 4, 5]


@pytest.mark.parametrize("route", ["typed", "strings"])
def test_timestamps_beyond_the_nanosecond_range_are_bad_rows_never_wrapped(tmp_path, route):
    # "typed": pyarrow parses the column. "strings": one value pyarrow cannot type sends the column
    # through pandas, which parses at s/us resolution where 2300 fits; converting to ns must not wrap.
    rows = ["2021-01-01T00:00:00Z", "2300-01-02T00:00:00Z", "2021-01-01T00:02:00Z", "2021-01-01T00:03:00Z"]
    if route == "strings":
        rows.append("not a time")  # itself a bad row (dropped), and it keeps pyarrow from typing the column
    text = "timestamp,open,high,low,close,volume\n" + "".join(f"{r},1,2,0.5,1.5,10\n" for r in rows)
    shown = "2300-01-02 00:00:00" if route == "typed" else "'2300-01-02T00:00:00Z'"
    # Every bad row is named (the first few), the out-of-range one first.
    also = (
        ""
        if route == "typed"
        else "; row 6, field 'timestamp': 'not a time' is not a date/time in the column's format .*"
    )
    with pytest.raises(
        DataError,
        match=(
            rf"^.*F\.csv: row 3, field 'timestamp': {shown} is outside 1677-09-21 \.\. 2262-04-11, the dates that can"
            rf" be stored{also}$"
        ),
    ):
        read_file(_csv(tmp_path / "F.csv", text))
    for mode in ("drop", "repair"):
        [bars] = read_file(_csv(tmp_path / "F.csv", text), on_error=mode)
        bad = [not r.startswith("2021") for r in rows]
        assert bars.invalid.tolist() == bad  # validation drops these
        assert [(n.row, n.action) for n in bars.notes] == [(i + 2, "dropped") for i, b in enumerate(bad) if b]
        years = pd.DatetimeIndex(bars.ts[~bars.invalid].view("datetime64[ns]")).year
        assert set(years) == {2021}
        clean, _ = validate_arrays(bars, on_error=mode)
        assert len(clean) == len(rows) - sum(bad)
        assert set(pd.DatetimeIndex(clean.ts.view("datetime64[ns]")).year) == {2021}


def _bars(ts: np.ndarray) -> Bars:
    n = ts.size
    close = 100 + np.random.default_rng(0).random(n)
    cols = {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": np.ones(n)}
    return Bars("X", "x.csv", ts.astype(np.int64), cols, np.arange(n, dtype=np.int64) + 2)


def test_gap_limits_are_exact_at_the_boundary():
    # 1-minute 24/7 bars: a 90 s step is 1.5 bars (not a gap), a 91 s step is one.
    steps = np.full(400, MIN_NS)
    steps[100], steps[300] = 90_000_000_000, 91_000_000_000
    ts = 1_600_000_000 * 10**9 + np.r_[0, np.cumsum(steps)]
    _, rep = validate_arrays(_bars(ts))
    gaps = [i for i in rep.warnings if i.kind == "gap"]
    assert rep.gaps == 1 and [(g.row, g.detail) for g in gaps] == [(303, "gap of 1m 31s (1.5 x 1m) before this row")]
    assert rep.largest_gap_bars == 91 / 60
    # Session markets (bars on weekdays only): only holes longer than 4.5 days count.
    hours = _session_hours("2020-01-06", "2020-06-26")
    last = hours[-1]  # Friday 16:00
    ts = np.r_[hours, last + int(4.5 * DAY_NS), last + 2 * int(4.5 * DAY_NS) + 10**9]  # exactly 4.5 days, then 1 s more
    _, rep = validate_arrays(_bars(ts), bar_seconds=3600)
    assert rep.gaps == 1 and rep.warnings[0].row == ts.size + 1  # the last bar (rows start at line 2)


def _session_hours(start: str, end: str) -> np.ndarray:
    """Hourly bars 09:00-16:00 UTC on weekdays (an exchange session), int64 ns."""
    days = pd.bdate_range(start, end, tz="UTC").as_unit("ns").asi8
    return (days[:, None] + np.arange(9, 17)[None, :] * 3_600_000_000_000).ravel()


@pytest.mark.parametrize("session", [False, True])
def test_gap_count_matches_the_float_rule(session):
    rng = np.random.default_rng(1 if session else 2)
    if session:
        ts = _session_hours("2015-01-05", "2018-12-28")
        keep = np.ones(ts.size, dtype=bool)
        for i in rng.integers(0, ts.size - 200, 40):  # holes of about 4.5 days, some just under, some just over
            keep[(ts > ts[i]) & (ts < ts[i] + int(rng.uniform(3.8, 5.2) * DAY_NS))] = False
        ts = ts[keep]
        secs = 3600
    else:
        base = rng.choice([60, 60, 60, 89, 90, 91, 120, 600], size=5000) * 10**9 + rng.integers(-1, 2, 5000)
        ts = np.r_[0, np.cumsum(base)] + 1_500_000_000 * 10**9
        secs = 60
    _, rep = validate_arrays(_bars(ts), bar_seconds=secs)
    step = np.diff(ts) / 1e9
    expected = (step > 4.5 * 86400) if session else (step / secs > 1.5)
    assert 0 < rep.gaps == int(expected.sum())
    assert rep.largest_gap_bars == float((step / secs).max())


def test_sampled_bar_size_matches_the_differenced_sample():
    rng = np.random.default_rng(3)
    for n in (2, 3, 1000, 200_001, 450_003):
        ts = np.cumsum(rng.choice([60, 60, 60, 120, 0], size=n) * 10**9).astype(np.int64)
        gaps = np.diff(ts)[:: max(1, (n - 1) // 200_000)]
        gaps = gaps[gaps > 0] // 10**9
        if gaps.size == 0:
            continue
        values, counts = np.unique(gaps, return_counts=True)
        assert infer_bar_seconds_ns(ts) == int(values[np.argmax(counts)])


def _dirty_minutes(n: int = 240) -> Bars:
    """1-minute bars with spikes, holes, a duplicate, a swapped pair and broken high/low at many positions."""
    rng = np.random.default_rng(11)
    ts = 1_600_000_000 * 10**9 + np.arange(n, dtype=np.int64) * MIN_NS
    for i in (7, 8, 63, 150):  # holes (two adjacent), block edges for small blocks
        ts[i:] += 3 * MIN_NS
    ts[100] = ts[99]  # duplicate
    ts[[120, 121]] = ts[[121, 120]]  # out of order
    close = 100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n)))
    for i in (5, 6, 31, 64, 65, 200, n - 2):  # spikes, adjacent ones and one at the end
        close[i] *= 1.2
    open_ = np.r_[100.0, close[:-1]]
    high, low = np.maximum(open_, close) * 1.001, np.minimum(open_, close) * 0.999
    high[[3, 70, 171]] = open_[[3, 70, 171]] * 0.9  # high below the bar
    low[[4, 129]] = high[[4, 129]] * 1.01  # low above the bar
    cols = {"open": open_, "high": high, "low": low, "close": close, "volume": rng.random(n)}
    return Bars("X", "x.csv", ts, cols, np.arange(n, dtype=np.int64) + 2)


@pytest.mark.parametrize("on_error", ["repair", "drop"])
def test_block_size_never_changes_the_result(monkeypatch, on_error):
    import mqc.core.data.validate as validate_mod

    outcomes = []
    for block in (2, 3, 7, 64, validate_mod._BLOCK):
        monkeypatch.setattr(validate_mod, "_BLOCK", block)
        clean, rep = validate_arrays(_dirty_minutes(), on_error=on_error)
        with pytest.raises(DataError) as exc:
            validate_arrays(_dirty_minutes(), on_error="fail")
        outcomes.append(
            (clean.ts.tolist(), {c: v.tolist() for c, v in clean.cols.items()}, rep.to_dict(), str(exc.value))
        )
    assert all(o == outcomes[0] for o in outcomes[1:])
    kinds = {i["kind"] for i in outcomes[0][2]["issues"]}
    assert {"gap", "spike", "duplicate", "order", "ohlc"} <= kinds
