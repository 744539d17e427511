"""``mqc --help`` stays fast: no torch / pandas at import, answers quickly (freqtrade-style check)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

CHECK = """
import json, sys, time
t = time.perf_counter()
import mqc.cli
from typer.testing import CliRunner
r = CliRunner().invoke(mqc.cli.app, ["--help"])
r2 = CliRunner().invoke(mqc.cli.app, ["data", "--help"])
heavy = sorted(m for m in ("torch", "pandas", "numpy", "pyarrow", "exchange_calendars") if m in sys.modules)
print(json.dumps({"exit": [r.exit_code, r2.exit_code], "heavy": heavy, "seconds": time.perf_counter() - t}))
"""


def test_help_imports_no_torch_or_pandas():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["exit"] == [0, 0]
    assert "torch" not in data["heavy"] and "pandas" not in data["heavy"], data["heavy"]
    assert "exchange_calendars" not in data["heavy"], data["heavy"]


def test_help_answers_quickly():
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mqc", "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t
    assert out.returncode == 0 and "data" in out.stdout
    print(f"mqc --help: {elapsed:.2f}s")
    # Typically ~0.3 s; generous bound because the CI machine is shared.
    assert elapsed < 2.0


def test_errors_are_one_line_when_stderr_is_not_a_terminal(tmp_path):
    """A long error (path + did-you-mean) must not be hard-wrapped at 80 columns in logs / CI."""
    import os

    env = {
        **os.environ,
        "MQC_CONFIG_DIR": str(tmp_path / "c" / ("x" * 60)),
        "MQC_DATA_DIR": str(tmp_path / "d"),
        "COLUMNS": "80",
    }
    out = subprocess.run(
        [sys.executable, "-m", "mqc", "--profile", "reserch-with-a-long-name", "data", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    assert (
        len(lines) == 2
        and lines[0].startswith("error: profile 'reserch-with-a-long-name' not found at")
        and len(lines[0]) > 80
    ), out.stderr


def test_bad_dates_never_print_a_traceback(tmp_path):
    import os

    env = {**os.environ, "MQC_CONFIG_DIR": str(tmp_path / "c"), "MQC_DATA_DIR": str(tmp_path / "d"), "MQC_DEBUG": "0"}
    out = subprocess.run(
        [sys.executable, "-m", "mqc", "backtest", "--checkpoint", "latest", "--start", "2017-13-45"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr  # a bad --start value: usage error
    assert "backtest.start: invalid date/time '2017-13-45'" in out.stderr
