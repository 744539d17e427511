"""``mqc forecast``: default-run routing, subcommands, JSON, files, exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mqc.cli import app
from mqc.core.data.catalog import Catalog

runner = CliRunner()


@pytest.fixture
def catalog(synth):
    cat = Catalog()
    for s, df in synth(n_assets=3, n_bars=400, seed=0, weekdays_only=True).items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    return cat


def test_default_run_and_explicit_run_agree(catalog):
    a = runner.invoke(app, ["forecast", "SYN0", "SYN1", "--model", "ewma-vol", "--horizon", "3", "--json"])
    b = runner.invoke(app, ["forecast", "run", "SYN0,SYN1", "--model", "ewma-vol", "--horizon", "3", "--json"])
    assert a.exit_code == 0, a.output
    da, db = json.loads(a.stdout), json.loads(b.stdout)
    assert da == db and set(da) == {"SYN0", "SYN1"}
    assert len(da["SYN0"]["timestamps"]) == 3 and da["SYN0"]["quantile_levels"] == [0.1, 0.5, 0.9]


def test_table_out_and_plot(catalog, tmp_path):
    out, png = tmp_path / "f.parquet", tmp_path / "f.png"
    r = runner.invoke(app, ["forecast", "SYN2", "--model", "naive", "--out", str(out), "--plot", str(png)])
    assert r.exit_code == 0, r.output
    assert "SYN2" in r.stdout and "%" in r.stdout
    import pandas as pd

    assert len(pd.read_parquet(out)) == 3 * 7 * 4
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_eval_json_and_saved_results(catalog, tmp_path):
    path = tmp_path / "eval.json"
    r = runner.invoke(app, ["forecast", "eval", "SYN0", "SYN1", "SYN2", "--models", "naive,ewma-vol", "--origins", "30", "--horizon", "1,5", "--out", str(path), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert {(x["model"], x["horizon"]) for x in res["results"]} == {("naive", 1), ("naive", 5), ("ewma-vol", 1), ("ewma-vol", 5)}
    assert json.loads(path.read_text())["n_origins"] == 30


def test_select_then_forecast_best(catalog, tmp_path):
    r = runner.invoke(app, ["forecast", "select", "SYN0", "--models", "naive,ewma-vol", "--origins", "40", "--horizon", "1", "--hyperparams-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "best" / "SYN0.json").is_file()
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "best", "--hyperparams-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["SYN0"]["model"] == "ewma-vol"


def test_tune_baseline_writes_file(catalog, tmp_path):
    r = runner.invoke(app, ["forecast", "tune", "SYN1", "--model", "ewma-vol", "--grid", "ewma_lambda=0.9,0.97", "--origins", "40", "--horizon", "1", "--hyperparams-dir", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ewma-vol" / "SYN1.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "NOPE", "--model", "naive"], "not in the catalog"),
        (["forecast", "SYN0", "--model", "naiv"], "did you mean 'naive'"),
        (["forecast", "SYN0", "--model", "chronos2"], "hf download amazon/chronos-2"),
        (["forecast", "SYN0", "--model", "naive", "--out", "x.txt"], ".csv or .parquet"),
        (["forecast", "tune", "SYN0", "--model", "ewma-vol", "--grid", "lamda=1"], "unknown key"),
    ],
)
def test_domain_errors_exit_1(catalog, args, message):
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert message in " ".join(r.output.split())


def test_usage_error_exit_2_and_help_lists_subcommands():
    assert runner.invoke(app, ["forecast", "SYN0", "--horizon", "x"]).exit_code == 2
    r = runner.invoke(app, ["forecast", "--help"])
    assert r.exit_code == 0 and all(c in r.output for c in ("run", "eval", "tune", "select"))


def test_malformed_hyperparams_file_is_reported(catalog, tmp_path):
    d = tmp_path / "ewma-vol"
    d.mkdir()
    (d / "SYN0.json").write_text(json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"windw": 5}}))
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "ewma-vol", "--hyperparams-dir", str(tmp_path)])
    assert r.exit_code == 1 and "did you mean 'window'" in " ".join(r.output.split())


def test_kronos_with_model_and_tokenizer_paths_end_to_end(catalog, tmp_path):
    from mqc.core.forecast.kronos.presets import save_random

    model_dir, tok_dir = save_random(tmp_path / "kronos", "tiny", seed=3)
    args = ["forecast", "SYN0", "SYN1", "--model", "kronos", "--model-path", str(model_dir), "--tokenizer-path", str(tok_dir),
            "--horizon", "3", "--context-length", "64", "--quantiles", "0.1,0.5,0.9", "--json"]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert set(res) == {"SYN0", "SYN1"}
    f = res["SYN0"]
    assert f["model"] == "kronos" and len(f["timestamps"]) == 3
    assert f["config"]["tokenizer_path"] == str(tok_dir) and f["config"]["model_id"] == str(model_dir)
    close = [f["quantiles"]["close"][q] for q in ("0.1", "0.5", "0.9")]
    assert all(lo <= mid <= hi for lo, mid, hi in zip(*close, strict=True))
    assert runner.invoke(app, args).stdout == r.stdout  # seeded sampler: same forecast twice
    # the tokenizer flag is really used: a wrong directory is a clean domain error naming it
    bad_args = [str(tmp_path / "missing-tok") if a == str(tok_dir) else a for a in args]
    bad = runner.invoke(app, bad_args)
    assert bad.exit_code == 1 and "missing-tok" in " ".join(bad.output.split())
