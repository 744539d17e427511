"""``mqc sweep train KIND`` through the real CLI: table, JSON, bad keys before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
SWEEP = """
features.vol_windows = [5]
features.momentum_windows = [5, 10]
features.volume_window = 5
dm.steps = 4
dm.eval_interval = 2
dm.batch_windows = 2
dm.rollout_groups = 2
dm.horizon = 8
dm.lookback = [16, 24]
"""


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    write_synth_csv(SynthSpec(n_assets=2, n_bars=300, seed=3), tmp_path / "bars")
    return tmp_path / "bars"


def test_sweep_train_dm_prints_the_table_and_the_test_figures_once(data_root, tmp_path) -> None:
    grid = tmp_path / "sweep.toml"
    grid.write_text(SWEEP)
    args = ["sweep", "train", "dm", "--grid", str(grid), "--data-root", str(data_root), "--max-concurrent", "1"]
    res = runner.invoke(app, [*args, "--sweep-dir", str(tmp_path / "sd")])
    assert res.exit_code == 0, res.output
    assert "chosen" in res.output and "TEST (once" in res.output and "for 2 configurations tried" in res.output
    assert "mqc backtest --checkpoint" in res.output
    again = runner.invoke(app, ["--json", *args, "--sweep-dir", str(tmp_path / "sd")])
    doc = json.loads(again.stdout)
    assert doc["counts"]["skipped"] == 2 and doc["counts"]["done"] == 0 and doc["test"]["reused"] is True
    assert doc["n_configs"] == 2 and doc["chosen"]["config"] == doc["test"]["config"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("dm.lokback = [16, 24]\n", "unknown key dm.lokback; did you mean 'lookback'"),
        ("dm.lookback = [16, 'x']\n", "expected an integer"),
        ("", "the sweep is empty"),
    ],
)
def test_bad_sweep_files_exit_1_before_anything_runs(body, message, data_root, tmp_path) -> None:
    grid = tmp_path / "bad.toml"
    grid.write_text(body)
    res = runner.invoke(
        app,
        [
            "sweep",
            "train",
            "dm",
            "--grid",
            str(grid),
            "--data-root",
            str(data_root),
            "--sweep-dir",
            str(tmp_path / "sd"),
        ],
    )
    assert res.exit_code == 1 and message in res.output
    assert not (tmp_path / "sd").exists()


def test_an_unknown_trainer_names_the_known_ones(tmp_path) -> None:
    grid = tmp_path / "g.toml"
    grid.write_text("seed = [0]\n")
    res = runner.invoke(app, ["sweep", "train", "dn", "--grid", str(grid)])
    assert res.exit_code == 1 and "unknown trainer 'dn'" in res.output and "dm" in res.output


def test_ctrl_c_prints_the_table_so_far_and_exits_130(data_root, tmp_path, monkeypatch) -> None:
    from mqc.core.sweep import runner as sweep_runner

    real = sweep_runner.run_sweep

    def interrupted(req, progress=None):
        class Stop:
            def __getattr__(self, name):
                return getattr(progress, name)

            def advance(self, n=1, **fields):
                if n:
                    raise KeyboardInterrupt

        return real(req, progress=Stop())

    monkeypatch.setattr(sweep_runner, "run_sweep", interrupted)
    grid = tmp_path / "sweep.toml"
    grid.write_text(SWEEP)
    res = runner.invoke(
        app,
        ["sweep", "train", "dm", "--grid", str(grid), "--data-root", str(data_root), "--max-concurrent", "1"]
        + ["--sweep-dir", str(tmp_path / "sd")],
    )
    assert res.exit_code == 130
    assert "1 configurations, 1 trials run now" in res.output and "chosen" in res.output
    assert "no test figures: the sweep was interrupted" in res.output and "re-run the same command" in res.output


def test_an_optuna_storage_that_does_not_work_is_one_clear_error(data_root, tmp_path) -> None:
    pytest.importorskip("optuna")
    grid = tmp_path / "sweep.toml"
    grid.write_text(SWEEP)
    res = runner.invoke(
        app,
        ["sweep", "train", "dm", "--grid", str(grid), "--data-root", str(data_root), "--samples", "2"]
        + ["--storage", "nosuchdb://host/x", "--sweep-dir", str(tmp_path / "sd")],
    )
    assert res.exit_code == 1 and "Optuna storage nosuchdb://host/x" in res.output and "--storage" in res.output
