"""``mqc forecast select --by pnl``: per symbol, the model whose forecasts trade best on val."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mqc.cli import app
from mqc.core.data.catalog import Catalog
from mqc.core.forecast import hyperparams

runner = CliRunner()


@pytest.fixture
def catalog(synth):
    cat = Catalog()
    for s, df in synth(n_assets=2, n_bars=400, seed=0, weekdays_only=True).items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    return cat


def test_select_by_pnl_writes_best_files_with_every_candidate(catalog, tmp_path):
    args = ["forecast", "select", "SYN0", "SYN1", "--models", "naive,drift,ewma-vol", "--by", "pnl"]
    args += ["--strategy", "highlow", "--hyperparams-dir", str(tmp_path), "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    for s in ("SYN0", "SYN1"):
        hp = hyperparams.find(hyperparams.BEST, s, "1d", str(tmp_path))
        assert hp is not None and hp.path == tmp_path / "best" / f"{s}.1d.json"
        scores = hp.validation["scores"]
        assert set(scores) == {"naive", "drift", "ewma-vol"} and hp.validation["by"] == "pnl"
        assert hp.model == max(scores, key=lambda m: scores[m]["total_return"])
        assert set(hp.test["scores"]) == set(scores)  # test figures recorded for every candidate
        assert data["choices"][s]["model"] == hp.model
    # the trading loop reads these: --model best resolves to the chosen model
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "best", "--hyperparams-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output


def test_by_and_metric_must_agree(catalog):
    r = runner.invoke(app, ["forecast", "select", "SYN0", "--by", "crps", "--metric", "mae"])
    assert r.exit_code == 2 and "disagree" in r.output
    r = runner.invoke(app, ["forecast", "select", "SYN0", "--by", "profit"])
    assert r.exit_code == 2


def test_backtest_with_model_best_reads_each_symbols_choice(catalog, tmp_path):
    hp = str(tmp_path / "hp")
    r = runner.invoke(
        app, ["forecast", "select", "SYN0", "SYN1", "--models", "naive,drift", "--by", "pnl", "--hyperparams-dir", hp]
    )
    assert r.exit_code == 0, r.output
    chosen = {s: hyperparams.find(hyperparams.BEST, s, "1d", hp).model for s in ("SYN0", "SYN1")}
    env = {"MQC_FORECAST_HYPERPARAMS_DIR": hp}
    args = ["backtest", "--strategy", "maxdiff", "--model", "best", "--symbols", "SYN0,SYN1", "--no-plots", "--json"]
    r = runner.invoke(app, args, env=env)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["source"]["models"] == chosen
    r = runner.invoke(app, ["backtest", "--strategy", "maxdiff", "--model", "best", "--symbols", "SYN0", "--no-plots"])
    assert r.exit_code == 1 and "no model-selection record for SYN0" in r.output
