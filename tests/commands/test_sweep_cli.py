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


def test_sweep_backtest_strategy_chooses_on_val_and_labels_the_test_with_the_configurations_tried(
    data_root, tmp_path
) -> None:
    grid = tmp_path / "orders.toml"
    grid.write_text('orders.grid_points = 3\norders.fit_window = [0, 60]\nforecast.model = ["naive", "drift"]\n')
    args = ["sweep", "backtest", "--strategy", "maxdiff", "--model", "naive", "--grid", str(grid)]
    args += ["--data-root", str(data_root), "--max-concurrent", "1", "--sweep-dir", str(tmp_path / "bt")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "forecast.model" in res.output and "orders.fit_window" in res.output
    assert "for 4 configurations tried" in res.output and "test report:" in res.output
    doc = json.loads((tmp_path / "bt" / "sweep.json").read_text())
    assert doc["kind"] == "backtest" and doc["base"]["orders"]["strategy"] == "maxdiff"
    assert doc["base"]["forecast"]["model"] == "naive"
    # the test figures came from the backtest report, on the test split, with n_trials = 4
    test = json.loads((tmp_path / "bt" / "test.json").read_text())
    report = json.loads((Path(test["runs"][0]["report"]) / "report.json").read_text())
    assert report["segment"]["split"] == "test" and test["n_configs"] == 4
    bad = runner.invoke(app, [*args[:-1], str(tmp_path / "bt2"), "--pruner", "asha"])
    assert bad.exit_code == 2  # a backtest sweep has no --pruner


def test_sweep_forecast_selects_the_lowest_error_and_saves_the_choice_only_when_asked(synth, tmp_path) -> None:
    from mqc.core.data.catalog import Catalog
    from mqc.core.forecast import hyperparams

    cat = Catalog()
    for s, df in synth(n_assets=2, n_bars=260, seed=4, weekdays_only=True).items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    grid = tmp_path / "ewma.toml"
    grid.write_text("forecast.ewma_lambda = [0.8, 0.97]\n")
    hp = tmp_path / "hp"
    args = ["sweep", "forecast", "--model", "ewma-vol", "--symbols", "syn0,syn1", "--grid", str(grid)]
    args += ["--origins", "60", "--horizon", "1,3", "--max-concurrent", "1", "--hyperparams-dir", str(hp)]
    res = runner.invoke(app, [*args, "--sweep-dir", str(tmp_path / "fc")])
    assert res.exit_code == 0, res.output
    assert "selected on val crps (lower is better)" in res.output and "forecast.ewma_lambda" in res.output
    assert "no deflated Sharpe ratio; 2 configurations tried" in res.output and "x 2 symbol(s)" in res.output
    assert not hp.exists()  # nothing written to hyperparams/ unless --save-best
    doc = json.loads((tmp_path / "fc" / "sweep.json").read_text())
    assert doc["kind"] == "forecast" and doc["base"]["forecast_eval"]["origins"] == 60
    assert doc["base"]["forecast_eval"]["horizons"] == [1, 3] and doc["base"]["data"]["symbols"] == ["SYN0", "SYN1"]
    out = runner.invoke(app, ["--json", *args, "--sweep-dir", str(tmp_path / "fc"), "--save-best"])
    assert out.exit_code == 0, out.output
    result = json.loads(out.stdout)
    assert result["lower_is_better"] and result["test"]["reused"] and len(result["saved"]) == 2
    lam = result["chosen"]["overrides"]["forecast.ewma_lambda"]
    assert hyperparams.find("ewma-vol", "SYN0", "1d", str(hp)).config["ewma_lambda"] == lam
    # a bad --metric is a usage error; a typo in the sweep file one line with a did-you-mean, exit 1
    bad = runner.invoke(app, [*args, "--metric", "sharpe", "--sweep-dir", str(tmp_path / "x")])
    assert bad.exit_code == 2
    grid.write_text("forecast.ewma_lamda = [0.8, 0.97]\n")
    typo = runner.invoke(app, [*args, "--sweep-dir", str(tmp_path / "y")])
    assert typo.exit_code == 1 and "did you mean 'ewma_lambda'" in typo.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
