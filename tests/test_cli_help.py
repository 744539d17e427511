"""``--help`` shows flags as flags (no ``<bool>``), variadic arguments by their item type (no
``<list[str]>``), literal ``[market]`` in help texts, and the config defaults of train, backtest and
forecast options that default to "not given" on the command line."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from mqc.cli import app
from mqc.commands._help import CONFIG_OPTIONS
from mqc.core.config import known_tables

runner = CliRunner()
WIDE = {"COLUMNS": "400", "TERMINAL_WIDTH": "400"}


def command_paths(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        return [path]
    return [path, *(p for name, sub in subs.items() for p in command_paths(sub, (*path, name)))]


def help_text(*path: str) -> str:
    res = runner.invoke(app, [*path, "--help"], env=WIDE)
    assert res.exit_code == 0, res.output
    return res.output


def option_row(text: str, option: str) -> str:
    """The help row of ``option`` with the box and padding removed."""
    rows = [" ".join(line.strip("│ ").split()) for line in text.splitlines()]
    return next(row for row in rows if row.startswith(option + " "))


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "mqc")
def test_no_bool_or_list_types_in_any_help(path):
    text = help_text(*path)
    assert "<bool>" not in text and "list[" not in text, text


def test_flags_take_no_value_and_lists_show_their_item_type():
    assert option_row(help_text(), "--json") == "--json Print results as JSON on stdout."
    assert option_row(help_text("data", "import"), "--replace").startswith("--replace Overwrite stored bars")
    assert "paths... <str>" in " ".join(help_text("data", "import").split())


def test_train_dm_help_shows_the_config_defaults():
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.config import DMTrainConfig

    text = help_text("train", "dm")
    cfg, market = DMTrainConfig(), MarketConfig()
    assert option_row(text, "--lookback").endswith(f"[default: {cfg.lookback}]")
    assert option_row(text, "--steps").endswith(f"[default: {cfg.steps}]")
    assert option_row(text, "--objective").endswith(f"[default: {cfg.objective}]")
    assert option_row(text, "--slippage-bps").endswith(f"[default: {market.slippage_bps}]")
    assert option_row(text, "--compile").endswith(f"[default: {'--compile' if cfg.compile else '--no-compile'}]")
    assert option_row(text, "--enable-shorting").endswith(
        f"[default: {'--enable-shorting' if market.allow_short else '--long-only'}]"
    )
    assert "[default:" not in option_row(text, "--symbols")  # no config default: nothing invented


def test_backtest_and_forecast_help_show_defaults():
    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.forecast.config import EvalConfig, ForecastConfig

    assert option_row(help_text("backtest"), "--window-length").endswith(f"[default: {BacktestConfig().window_length}]")
    assert option_row(help_text("forecast", "run"), "--horizon").endswith(
        f"[default: {ForecastConfig().prediction_length}]"
    )
    horizons = ",".join(map(str, EvalConfig().horizons))
    assert option_row(help_text("forecast", "eval"), "--horizon").endswith(f"[default: {horizons}]")
    assert option_row(help_text("forecast", "eval"), "--horizon").startswith(
        "--horizon <int,...> "
    )  # a comma-separated list
    assert option_row(help_text("train", "dm"), "--symbols").startswith("--symbols -s <str,...> ")


def test_square_brackets_in_help_texts_are_kept():
    assert "the profile's [market] allow_short" in " ".join(help_text("backtest").replace("│", " ").split())


def test_config_option_specs_name_real_commands_tables_and_fields():
    """The table of config-backed options cannot drift from the commands and dataclasses it describes."""
    tables = known_tables()
    paths = {" ".join(p) for p in command_paths()}
    root = typer.main.get_command(app)
    unused = {param for _, renames in CONFIG_OPTIONS.values() for param in renames}
    for path, (names, renames) in CONFIG_OPTIONS.items():
        assert path in paths, path
        cmd = root
        for part in path.split():
            cmd = cmd.commands[part]
        unused -= {p.name for p in cmd.params}
        assert set(names) <= set(tables), names
        for targets in renames.values():
            for target in (targets,) if isinstance(targets, str) else targets:
                table, field = target.split(".")
                assert field in {f.name for f in dataclasses.fields(tables[table])}, (path, target)
    assert not unused, unused  # a renamed option no command has any more


def test_help_into_a_closed_pipe_is_not_an_internal_error(tmp_path):
    import mqc

    env = {**os.environ, "PYTHONPATH": str(Path(mqc.__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mqc", "train", "dm", "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    proc.stdout.close()  # like `| head -1` that has already exited
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr


@pytest.mark.parametrize(
    "message",
    [
        "WARNING: 12 of the 40 evaluated bars are in-sample",
        "warning: 12 of the 40 evaluated bars are in-sample",
        "12 of the 40 evaluated bars are in-sample",
    ],
)
def test_a_warning_has_one_prefix(capsys, message):
    from mqc.commands._console import warn

    warn(message)
    assert capsys.readouterr().err.strip() == "warning: 12 of the 40 evaluated bars are in-sample"
