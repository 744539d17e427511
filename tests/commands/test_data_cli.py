"""``mqc data`` end to end through the CLI: exit codes, exact messages, JSON, unchanged catalog."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"


def mqc(*args):
    return runner.invoke(app, list(map(str, args)))


def flat(text: str) -> str:
    """Output with Rich's line wrapping undone (the console wraps at 80 columns under CliRunner)."""
    return " ".join(text.split())


def unboxed(text: str) -> str:
    """A Typer usage error with its Rich panel borders removed and lines joined."""
    return flat(text.replace("│", " "))


def dense(text: str) -> str:
    """Output with all whitespace removed: Rich may break a long tmp path anywhere, even before its ':'."""
    return "".join(text.split())


def catalog_root() -> Path:
    return Path(os.environ["MQC_DATA_DIR"]) / "catalog"


def snapshot():
    root = catalog_root()
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def good_csv(path, n=40, start=0):
    lines = [HEADER]
    for k in range(start, start + n):
        c = 100 + k
        lines.append(f"2021-01-{1 + k // 24:02d}T{k % 24:02d}:00:00Z,{c},{c + 2},{c - 2},{c + 1},{10 + k}\n")
    path.write_text("".join(lines))
    return path


@pytest.fixture
def seeded(tmp_path):
    """A catalog holding AAA (1h) so failing imports have something to leave untouched."""
    r = mqc("data", "import", good_csv(tmp_path / "AAA.csv"))
    assert r.exit_code == 0, r.output
    return snapshot()


