"""What ``mqc data validate/import`` print about bad rows: counts that agree with the notes, a
summary instead of one line per row for large files, and the full list in a file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()


def mqc(*args):
    return runner.invoke(app, list(map(str, args)))


def flat(text: str) -> str:
    return " ".join(text.split())


def _duplicated_minutes(path: Path, n: int) -> Path:
    """``n`` rows of 1-minute bars where every timestamp appears twice (n // 2 duplicates)."""
    t = np.datetime64("2021-01-01T00:00:00", "s") + (np.arange(n) // 2) * np.timedelta64(60, "s")
    stamps = np.datetime_as_string(t, unit="s")
    lines = [f"{s}Z,100,101,99,100,10\n" for s in stamps.tolist()]
    path.write_text("timestamp,open,high,low,close,volume\n" + "".join(lines))
    return path


def test_repair_of_many_duplicates_is_summarised_with_the_full_list_in_a_file(tmp_path):
    p = _duplicated_minutes(tmp_path / "DUPS.csv", 50_000)
    r = mqc("-q", "data", "validate", p, "--on-error", "repair")
    assert r.exit_code == 0, r.output
    text = flat(r.output)
    assert text.count("[dropped]") == 5  # the first 5 notes of the reason, not 25,000 lines
    assert "DUPS: and 24,995 more issues: 24,995 duplicate timestamp (dropped)" in text
    reports = list((Path(os.environ["MQC_DATA_DIR"]) / "reports").glob("*-issues.txt"))
    assert len(reports) == 1 and reports[0].name in "".join(text.split())
    lines = reports[0].read_text().splitlines()
    assert len(lines) == 25_000
    assert lines[-1].endswith(
        "row 50000, field 'timestamp': duplicate timestamp 2021-01-18 08:39:00; kept the last row [dropped]"
    )


def test_few_issues_write_no_file(tmp_path):
    p = _duplicated_minutes(tmp_path / "FEW.csv", 8)
    r = mqc("data", "validate", p, "--on-error", "repair")
    assert r.exit_code == 0 and flat(r.output).count("[dropped]") == 4 and "more issues" not in r.output
    assert not (Path(os.environ["MQC_DATA_DIR"]) / "reports").exists()


def test_a_rare_reason_is_shown_beside_many_duplicates(tmp_path):
    p = _duplicated_minutes(tmp_path / "MIX.csv", 200)
    text = p.read_text().replace(
        "2021-01-01T00:10:00Z,100,101,99,100,10\n", "2021-01-01T00:10:00Z,100,98,99,100,10\n", 1
    )
    p.write_text(text)
    r = mqc("data", "validate", p, "--on-error", "repair")
    out = flat(r.output)
    assert r.exit_code == 0 and "row 22, field 'high': high is below max(open, close)" in out
    assert "MIX: and 95 more issues: 95 duplicate timestamp (dropped)" in out


def test_dropped_malformed_lines_are_counted_and_a_two_bar_bar_size_is_a_guess(tmp_path):
    # The issue's MALF.csv: two "[dropped]" notes under a table saying "dropped rows 0", and a
    # bar size guessed from the two rows left presented as fact.
    p = tmp_path / "MALF.csv"
    p.write_text(
        "timestamp,open,high,low,close,volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10,11,9\n"
        "2020-01-06,10,11,9,10.5,100,7\n2020-01-07,10,11,9,10.5,100\n"
    )
    r = mqc("data", "validate", p, "--on-error", "drop", "--json")
    assert r.exit_code == 0, r.output
    import json

    rep = json.loads(r.stdout)["symbols"][0]["report"]
    assert (rep["rows_in"], rep["rows_out"], rep["dropped"]) == (4, 2, 2)
    assert [i["action"] for i in rep["issues"] if i["kind"] == "malformed"] == ["dropped", "dropped"]
    assert rep["timeframe_reliable"] is False
    assert any("is a guess from the one step between 2 bars; pass --timeframe" in i["detail"] for i in rep["issues"])
    table = mqc("data", "validate", p, "--on-error", "drop").output
    row = next(line for line in table.splitlines() if "MALF" in line and "│" in line)
    assert [c.strip() for c in row.split("│")[1:-1]][:4] == ["MALF", "5d?", "4", "2"]
    assert [c.strip() for c in row.split("│")[1:-1]][8] == "2"  # dropped rows


def test_malformed_lines_of_a_long_file_are_reported_and_counted(tmp_path):
    p = tmp_path / "long.csv"
    p.write_text(
        "timestamp,symbol,open,high,low,close,volume\n"
        + "".join(f"2020-01-{d:02d},{s},10,11,9,10.5,100\n" for d in range(1, 6) for s in ("AAA", "BBB"))
        + "2020-01-09,AAA,10,11\n"
    )
    r = mqc("data", "validate", p, "--on-error", "drop", "--json")
    import json

    reps = {s["symbol"]: s["report"] for s in json.loads(r.stdout)["symbols"]}
    assert sum(x["dropped"] for x in reps.values()) == 1
    assert [i["row"] for x in reps.values() for i in x["issues"] if i["kind"] == "malformed"] == [12]


def _days_csv(path: Path, n: int, edit: dict[int, str]) -> Path:
    """``n`` daily bars; ``edit`` replaces the line with that line number (header = 1)."""
    days = np.datetime64("2020-01-01") + np.arange(n)
    lines = ["timestamp,open,high,low,close,volume"] + [f"{d},10,11,9,10.5,100" for d in days.astype(str).tolist()]
    for line_no, text in edit.items():
        lines[line_no - 1] = text
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fail_mode_names_the_first_bad_rows_whatever_their_rule_and_counts_the_rest(tmp_path):
    # The issue: row 63 was reported for a file whose row 62 is also bad (another rule ran first).
    bad = {
        62: "2020-03-01,10,9,9.5,10.5,100",  # high below close: a validation rule
        63: "2020-03-02,10,11,9,abc,100",  # not a number: a reader rule
        70: "2020-03-09,10,11,9,-1,100",
        80: "not-a-date,10,11,9,10.5,100",
        90: "2020-03-29,10,11,9,10.5",  # malformed line
    }
    p = _days_csv(tmp_path / "BAD.csv", 100, bad)
    for cmd in ("validate", "import"):
        r = mqc("data", cmd, p)
        assert r.exit_code == 1
        text = flat(r.output)
        assert (
            "BAD.csv: row 62, field 'high': high is below max(open, close) (repair: high = max of the bar), got 9; row"
            " 63, field 'close': 'abc' is not a number; row 70, field 'close': price must be > 0, got -1 (and 2 more"
            " bad rows)" in text.replace("- ", "-")
        )


def test_absurd_prices_are_bad_rows_and_jumps_are_warned_naming_the_row(tmp_path):
    # The issue: a series jumping to 1e308 imported without a word; train then overflowed.
    huge = {k: f"2020-02-{k - 21:02d},1e308,1e308,1e308,1e308,100" for k in range(22, 24)}
    p = _days_csv(tmp_path / "HUGE.csv", 30, huge)
    r = mqc("data", "import", p)
    assert r.exit_code == 1
    assert "HUGE.csv: row 22, field 'open': not a plausible price (outside 1e-15 .. 1e+12), got 1e+308" in flat(
        r.output
    )
    r = mqc("data", "import", p, "--on-error", "drop", "--json")
    assert r.exit_code == 0, r.output
    import json

    sym = json.loads(r.stdout)["symbols"][0]
    assert sym["rows"] == 28 and sym["report"]["dropped"] == 2
    cents = {k: f"2020-01-{k - 1:02d},1000,1100,900,1050,100" for k in range(20, 32)}  # dollars, then cents
    p = _days_csv(tmp_path / "CENTS.csv", 30, cents)
    r = mqc("data", "validate", p, "--json")
    issues = json.loads(r.stdout)["symbols"][0]["report"]["issues"]
    assert r.exit_code == 0
    assert [(i["row"], i["action"]) for i in issues if i["kind"] == "jump"] == [(20, "warning")]
    assert "close 1050 is 100 x the previous bar's 10.5: a unit change or a bad value?" in [
        i["detail"] for i in issues if i["kind"] == "jump"
    ]


def test_a_folder_of_subfolders_names_them_and_how_to_import_them(tmp_path):
    root = tmp_path / "ohlcv"
    for sub in ("daily", "hourly", "empty"):
        (root / sub).mkdir(parents=True)
    _days_csv(root / "daily" / "AAA.csv", 10, {})
    _days_csv(root / "hourly" / "BBB.csv", 10, {})
    r = mqc("data", "import", root)
    assert r.exit_code == 1
    text = flat(r.output)
    assert (
        "no CSV or Parquet files in this folder itself; its subfolders have some: daily/ (1 file), hourly/ (1 file)"
        in text
    )
    assert "mqc data import '" in text and "/**/*.csv'" in text
    r = mqc("data", "import", f"{root}/**/*.csv")  # the glob the hint names works
    assert r.exit_code == 0, r.output


def test_show_defaults_to_the_train_and_forecast_bar_size_when_stored_at_several(tmp_path):
    p = _days_csv(tmp_path / "AIG.csv", 40, {})
    assert mqc("data", "import", p).exit_code == 0
    hourly = tmp_path / "h" / "AIG.csv"
    hourly.parent.mkdir()
    hours = np.datetime64("2020-01-01T00:00") + np.arange(40) * np.timedelta64(1, "h")
    hourly.write_text(
        "timestamp,open,high,low,close,volume\n"
        + "".join(f"{h}Z,10,11,9,10.5,100\n" for h in hours.astype(str).tolist())
    )
    assert mqc("data", "import", hourly).exit_code == 0
    r = mqc("data", "show", "AIG")
    assert r.exit_code == 0, r.output
    assert flat(r.output).startswith("AIG 1d 40 bars") and "also stored at 1h: mqc data show AIG -t 1h" in flat(
        r.output
    )
    r = mqc("data", "show", "AIG", "-t", "1h", "--json")
    import json

    d = json.loads(r.stdout)
    assert d["entry"]["timeframe"] == "1h" and d["also_stored_at"] == ["1d"]


def test_a_malformed_line_of_a_long_file_stops_an_import_of_one_of_its_symbols(tmp_path):
    p = tmp_path / "long.csv"
    rows = "".join(f"2020-01-{d:02d},{s},10,11,9,10.5,100\n" for d in range(1, 6) for s in ("AAA", "BBB"))
    p.write_text("timestamp,symbol,open,high,low,close,volume\n" + rows + "2020-01-09,AAA,10,11\n")
    r = mqc("data", "import", p, "--symbol", "BBB")
    assert r.exit_code == 1
    assert "long.csv: row 12: expected 7 fields, got a malformed line '2020-01-09,AAA,10,11'" in flat(r.output)
    r = mqc("data", "import", p, "--symbol", "BBB", "--on-error", "drop", "--json")
    import json

    rep = json.loads(r.stdout)["symbols"][0]["report"]
    assert rep["dropped"] == 1 and [i["row"] for i in rep["issues"] if i["kind"] == "malformed"] == [12]


def test_an_unwritable_issue_list_is_a_warning_not_a_failed_import(tmp_path):
    reports = Path(os.environ["MQC_DATA_DIR"]) / "reports"
    reports.parent.mkdir(parents=True, exist_ok=True)
    reports.write_text("a file where the folder should be")
    p = _duplicated_minutes(tmp_path / "DUPS.csv", 200)
    r = mqc("data", "import", p, "--on-error", "repair")
    assert r.exit_code == 0, r.output
    assert "warning: could not write the list of issues" in flat(r.output)
    assert "DUPS: and 95 more issues: 95 duplicate timestamp (dropped)" in flat(r.output)


MALF4 = (
    "timestamp,open,high,low,close,volume\n2020-01-02,10,11,9,10.5,100\n2020-01-03,10,abc,9,10.5,100\n"
    "2020-01-06,10,11,9,10.5,100\n2020-01-07,10,11,9,zz,100\n"
)


def test_bar_size_is_read_from_rows_dropped_for_their_prices(tmp_path):
    # Thu ok, Fri bad high, Mon ok, Tue bad close: stored at 4d from the two rows left, and then
    # `mqc forecast MALF4` said "stored at 4d, not 1d". The dropped rows' timestamps are good.
    import json

    p = tmp_path / "MALF4.csv"
    p.write_text(MALF4)
    r = mqc("--json", "data", "import", p, "--on-error", "drop")
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["symbols"][0]
    assert (item["timeframe"], item["rows"]) == ("1d", 2)
    assert item["report"]["timeframe_reliable"] is True
    assert not any(i["kind"] == "timeframe" for i in item["report"]["issues"])
    assert [e["timeframe"] for e in json.loads(mqc("--json", "data", "list").stdout)["entries"]] == ["1d"]


def test_import_refuses_a_guessed_bar_size_and_validate_warns(tmp_path):
    import json

    p = tmp_path / "TWO.csv"  # Thu and Mon: one 4-day step says nothing about the bar size
    p.write_text("timestamp,open,high,low,close,volume\n2020-01-02,10,11,9,10.5,100\n2020-01-06,10,11,9,10.5,100\n")
    r = mqc("data", "import", p)
    assert r.exit_code == 1
    assert "cannot tell the bar size of TWO from so few bars (a guess: 4d); nothing imported" in flat(r.output)
    assert "--timeframe 1d" in flat(r.output)
    assert json.loads(mqc("--json", "data", "list").stdout)["entries"] == []
    r = mqc("--json", "data", "validate", p)
    assert r.exit_code == 0 and json.loads(r.stdout)["symbols"][0]["report"]["timeframe_reliable"] is False
    r = mqc("--json", "data", "import", p, "--timeframe", "1d")
    assert r.exit_code == 0 and json.loads(r.stdout)["symbols"][0]["timeframe"] == "1d"
