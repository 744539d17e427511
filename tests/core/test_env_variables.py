"""A misspelt ``MQC_*`` variable is an error with a did-you-mean (README: unknown keys are errors),
checked by every command (and when a config is resolved); every variable mqc reads is known, and
``mqc --help`` is not affected."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app
from mqc.core import config
from mqc.core.errors import ConfigError
from mqc.core.train.config import DMTrainConfig

runner = CliRunner()


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("MQC_DM_STEPZ", "MQC_DM_STEPS"),  # unknown field
        ("MQC_TRAIN_STEPZ", "MQC_DM_STEPS"),  # unknown field of the old table name: the current name suggested
        ("MQC_TRIAN_STEPS", "MQC_DM_STEPS"),  # unknown table
        ("MQC_DATA_DIRR", "MQC_DATA_DIR"),  # a path variable
        ("MQC_MARKET_SLIPAGE_BPS", "MQC_MARKET_SLIPPAGE_BPS"),
    ],
)
def test_unknown_variable_is_an_error_with_did_you_mean(name, suggestion):
    with pytest.raises(ConfigError, match=f"unknown environment variable {name}; did you mean '{suggestion}'") as err:
        config.resolve(DMTrainConfig, env={name: "5"})
    assert err.value.hint and f"unset {name}" in err.value.hint


def test_known_variables_resolve():
    env = {
        "MQC_DM_STEPS": "7",
        "MQC_DATA_DIR": "/x",
        "MQC_PROFILE": "p",
        "MQC_DEBUG": "1",
        "MQC_KRONOS_MODEL_TOKENIZER_PATH": "/t",
        "MQC_FORECAST_EVAL_ORIGINS": "3",
    }
    assert config.resolve(DMTrainConfig, env=env).value.steps == 7


def test_every_variable_the_source_reads_is_known():
    """A new MQC_* variable read anywhere in src/ must be known here, or setting it would be refused."""
    src = Path(config.__file__).resolve().parents[1]
    names = set()
    for path in src.rglob("*.py"):
        names |= set(re.findall(r"[\"'](MQC_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text(encoding="utf-8")))
    assert names and names <= config.known_variables(), names - config.known_variables()


def test_cli_refuses_a_misspelt_setting_but_help_still_works(monkeypatch):
    monkeypatch.setenv("MQC_DM_STEPZ", "5")
    res = runner.invoke(app, ["train", "dm", "--steps", "3"])
    assert res.exit_code == 1, res.output
    assert (
        res.stderr.splitlines()[0] == "error: unknown environment variable MQC_DM_STEPZ; did you mean 'MQC_DM_STEPS'?"
    )
    assert runner.invoke(app, ["--help"]).exit_code == 0
    assert runner.invoke(app, ["train", "dm", "--help"]).exit_code == 0


def test_old_table_variable_still_resolves_with_a_note():
    """``[train]`` was renamed ``[dm]``: MQC_TRAIN_* still sets it, with a note naming the new variable."""
    notes: list[str] = []
    config.set_note_sink(notes.append)
    try:
        res = config.resolve(DMTrainConfig, env={"MQC_TRAIN_STEPS": "7"})
    finally:
        config.set_note_sink(None)
    assert res.value.steps == 7 and res.sources["steps"] == "env:MQC_TRAIN_STEPS"
    assert notes == ["MQC_TRAIN_STEPS is deprecated; use MQC_DM_STEPS"]
    assert "MQC_TRAIN_STEPS" in config.known_variables() and "MQC_TRAIN_STEPS" not in config.known_variables(old=False)


def test_old_table_variable_without_a_sink_is_a_future_warning():
    config.set_note_sink(None)  # (a CLI test earlier in the session may have set the CLI's)
    with pytest.warns(FutureWarning, match="MQC_TRAIN_LR is deprecated; use MQC_DM_LR"):
        assert config.resolve(DMTrainConfig, env={"MQC_TRAIN_LR": "0.01"}).value.lr == 0.01


def test_old_and_new_name_of_one_setting_together_is_an_error():
    with pytest.raises(ConfigError, match="both MQC_DM_STEPS and MQC_TRAIN_STEPS are set") as err:
        config.resolve(DMTrainConfig, env={"MQC_DM_STEPS": "7", "MQC_TRAIN_STEPS": "8"})
    assert "unset MQC_TRAIN_STEPS" in err.value.hint


@pytest.mark.parametrize(
    "argv",
    [["data", "list"], ["data", "show", "AAPL"], ["profile", "list"], ["--json", "data", "list"]],
)
def test_every_command_refuses_a_misspelt_variable(monkeypatch, argv):
    # The issue: MQC_DATA_DIRR=/x was ignored by data list/show (only settings resolution checked).
    monkeypatch.setenv("MQC_DATA_DIRR", "/x")
    res = runner.invoke(app, argv)
    assert res.exit_code == 1, res.output
    first = res.stderr.splitlines()[0]
    assert first == "error: unknown environment variable MQC_DATA_DIRR; did you mean 'MQC_DATA_DIR'?"
    for help_argv in (["data", "--help"], ["data", "list", "--help"], ["data", "show", "-h"]):
        assert runner.invoke(app, help_argv).exit_code == 0, help_argv


def test_help_with_a_misspelt_variable_imports_nothing_heavy(tmp_path):
    import json
    import os
    import subprocess
    import sys

    check = (
        "import json, sys; import mqc.cli; from typer.testing import CliRunner; "
        "r = CliRunner().invoke(mqc.cli.app, ['data', 'list', '--help']); "
        "print(json.dumps([r.exit_code, sorted(m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules)]))"
    )
    env = {**os.environ, "MQC_DATA_DIRR": "/x"}
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60, env=env, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [0, []]