BAD_FILES = {
    "corrupted": (
        HEADER + "2021-01-01,1,2,0.5,1.5,10\n2021-01-02,1,2\n\x7f\x7f,,\n",
        r"row 3: expected 6 fields, got a malformed line '2021-01-02,1,2'",
    ),
    "wrong_columns": (
        "date,price,qty\n2021-01-01,1,2\n",
        r"missing column\(s\) open, high, low \(found: date, price, qty\)",
    ),
    "negative": (
        HEADER + "2021-01-01,1,2,0.5,1.5,10\n2021-01-02,-1,2,0.5,1.5,10\n",
        r"row 3, field 'open': price must be > 0, got -1",
    ),
    "duplicates": (
        HEADER + "2021-01-01,1,2,0.5,1.5,10\n2021-01-02,1,2,0.5,1.5,10\n2021-01-02,1,2,0.5,1.6,10\n",
        r"row 4, field 'timestamp': duplicate timestamp 2021-01-02 00:00:00 \(also at row 3\)",
    ),
    "empty": ("", r"the file is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_input_exit_1_exact_message_catalog_unchanged(tmp_path, seeded, case):
    text, message = BAD_FILES[case]
    bad = tmp_path / f"{case}.csv"
    bad.write_text(text)
    ok = good_csv(tmp_path / "BBB.csv")
    r = mqc("data", "import", ok, bad)
    assert r.exit_code == 1, r.output
    assert f"error:{bad}:" in dense(r.output)
    assert re.search(message, flat(r.output)), r.output
    assert "hint:" in r.output
    assert snapshot() == seeded  # BBB was valid but is not stored either: all or nothing


def test_binary_file(tmp_path, seeded):
    bad = tmp_path / "blob.csv"
    bad.write_bytes(os.urandom(2048) + b"\x00" * 16)
    r = mqc("data", "import", bad)
    assert r.exit_code == 1
    assert f"error:{bad}:binarycontent,notaCSVtextfile" in dense(r.output)
    assert snapshot() == seeded


def test_repair_report_and_json(tmp_path):
    p = tmp_path / "R.csv"
    p.write_text(
        HEADER
        + "2021-01-04,1,1.2,0.9,1.1,10\n2021-01-05,1.1,1.0,0.9,1.15,-3\n"
        + "2021-01-06,1.1,1.3,0.9,abc,10\n2021-01-07,1.1,1.3,0.9,1.2,10\n"
    )
    r = mqc("data", "validate", p)
    assert r.exit_code == 1 and "row 4, field 'close': 'abc' is not a number" in flat(r.output)
    r = mqc("data", "import", p, "--on-error", "repair")
    assert r.exit_code == 0, r.output
    text = flat(r.output)
    assert "row 3, field 'volume': volume must be >= 0 (repair: |volume|), got -3 [repaired]" in text
    assert (
        "row 3, field 'high': high is below max(open, close) (repair: high = max of the bar), got 1 [repaired]" in text
    )
    assert "row 4, field 'close': not a number [dropped]" in text
    r = mqc("--json", "data", "list")
    data = json.loads(r.stdout)
    assert [(e["symbol"], e["rows"]) for e in data["entries"]] == [("R", 3)]
    r = mqc("data", "validate", p, "--on-error", "drop", "--json")
    rep = json.loads(r.stdout)["symbols"][0]["report"]
    assert r.exit_code == 0 and rep["rows_out"] == 2 and rep["dropped"] == 2


def test_validate_writes_nothing(tmp_path):
    r = mqc("data", "validate", good_csv(tmp_path / "V.csv"))
    assert r.exit_code == 0 and "validation (nothing written)" in r.output
    assert snapshot() == {}


def test_append_then_idempotent(tmp_path, seeded):
    r = mqc("--json", "data", "import", good_csv(tmp_path / "AAA.csv", n=60))
    item = json.loads(r.stdout)["symbols"][0]
    assert (item["status"], item["added"], item["rows"]) == ("appended", 20, 60)
    r = mqc("--json", "data", "import", good_csv(tmp_path / "AAA.csv", n=60))
    assert json.loads(r.stdout)["symbols"][0]["status"] == "unchanged"


def test_show_export_remove(tmp_path, seeded):
    r = mqc("data", "show", "aaa", "--last", "2")
    assert r.exit_code == 0 and "AAA 1h 40 bars" in flat(r.output) and "last 2 bars" in r.output
    assert any(ch in r.output for ch in "▁▂▃▄▅▆▇█")
    out = tmp_path / "x.csv"
    r = mqc("data", "export", "AAA", "--to", "csv", "--out", out)
    assert r.exit_code == 0 and out.read_text().startswith(HEADER + "2021-01-01T00:00:00Z,100,102,98,101,10\n")
    r = mqc("data", "export", "AAA", "--to", "xlsx")
    assert r.exit_code == 2 and "'xlsx' is not one of 'csv', 'parquet'" in unboxed(r.output)
    r = mqc("data", "remove", "AAA")
    assert r.exit_code == 0 and "removed 1h/AAA (40 bars)" in flat(r.output)
    r = mqc("data", "show", "AAA")
    assert (
        r.exit_code == 1
        and "symbol 'AAA' is not in the catalog" in flat(r.output)
        and "hint: mqc data list" in flat(r.output)
    )


def test_usage_error_exit_2(tmp_path):
    r = mqc("data", "import")
    assert r.exit_code == 2
    r = mqc("data", "import", good_csv(tmp_path / "U.csv"), "--on-error", "maybe")
    assert r.exit_code == 2 and "'maybe' is not one of 'fail', 'repair', 'drop'" in unboxed(r.output)


def test_sample_and_list():
    r = mqc("data", "sample")
    assert r.exit_code == 0, r.output
    r = mqc("data", "list")
    for sym in ("SP500", "NASDAQ", "GOOG", "EURUSD"):
        assert sym in r.output
    r = mqc("--json", "data", "sample")
    assert {s["status"] for s in json.loads(r.stdout)["symbols"]} == {"unchanged"}


def test_synth_out_and_import(tmp_path):
    r = mqc(
        "data",
        "synth",
        "--assets",
        "3",
        "--bars",
        "200",
        "--seed",
        "1",
        "--timeframe",
        "1h",
        "--out",
        tmp_path / "syn",
        "--import",
    )
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "syn").iterdir()) == ["SYN0.csv", "SYN1.csv", "SYN2.csv"]
    r = mqc("--json", "data", "list", "--timeframe", "1h")
    assert [e["rows"] for e in json.loads(r.stdout)["entries"]] == [200, 200, 200]
    # The written CSVs import as the same bars (up to CSV rounding) without conflict or duplicates.
    r = mqc("data", "validate", tmp_path / "syn")
    assert r.exit_code == 0


