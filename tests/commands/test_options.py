"""Shared option declarations (``commands/_options.py``): every option that declares a config field
names a real one, each flag is declared once, and the old spellings and table names still work with
a one-line note."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import typer.main
from typer.testing import CliRunner

import mqc.commands
from mqc.cli import app
from mqc.commands import _options as o
from mqc.core.config import known_tables, table_name

runner = CliRunner()
COMMANDS = Path(mqc.commands.__file__).parent
SOURCES = [*COMMANDS.rglob("*.py"), COMMANDS.parent / "cli.py"]


def leaf_commands(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        return [(" ".join(path), cmd)]
    return [leaf for name, sub in subs.items() for leaf in leaf_commands(sub, (*path, name))]


def test_every_declared_option_sets_a_real_config_field():
    tables = known_tables()
    checked = 0
    for path, cmd in leaf_commands():
        for name, binding in o.bindings(cmd).items():
            assert name in {p.name for p in cmd.params}, (path, name)
            for target in binding.targets:
                table, field = target.split(".", 1)
                assert table in tables, (path, binding.name, target)
                assert field in {f.name for f in dataclasses.fields(tables[table])}, (path, binding.name, target)
                checked += 1
    assert checked > 60  # train dm/sharpe/kronos, backtest, data fetch


def test_train_commands_bind_the_table_of_their_trainer():
    from mqc.core.train.harness import trainer_spec

    for path, cmd in leaf_commands():
        if path.startswith("train "):
            kind = path.split()[1]
            spec = trainer_spec(kind)
            tables = {t.split(".")[0] for b in o.bindings(cmd).values() for t in b.targets}
            # every trainer also has the metric sinks of the shared [log] table (--tensorboard, --wandb)
            want = {"data", "market", "log", table_name(spec.config), *map(table_name, spec.extra_tables)}
            assert tables == want, path


def test_cost_bps_sets_what_the_market_model_says_it_sets():
    from mqc.core.market.config import MarketConfig

    assert set(o.COST_BPS.sets) == {f"market.{k}" for k in MarketConfig.cost_fields(cost_bps=1.0)}
    assert o.SLIPPAGE_BPS.sets == "market." + next(iter(MarketConfig.cost_fields(slippage_bps=1.0)))


def _declared_flags() -> list[tuple[str, str]]:
    """(flag spelling, file) of every option declaration (``typer.Option(...)`` / ``Flag((...), ...)``)."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name == "Option":
                args = node.args
            elif name == "Flag" and node.args and isinstance(node.args[0], ast.Tuple):
                args = node.args[0].elts
            else:
                continue
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.startswith("-"):
                    # long spellings: a short one (-s, -n) may mean different things in different commands
                    found.extend((sp, path.name) for sp in arg.value.split("/") if sp.startswith("--"))
    return found


# Same spelling, different meaning per command, so one declaration would be wrong: a forecast grid of
# settings vs a sweep file; a forecast score (crps, mae) vs a trainer's val metric; continue a training
# run (a run directory) vs trade again after a kill switch halted the loop (a switch).
PER_COMMAND = {"--grid", "--metric", "--resume"}


def test_each_flag_is_declared_once():
    declared = _declared_flags()
    spellings = [s for s, _ in declared if s not in PER_COMMAND]
    assert [s for s in set(spellings) if spellings.count(s) > 1] == []
    assert ("--timeframe", "_options.py") in declared and ("--enable-shorting", "_options.py") in declared


def test_timeframe_is_declared_once_and_no_command_matches_locals_by_name():
    texts = {path: path.read_text(encoding="utf-8") for path in SOURCES}
    assert [p.name for p, t in texts.items() if '"--timeframe"' in t] == ["_options.py"]
    assert sum(t.count('"--timeframe"') for t in texts.values()) == 1
    assert not [p.name for p, t in texts.items() if "locals()" in t]


def test_one_shorting_spelling_and_the_old_one_is_hidden():
    for path, cmd in leaf_commands():
        for param in cmd.params:
            if param.name == "enable_shorting":
                assert (param.opts, param.secondary_opts) == (["--enable-shorting"], ["--long-only"]), path
    text = runner.invoke(app, ["backtest", "--help"], env={"COLUMNS": "300"}).output
    assert "--long-only" in text and "--no-shorting" not in text


def test_old_spelling_with_resume_is_named_by_its_current_spelling(tmp_path):
    res = runner.invoke(app, ["train", "dm", "--resume", str(tmp_path), "--no-shorting", "--steps", "3"])
    assert res.exit_code == 1
    assert res.stderr.splitlines()[0] == "note: --no-shorting is deprecated; use --long-only"
    assert "cannot be changed: --enable-shorting/--long-only, --steps" in " ".join(res.stderr.split())


def _profile(tmp_path: Path, name: str, body: str) -> None:
    d = tmp_path / "mqc-config" / "profiles"
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{name}.toml").write_text(body)


def test_old_train_table_still_resolves_dm_with_a_note(tmp_path):
    import json

    _profile(tmp_path, "old", "[train]\nsteps = 7\n")
    res = runner.invoke(app, ["--profile", "old", "profile", "show", "--table", "dm", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["tables"]["dm"]["steps"] == {"value": 7, "source": "profile:old"}
    assert res.stderr.strip() == "note: profile old: table [train] is now [dm]; rename it ([train] is still read)"
    # --table under the old name shows the same table
    res = runner.invoke(app, ["--profile", "old", "profile", "show", "--table", "train", "--json"])
    assert res.exit_code == 0 and list(json.loads(res.stdout)["tables"]) == ["dm"]


def test_profile_set_moves_the_old_table_to_its_new_name(tmp_path):
    _profile(tmp_path, "old", "[train]\nsteps = 7\n")
    res = runner.invoke(app, ["profile", "set", "-n", "old", "train.lr", "0.01"])
    assert res.exit_code == 0, res.output
    assert "note: profile old: table [train] is renamed [dm] (its keys are kept)" in res.stderr
    text = (tmp_path / "mqc-config" / "profiles" / "old.toml").read_text()
    assert "[train]" not in text and "\nsteps = 7" in text and "\nlr = 0.01" in text.split("[dm]")[1].split("\n[")[0]


def test_old_and_new_table_in_one_profile_is_an_error(tmp_path):
    _profile(tmp_path, "both", "[dm]\nsteps = 7\n[train]\nlr = 0.01\n")
    res = runner.invoke(app, ["--profile", "both", "profile", "show", "--table", "dm"])
    assert res.exit_code == 1
    assert "both [dm] and [train] (its old name) are present" in res.stderr


def test_old_env_name_reaches_the_dm_table_with_a_note(monkeypatch):
    monkeypatch.setenv("MQC_TRAIN_STEPS", "9")
    res = runner.invoke(app, ["profile", "show", "--table", "dm", "--json"])
    assert res.exit_code == 0, res.output
    assert '"source": "env:MQC_TRAIN_STEPS"' in res.stdout
    assert res.stderr.strip() == "note: MQC_TRAIN_STEPS is deprecated; use MQC_DM_STEPS"
