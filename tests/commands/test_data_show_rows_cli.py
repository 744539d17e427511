"""``mqc data show`` names a bar by the same row (file line) as ``mqc data import``, and gap
warnings say they measure clock time."""

from __future__ import annotations

import json

import numpy as np
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
HEADER = "timestamp,open,high,low,close,volume\n"


def mqc(*args):
    return runner.invoke(app, list(map(str, args)))


def _hourly_file(path, spike_at: int, gap_at: int, n: int = 120):
    """Hourly 24/7 bars with one isolated spike at bar ``spike_at`` and a 5-hour hole before bar
    ``gap_at`` (bar k is on file line k + 2)."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    close[spike_at] *= 1.5
    hours = np.arange(n) + np.where(np.arange(n) >= gap_at, 4, 0)
    lines = [HEADER]
    for k in range(n):
        t = np.datetime64("2021-01-01T00:00") + np.timedelta64(int(hours[k]), "h")
        c = close[k]
        lines.append(f"{t}:00Z,{c},{c * 1.001},{c * 0.999},{c},{100 + k}\n")
    path.write_text("".join(lines))
    return path, lines


def test_show_and_import_name_the_same_row(tmp_path):
    path, lines = _hourly_file(tmp_path / "ROWS.csv", spike_at=50, gap_at=80)
    r = mqc("--json", "data", "import", path)
    assert r.exit_code == 0, r.output
    issues = json.loads(r.stdout)["symbols"][0]["report"]["issues"]
    spike_row = next(i["row"] for i in issues if i["kind"] == "spike")
    gap_row = next(i["row"] for i in issues if i["kind"] == "gap")
    assert (spike_row, gap_row) == (52, 82)  # the file lines of bars 50 and 80 (header = line 1)
    assert lines[gap_row - 1].startswith("2021-01-04T12:00:00Z")  # lines[0] is line 1

    r = mqc("--json", "data", "show", "ROWS")
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert f"row {spike_row}, field 'close': isolated spike" in " ".join(s["stats"]["warnings"])
    [gap] = s["gaps"]
    assert gap["row"] == gap_row and gap["before"] == "2021-01-04 12:00:00"
    assert gap["detail"] == "gap of 5h (5 x 1h) before this row"
    assert s["stats"]["largest_gap_bars"] == 5.0 and s["stats"]["largest_gap"] == "5h"

    text = " ".join(mqc("data", "show", "ROWS").stdout.split())
    assert f"row {spike_row}, field 'close'" in text
    assert "gaps 1 (largest 5h = 5 x 1h of clock time)" in text
    assert "gap before 2021-01-04 12:00:00: gap of 5h (5 x 1h) before this row" in text
