"""Usage errors (a bad choice, an unknown option or command, a missing argument) are one ``error:``
line plus one ``hint:`` line pointing at ``--help``, exit 2, in a terminal and in a pipe alike
(docs/data.md); Typer's boxed, 80-column usage panel never appears."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "error", "command"),
    [
        (
            ["data", "import", "x.csv", "--on-error", "bogus"],
            "error: invalid value for '--on-error': 'bogus' is not one of 'fail', 'repair', 'drop'.",
            "data import",
        ),
        (["data", "import", "x.csv", "--bogus"], "error: no such option: --bogus", "data import"),
        (["data", "lst"], "error: no such command 'lst'. Did you mean 'list'?", "data"),
        (["data", "import"], "error: missing argument 'paths'.", "data import"),
        (["--bogus-root-option", "data", "list"], "error: no such option: --bogus-root-option", ""),
        (
            ["forecast", "run", "SYN0", "--attn", "flash"],
            "error: invalid value for --attn: 'flash' is not one of sdpa, eager",
            "forecast run",
        ),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(args, error, command):
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 2, res.stderr
    assert lines[0].startswith(error), lines[0]
    assert lines[1].startswith("hint: try '") and lines[1].endswith(f"{' ' + command if command else ''} --help'"), (
        lines[1]
    )
    assert "╭" not in res.output and "Usage:" not in res.output


def test_no_arguments_still_print_the_group_help():
    res = runner.invoke(app, ["data"])
    assert "Usage:" in res.output and "import" in res.output and "error:" not in res.output


def test_usage_error_in_a_pipe_is_not_wrapped(tmp_path):
    """stderr is a pipe and COLUMNS=80: the error stays one line however long the bad value is."""
    import mqc

    src = str(Path(mqc.__file__).resolve().parents[1])
    bad = "definitely-not-a-valid-choice-" * 4
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": src, "MQC_DATA_DIR": str(tmp_path / "d")}
    out = subprocess.run(
        [sys.executable, "-m", "mqc", "data", "import", "x.csv", "--on-error", bad],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert len(lines) == 2 and len(lines[0]) > 80 and bad in lines[0], out.stderr
    assert lines[0].startswith("error: invalid value for '--on-error'")
    assert lines[1] == "hint: try 'python -m mqc data import --help'"


@pytest.mark.parametrize("args", [["--json", "true", "data", "list"], ["data", "list", "--json", "true"]])
def test_a_value_after_a_flag_says_flags_take_no_value(args):
    res = runner.invoke(app, args)
    assert res.exit_code == 2
    assert (
        res.stderr.splitlines()[1] == "hint: flags take no value: write the flag alone (e.g. --json, not --json true)"
    )


BAD_TIMEFRAME_FLAGS = [
    ["data", "list", "--timeframe", "1x"],
    ["data", "show", "SYN0", "-t", "1x"],
    ["data", "verify", "-t", "1x"],
    ["forecast", "SYN0", "-t", "1x"],
    ["forecast", "eval", "SYN0", "-t", "1x"],
    ["train", "dm", "-t", "1x"],
]


@pytest.mark.parametrize("argv", BAD_TIMEFRAME_FLAGS, ids=lambda a: " ".join(a[:2]))
def test_a_bad_timeframe_flag_is_a_usage_error_with_the_valid_spellings(argv):
    # The issue: exit 1 with no hint; README promises exit 2 for a bad flag value.
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 2, res.output
    lines = res.stderr.splitlines()
    assert lines[0].startswith("error: invalid timeframe '1x'")
    assert lines[1].startswith("hint: valid bar sizes: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w")


@pytest.mark.parametrize(
    ("var", "argv"),
    [("MQC_DATA_TIMEFRAME", ["train", "dm"]), ("MQC_FORECAST_TIMEFRAME", ["forecast", "SYN0"])],
)
def test_the_same_bad_timeframe_from_the_environment_stays_exit_1(monkeypatch, var, argv):
    monkeypatch.setenv(var, "1x")
    res = CliRunner().invoke(app, argv)
    assert res.exit_code == 1, res.output
    assert res.stderr.splitlines()[0].startswith("error: invalid timeframe '1x'")
    assert "hint: valid bar sizes" in res.stderr