def test_fetch_without_extra_names_the_extra(monkeypatch):
    import builtins

    real = builtins.__import__

    def no_yf(name, *a, **k):
        if name == "yfinance":
            raise ImportError("no yfinance")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_yf)
    r = mqc("data", "fetch", "AAPL")
    assert (
        r.exit_code == 1
        and "optional dependency 'yfinance' is not installed" in flat(r.output)
        and 'pip install yfinance (or from the mqc checkout: pip install -e ".[fetch]")' in flat(r.output)
    )


def test_replace_overwrites_only_the_differing_bars(tmp_path, seeded):
    fix = tmp_path / "fix.csv"
    # 14:00 revised, 15:00 as stored, 16:00 new.
    fix.write_text(
        HEADER
        + "2021-01-02T14:00:00Z,138,141,136,140.5,48\n2021-01-02T15:00:00Z,139,141,137,140,49\n"
        + "2021-01-02T16:00:00Z,140,142,138,141,50\n"
    )
    r = mqc("data", "import", fix, "--symbol", "AAA")
    assert r.exit_code == 1 and "--replace" in flat(r.output) and snapshot() == seeded
    r = mqc("--json", "data", "import", fix, "--symbol", "AAA", "--replace")
    item = json.loads(r.stdout)["symbols"][0]
    assert (item["status"], item["added"], item["overwritten"], item["rows"]) == ("replaced", 1, 1, 41)
    r = mqc("--json", "data", "list")
    assert json.loads(r.stdout)["entries"][0]["rows"] == 41


def test_adjusted_option(tmp_path):
    p = tmp_path / "XYZ.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9,10,9,100\n2024-01-03,10,12,10,11,9.9,100\n"
    )
    r = mqc("data", "validate", p)
    assert r.exit_code == 0 and "Adj Close, which was ignored" in flat(r.output) and "--adjusted" in flat(r.output)
    r = mqc("--json", "data", "import", p, "--adjusted", "--timeframe", "1d")  # 2 bars only guess a bar size
    assert r.exit_code == 0, r.output
    r = mqc("--json", "data", "list")
    assert "Adj Close" in json.loads(r.stdout)["entries"][0]["adjustment"]


def test_replace_after_readjustment_rescales_and_reports(tmp_path):
    old = tmp_path / "old.csv"
    old.write_text(
        HEADER + "".join(f"2021-02-{d:02d},{100 + d},{102 + d},{98 + d},{101 + d},1000\n" for d in range(1, 21))
    )
    assert mqc("data", "import", old, "--symbol", "XYZ").exit_code == 0
    assert mqc("data", "import", old, "--symbol", "QQQ").exit_code == 0
    new = tmp_path / "new.csv"  # days 11-25 re-delivered at half the price (a dividend/split re-adjustment)
    new.write_text(
        HEADER
        + "".join(
            f"2021-02-{d:02d},{(100 + d) / 2},{(102 + d) / 2},{(98 + d) / 2},{(101 + d) / 2},1000\n"
            for d in range(11, 26)
        )
    )
    r = mqc("--json", "data", "import", new, "--symbol", "XYZ", "--replace")
    assert r.exit_code == 0, r.output
    item = json.loads(r.stdout)["symbols"][0]
    assert (item["status"], item["added"], item["overwritten"], item["rescaled"]) == ("replaced", 5, 10, 10)
    assert item["price_factor"] == pytest.approx(0.5)
    r = mqc("data", "import", new, "--symbol", "QQQ", "--replace")
    assert r.exit_code == 0 and "re-adjusted QQQ's history" in flat(r.output), r.output
    r = mqc("data", "export", "XYZ", "--out", tmp_path / "out.csv")
    assert r.exit_code == 0, r.output
    first = (tmp_path / "out.csv").read_text().splitlines()[1].split(",")
    assert float(first[4]) == pytest.approx(51.0)  # day 1's close 102, now on the new basis


# --- new-user walkthrough fixes -------------------------------------------------------------------


@pytest.fixture
def hourly_syn():
    r = mqc("data", "synth", "--assets", 1, "--bars", 60, "--timeframe", "1H")
    assert r.exit_code == 0, r.output
    return "SYN0"


