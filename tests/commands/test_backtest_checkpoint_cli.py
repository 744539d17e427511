"""``mqc backtest --checkpoint`` through the CLI: bare best.pt/latest.pt, explicit --timeframe,
--allow-mismatch as a labelled transfer test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
TINY = dict(lookback=8, horizon=4, batch_windows=2, rollout_groups=2, hidden_size=4, steps=2, eval_interval=2)
BT = ["--no-plots", "--no-trades", "--window-length", "16", "--stride", "16", "--json"]


@pytest.fixture
def catalog_runs(synth, tmp_path: Path) -> dict[str, Path]:
    """SYN0..SYN3 stored at 1h and 1d; an hourly run on SYN0,SYN1 and a newer daily one on SYN0,SYN1."""
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.api import train_dm
    from mqc.core.train.config import DMTrainConfig

    cat = Catalog()
    for tf in ("1h", "1d"):
        for sym, df in synth(n_assets=4, n_bars=600, seed=5, timeframe=tf).items():
            cat.write(sym, df, source="test", timeframe=tf)
    runs = {}
    for tf in ("1h", "1d"):
        res = train_dm(DataConfig(symbols=("SYN0", "SYN1"), timeframe=tf), MarketConfig(), DMTrainConfig(**TINY))
        runs[tf] = res.run_dir
        os.utime(res.best_checkpoint, (1e9 + len(runs), 1e9 + len(runs)))  # the daily run is the newest
        os.utime(res.latest_checkpoint, (1e9 + len(runs), 1e9 + len(runs)))
    return runs


def test_bare_best_pt_resolves_to_the_current_run_else_the_newest(catalog_runs, tmp_path, monkeypatch):
    hourly, daily = catalog_runs["1h"], catalog_runs["1d"]
    for where in (hourly, hourly / "checkpoints"):  # the run directory and a folder inside it
        monkeypatch.chdir(where)
        res = runner.invoke(app, ["backtest", "--checkpoint", "best.pt", "--out", str(tmp_path / "bt"), *BT])
        assert res.exit_code == 0, res.output
        rep = json.loads(res.stdout)
        assert rep["source"]["path"] == str(hourly / "checkpoints" / "best.pt")
        assert rep["source"]["name"] == f"dm {hourly.name}"  # the run id, never "dm best"
        assert rep["source"]["timeframe"] == "1h"
    assert "best.pt: using" not in res.stderr  # inside checkpoints/ best.pt is simply the file here
    monkeypatch.chdir(hourly)
    res = runner.invoke(app, ["backtest", "-c", "latest.pt", "--out", str(tmp_path / "bt"), *BT])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["source"]["path"] == str(hourly / "checkpoints" / "latest.pt")
    assert f"latest.pt: using {hourly / 'checkpoints' / 'latest.pt'}" in " ".join(res.stderr.split())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = runner.invoke(app, ["backtest", "--checkpoint", "best.pt", "--out", str(tmp_path / "bt")])
    assert res.exit_code == 0, res.output
    assert f"dm {daily.name}: test segment" in res.stdout  # the table's title is the run id
    err = " ".join(res.stderr.split())
    assert f"best.pt: using {daily / 'checkpoints' / 'best.pt'} (the newest run" in err


def test_bare_best_pt_without_runs_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["backtest", "--checkpoint", "best.pt"])
    assert res.exit_code == 1 and "checkpoint best.pt not found here, and no training runs" in " ".join(
        res.output.split()
    )


def test_explicit_timeframe_is_honoured_and_allow_mismatch_is_a_labelled_transfer_test(catalog_runs, tmp_path):
    hourly, daily = catalog_runs["1h"], catalog_runs["1d"]
    # -t 1d equals the default bar size but was given: not silently replaced by the run's 1h
    res = runner.invoke(app, ["backtest", "-c", str(hourly), "-t", "1d", *BT])
    assert res.exit_code == 1
    assert "trained on 1h bars but the data has 1d bars" in " ".join(res.output.split())
    res = runner.invoke(
        app, ["backtest", "-c", str(hourly), "-t", "1d", "--allow-mismatch", "--out", str(tmp_path / "a"), *BT]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["data"]["timeframe"] == "1d" and rep["source"]["transfer"]["trained_timeframe"] == "1h"
    assert "transfer test" in " ".join(res.stderr.split()) and "1d bars instead of 1h" in " ".join(res.stderr.split())
    # other symbols of the same count: mapped in order, with the mapping in the report
    res = runner.invoke(app, ["backtest", "-c", str(daily), "-s", "SYN2,SYN3", *BT])
    assert res.exit_code == 1 and "--allow-mismatch" in res.output
    res = runner.invoke(
        app, ["backtest", "-c", str(daily), "-s", "SYN2,SYN3", "--allow-mismatch", "--out", str(tmp_path / "b"), *BT]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["source"]["transfer"]["symbols"] == {"SYN0": "SYN2", "SYN1": "SYN3"}
    assert "SYN0->SYN2, SYN1->SYN3" in " ".join(res.stderr.split())
    # without -t the checkpoint's own bar size is used
    res = runner.invoke(app, ["backtest", "-c", str(hourly), "--out", str(tmp_path / "c"), *BT])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["data"]["timeframe"] == "1h"


@pytest.fixture
def two_histories(synth, tmp_path: Path) -> Path:
    """AIG stored 2015-01-01 + 500 days, CVX 300 days; a weights file with a row per AIG date."""
    from mqc.core.data.catalog import Catalog

    frames = synth(n_assets=2, n_bars=500, seed=9)
    cat = Catalog()
    cat.write("AIG", frames["SYN0"], source="test", timeframe="1d")
    cat.write("CVX", frames["SYN1"].iloc[:300], source="test", timeframe="1d")
    ts = frames["SYN0"]["timestamp"]
    path = tmp_path / "w.csv"
    path.write_text("timestamp,AIG,CVX\n" + "".join(f"{t:%Y-%m-%d},0.5,0.5\n" for t in ts))
    return path


def test_weights_rows_past_the_bars_are_dropped_with_a_warning(two_histories, tmp_path):
    res = runner.invoke(app, ["backtest", "-w", str(two_histories), *BT])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["source"]["rows_outside_bars"] == 200 and rep["source"]["rows"] == 300
    err = " ".join(res.stderr.split())
    assert "w.csv: 200 of 500 weight rows lie outside the 1d bars (2015-01-01T00:00:00 .. 2015-10-27T00:00:00)" in err
    assert "200 from 2015-10-28T00:00:00 to 2016-05-14T00:00:00" in err
    # a row inside the bars that is not a bar stays an error
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "timestamp,AIG,CVX\n2015-01-05T00:00:00,0.5,0.5\n2015-01-06T13:30:00,0.5,0.5\n2030-01-01T00:00:00,0.5,0.5\n"
    )
    res = runner.invoke(app, ["backtest", "-w", str(bad), *BT])
    assert res.exit_code == 1 and "1 row timestamp(s) match no 1d bar" in " ".join(res.output.split())


def test_weights_symbol_not_stored_says_did_you_mean(two_histories):
    res = runner.invoke(app, ["backtest", "-w", str(two_histories), "--symbols", "AIG,CVXX", *BT])
    assert res.exit_code == 1
    text = " ".join(res.output.split())
    assert "'CVXX' is not in the catalog" in text and "did you mean 'CVX'" in text
    res = runner.invoke(app, ["backtest", "-w", str(two_histories), "--symbols", "AIG", *BT])
    assert res.exit_code == 1 and "column(s) CVX are not among the loaded symbols AIG" in " ".join(res.output.split())