@pytest.mark.parametrize("alias", ["1H", "1hr", "hourly", "60min"])
def test_timeframe_aliases_are_normalised(hourly_syn, alias):
    r = mqc("--json", "data", "list", "--timeframe", alias)
    assert r.exit_code == 0, r.output
    assert [e["symbol"] for e in json.loads(r.stdout)["entries"]] == [hourly_syn]


@pytest.mark.parametrize(
    "cmd", [("list",), ("show", "SYN0"), ("export", "SYN0"), ("remove", "SYN0"), ("synth",), ("fetch", "AAPL")]
)
def test_invalid_timeframe_is_an_error_everywhere(hourly_syn, cmd):
    r = mqc("data", *cmd, "--timeframe", "3x")
    assert r.exit_code == 2  # a bad flag value (README: exit 2), with the valid spellings
    assert "hint: valid bar sizes: 1m, 5m, 15m" in r.stderr
    assert "invalid timeframe '3x'" in flat(r.stderr)


def test_ambiguous_capital_m_is_refused(hourly_syn):
    r = mqc("data", "list", "--timeframe", "1M")
    assert r.exit_code == 2 and "ambiguous" in r.stderr  # a bad flag value


def test_list_at_an_empty_timeframe_names_the_stored_ones(hourly_syn):
    r = mqc("data", "list", "--timeframe", "daily")
    assert r.exit_code == 0 and "no symbols at 1d (stored timeframes: 1h)" in flat(r.stdout)


def test_show_at_the_wrong_timeframe_says_where_the_symbol_is(hourly_syn):
    r = mqc("data", "show", "syn0", "--timeframe", "1d")
    assert r.exit_code == 1
    assert "SYN0 is stored at 1h, not 1d" in r.stderr and "pass --timeframe 1h" in r.stderr
    assert "did you mean" not in r.stderr


def test_export_to_a_new_folder_writes_inside_it(hourly_syn, tmp_path):
    target = tmp_path / "exports"
    r = mqc("--json", "data", "export", hourly_syn, "--to", "parquet", "--out", f"{target}/")
    assert r.exit_code == 0, r.output
    assert target.is_dir() and json.loads(r.stdout)["path"] == str(target / "SYN0_1h.parquet")
    assert (target / "SYN0_1h.parquet").is_file()
    # An existing folder without the trailing separator means the same.
    r = mqc("data", "export", hourly_syn, "--out", str(target))
    assert r.exit_code == 0 and (target / "SYN0_1h.csv").is_file()


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "x.csv", "--on-error", "fix"),
        ("export", "SYN0", "--to", "xlsx"),
        ("fetch", "AAPL", "--provider", "bloomberg"),
    ],
)
def test_bad_choices_are_usage_errors_listing_the_choices(args):
    r = mqc("data", *args)
    assert r.exit_code == 2, r.output
    assert "is not one of" in unboxed(r.output)


def test_repairs_are_counted_per_row(tmp_path):
    f = tmp_path / "MESSY.csv"
    # Row 3: high below the close AND low above the open -> two repaired fields, one row.
    f.write_text(
        HEADER + "2020-01-01,10,11,9,10.5,100\n2020-01-02,10,9.5,10.6,10.8,100\n2020-01-03,10.8,11,10.5,10.9,100\n"
    )
    r = mqc("--json", "data", "validate", str(f), "--on-error", "repair")
    assert r.exit_code == 0, r.output
    rep = json.loads(r.stdout)["symbols"][0]["report"]
    assert rep["repaired"] == 1 and rep["repaired_fields"] == 2
    r = mqc("data", "validate", str(f), "--on-error", "repair")
    assert "fixed rows" in flat(r.stdout)


def test_show_prints_max_drawdown_as_a_positive_loss(hourly_syn):
    r = mqc("--json", "data", "show", hourly_syn)
    dd = json.loads(r.stdout)["stats"]["max_drawdown"]
    assert dd > 0
    text = flat(mqc("data", "show", hourly_syn).stdout)
    assert f"max drawdown {100 * dd:.2f}%" in text and "max drawdown -" not in text


def test_synth_rejects_a_bad_start():
    r = mqc("data", "synth", "--start", "notadate")
    assert r.exit_code == 1 and "--start: invalid date/time 'notadate'" in r.stderr
