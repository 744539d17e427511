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
    r = runner.invoke(
        app,
        [
            "forecast",
            "eval",
            "SYN0",
            "SYN1",
            "SYN2",
            "--models",
            "naive,ewma-vol",
            "--origins",
            "30",
            "--horizon",
            "1,5",
            "--out",
            str(path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert {(x["model"], x["horizon"]) for x in res["results"]} == {
        ("naive", 1),
        ("naive", 5),
        ("ewma-vol", 1),
        ("ewma-vol", 5),
    }
    assert json.loads(path.read_text())["n_origins"] == 30


def test_select_then_forecast_best(catalog, tmp_path):
    r = runner.invoke(
        app,
        [
            "forecast",
            "select",
            "SYN0",
            "--models",
            "naive,ewma-vol",
            "--origins",
            "40",
            "--horizon",
            "1",
            "--hyperparams-dir",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "best" / "SYN0.1d.json").is_file()
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "best", "--hyperparams-dir", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["SYN0"]["model"] == "ewma-vol"


def test_tune_baseline_writes_file(catalog, tmp_path):
    r = runner.invoke(
        app,
        [
            "forecast",
            "tune",
            "SYN1",
            "--model",
            "ewma-vol",
            "--grid",
            "ewma_lambda=0.9,0.97",
            "--origins",
            "40",
            "--horizon",
            "1",
            "--hyperparams-dir",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ewma-vol" / "SYN1.1d.json").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "NOPE", "--model", "naive"], "not in the catalog"),
        (["forecast", "SYN0", "--model", "chronos2"], "hf download amazon/chronos-2"),
        (["forecast", "SYN0", "--model", "naive", "--out", "x.txt"], ".csv or .parquet"),
    ],
)
def test_domain_errors_exit_1(catalog, args, message):
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    assert message in " ".join(r.output.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["forecast", "SYN0", "--model", "nave"], "did you mean 'naive'"),
        (["forecast", "run", "SYN0", "--model", "nave"], "did you mean 'naive'"),
        (["forecast", "eval", "SYN0", "--models", "naive,ewma-vo"], "did you mean 'ewma-vol'"),
        (["forecast", "select", "SYN0", "--models", "nave,ewma-vol"], "did you mean 'naive'"),
        (["forecast", "tune", "SYN0", "--model", "ewma-vo"], "did you mean 'ewma-vol'"),
        (["forecast", "select", "SYN0", "--models", "best,naive"], "'best' is not a model to compare"),
        (["forecast", "tune", "SYN0", "--model", "ewma-vol", "--grid", "lamda=1"], "unknown key"),
        (["forecast", "eval"], "name at least one symbol"),
        (["forecast", "eval", "--models", "naive"], "mqc forecast eval AAPL"),
        (["forecast", "select", "--models", "naive,ewma-vol"], "mqc forecast select AAPL"),
        (["forecast", "run"], "no symbols to forecast"),
    ],
)
def test_bad_flag_values_and_missing_symbols_are_usage_errors(catalog, args, message):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    text = " ".join(r.output.split())
    assert message in text and "internal error" not in text


def test_unknown_model_from_the_environment_stays_exit_1(catalog, monkeypatch):
    monkeypatch.setenv("MQC_FORECAST_MODEL", "nave")
    r = runner.invoke(app, ["forecast", "SYN0"])
    assert r.exit_code == 1
    assert "did you mean 'naive'" in " ".join(r.output.split()) and "MQC_FORECAST_MODEL" in r.output


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
    args = [
        "forecast",
        "SYN0",
        "SYN1",
        "--model",
        "kronos",
        "--model-path",
        str(model_dir),
        "--tokenizer-path",
        str(tok_dir),
        "--horizon",
        "3",
        "--context-length",
        "64",
        "--quantiles",
        "0.1,0.5,0.9",
        "--json",
    ]
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


def _lambda_of(stdout: str, symbol: str) -> float:
    return json.loads(stdout)[symbol]["config"]["ewma_lambda"]


def test_tuned_settings_apply_the_same_way_in_run_select_and_best(catalog, tmp_path):
    hp = ["--hyperparams-dir", str(tmp_path)]
    tuned = {"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.9, "window": 60}}
    (tmp_path / "ewma-vol").mkdir()
    tuned_path = tmp_path / "ewma-vol" / "SYN0.1d.json"
    tuned_path.write_text(json.dumps(tuned))
    direct = runner.invoke(app, ["forecast", "SYN0", "--model", "ewma-vol", *hp, "--json"])
    assert direct.exit_code == 0, direct.output
    assert _lambda_of(direct.stdout, "SYN0") == 0.9
    r = runner.invoke(
        app,
        ["forecast", "select", "SYN0", "SYN1", "--models", "naive,ewma-vol", "--origins", "40", "--horizon", "1", *hp],
    )
    assert r.exit_code == 0, r.output
    assert "ewma-vol/SYN0.1d.json" in r.stdout  # the settings column names the tuned file
    rec = json.loads((tmp_path / "best" / "SYN0.1d.json").read_text())
    assert rec["model"] == "ewma-vol" and rec["config"]["ewma_lambda"] == 0.9
    assert rec["metadata"]["settings_file"] == str(tuned_path)
    assert (
        json.loads((tmp_path / "best" / "SYN1.1d.json").read_text())["metadata"]["settings_file"] is None
    )  # no tuned file
    best = runner.invoke(app, ["forecast", "SYN0", "--model", "best", *hp, "--json"])
    assert best.exit_code == 0, best.output
    b, d = json.loads(best.stdout)["SYN0"], json.loads(direct.stdout)["SYN0"]
    assert b["config"] == d["config"] and b["quantiles"] == d["quantiles"]  # best == the chosen model, same settings
    assert b["hyperparams_file"] == str(tuned_path) and b["selection_file"] == str(tmp_path / "best" / "SYN0.1d.json")
    table = runner.invoke(app, ["forecast", "SYN0", "--model", "best", *hp])
    assert f"SYN0 settings: {tuned_path}" in table.stdout and "best/SYN0.1d.json" in table.stdout


def test_eval_applies_tuned_settings_and_records_them(catalog, tmp_path):
    (tmp_path / "ewma-vol").mkdir()
    (tmp_path / "ewma-vol" / "SYN0.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.9}})
    )
    r = runner.invoke(
        app,
        [
            "forecast",
            "eval",
            "SYN0",
            "SYN1",
            "--models",
            "ewma-vol",
            "--origins",
            "20",
            "--horizon",
            "1",
            "--hyperparams-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    per = res["configs"]["ewma-vol"]["per_symbol"]
    assert per["SYN0"]["ewma_lambda"] == 0.9 and per["SYN1"]["ewma_lambda"] == 0.94
    assert res["settings_files"]["ewma-vol"] == {"SYN0": str(tmp_path / "ewma-vol" / "SYN0.json"), "SYN1": None}


def test_eval_warns_when_fewer_origins_than_requested(catalog, tmp_path):
    r = runner.invoke(
        app,
        [
            "forecast",
            "eval",
            "SYN0",
            "--models",
            "naive",
            "--origins",
            "5000",
            "--horizon",
            "1",
            "--json",
            "--out",
            str(tmp_path / "e.json"),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["requested_origins"] == 5000 and res["n_origins"] < 400
    assert f"used {res['n_origins']}" in " ".join(r.stderr.split()) and "--origins 5000" in r.stderr
    assert (
        "warning"
        not in runner.invoke(
            app, ["forecast", "eval", "SYN0", "--models", "naive", "--origins", "30", "--horizon", "1"]
        ).stderr
    )


def test_horizon_above_the_maximum_is_a_clear_error(catalog):
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "naive", "--horizon", "100000"])
    assert r.exit_code == 2  # a bad flag value: usage error
    text = " ".join(r.output.split())
    assert "maximum of 10,000 bars" in text and "100,000" in text
    assert runner.invoke(app, ["forecast", "eval", "SYN0", "--models", "naive", "--horizon", "1,20000"]).exit_code == 2


def test_crypto_prices_print_in_fixed_notation(synth):
    from mqc.commands._forecast_view import fmt_price

    assert fmt_price(49590.1234) == "49,590.12" and fmt_price(49612.5) != fmt_price(49590.1234)
    assert fmt_price(1.084231) == "1.08423" and fmt_price(0.0000123456) == "0.0000123456"
    assert fmt_price(0.0) == "0.00" and fmt_price(float("nan")) == "-"
    cat = Catalog()
    df = synth(n_assets=1, n_bars=300, seed=5)["SYN0"]
    for c in ("open", "high", "low", "close"):
        df[c] = df[c] * 500.0  # ~50,000: a BTC-sized price
    cat.write("BTCUSDT", df, source="synth", timeframe="1d", asset_class="crypto")
    r = runner.invoke(app, ["forecast", "BTCUSDT", "--model", "ewma-vol", "--horizon", "2"])
    assert r.exit_code == 0, r.output
    assert "e+" not in r.stdout
    f = json.loads(
        runner.invoke(app, ["forecast", "BTCUSDT", "--model", "ewma-vol", "--horizon", "2", "--json"]).stdout
    )["BTCUSDT"]
    assert (
        fmt_price(f["quantiles"]["close"]["0.1"][0]) in r.stdout
        and fmt_price(f["quantiles"]["close"]["0.9"][0]) in r.stdout
    )


def test_invalid_timeframe_is_reported_before_symbol_lookup(catalog, monkeypatch):
    r = runner.invoke(app, ["forecast", "SYN0", "-t", "hurly"])
    assert r.exit_code == 2  # a bad flag value
    text = " ".join(r.output.split())
    assert "invalid timeframe 'hurly'" in text and "not in the catalog" not in text
    calls = []
    real = Catalog.find

    def spy(self, symbol, timeframe=None):
        calls.append((symbol, timeframe))
        return real(self, symbol, timeframe)

    monkeypatch.setattr(Catalog, "find", spy)
    r = runner.invoke(app, ["forecast", "SYN0", "SYN1", "--model", "naive", "-t", "1d", "--json"])
    assert r.exit_code == 0, r.output
    # the catalog's own lookup (and so its "stored at <timeframe>" messages) decides for each symbol
    assert {c[0] for c in calls} == {"SYN0", "SYN1"} and {c[1] for c in calls} == {"1d"}


@pytest.mark.parametrize(
    ("args", "allowed"),
    [
        (["forecast", "select", "SYN0", "--metric", "crsp"], "crps"),
        (["forecast", "tune", "SYN0", "--model", "naive", "--metric", "rank_ic"], "hit_rate"),
        (["forecast", "SYN0", "--dtype", "fp16"], "bfloat16"),
        (["forecast", "SYN0", "--attn", "flash"], "eager"),
    ],
)
def test_fixed_choice_options_are_usage_errors(catalog, args, allowed):
    r = runner.invoke(app, args)
    assert r.exit_code == 2, r.output
    assert allowed in r.output and "is not one of" in " ".join(r.output.split())


def test_cli_metric_lists_match_the_core():
    from mqc.commands import _options as o
    from mqc.commands import forecast as cmd
    from mqc.core.forecast import config, scoring

    assert o.FORECAST_METRICS == config.METRICS == tuple(scoring.LOWER_IS_BETTER)
    assert o.PER_SYMBOL_METRICS == config.PER_SYMBOL_METRICS == scoring.PER_SYMBOL_METRICS
    assert cmd._DTYPES == config.DTYPE_CHOICES


@pytest.mark.parametrize("dtype", ["fp32", "float32", "auto"])
def test_dtype_accepts_train_and_torch_spellings(catalog, dtype):
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "naive", "--dtype", dtype, "--json"])
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)) == {"SYN0"}


@pytest.mark.parametrize("dtype", ["bf16", "bfloat16"])
def test_bf16_on_cpu_is_an_error_naming_the_fix(catalog, dtype, monkeypatch):
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "naive", "--dtype", dtype])
    assert r.exit_code == 2  # given as a flag: a usage error
    assert "needs a CUDA device" in " ".join(r.output.split()) and "--dtype fp32" in r.output
    monkeypatch.setenv("MQC_FORECAST_DTYPE", dtype)  # the same value from the environment: exit 1
    r = runner.invoke(app, ["forecast", "SYN0", "--model", "naive"])
    assert r.exit_code == 1
    assert "needs a CUDA device" in " ".join(r.output.split()) and "--dtype fp32" in r.output


def test_unparseable_end_date_is_a_one_line_error(tmp_path):
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.synth import SynthSpec, synth_ohlcv

    Catalog().write("SYN0", synth_ohlcv(SynthSpec(n_assets=1, n_bars=200))["SYN0"], source="test")
    result = CliRunner().invoke(app, ["forecast", "SYN0", "--model", "naive", "--end", "notadate"])
    assert result.exit_code == 1
    assert "--end" in result.output and "notadate" in result.output
    assert "internal error" not in result.output and "Traceback" not in result.output


def test_metrics_print_in_one_unit_across_eval_tune_and_select(catalog, tmp_path):
    """CRPS (a loss on returns) is a percentage in every table, as eval prints it; JSON keeps the fraction."""
    hp = ["--hyperparams-dir", str(tmp_path)]
    common = ["--origins", "40", "--horizon", "1"]
    tune_args = [
        "forecast",
        "tune",
        "SYN0",
        "--model",
        "ewma-vol",
        "--grid",
        "ewma_lambda=0.9,0.97",
        "--metric",
        "crps",
        *common,
        *hp,
    ]
    score = json.loads(runner.invoke(app, [*tune_args, "--json"]).stdout)["test"]["score"]
    table = runner.invoke(app, tune_args)
    assert table.exit_code == 0, table.output
    assert f"{100 * score:.3f}%" in table.stdout and "crps %" in table.stdout
    sel_args = ["forecast", "select", "SYN0", "--models", "naive,ewma-vol", "--metric", "crps", *common, *hp]
    choice = json.loads(runner.invoke(app, [*sel_args, "--json"]).stdout)["choices"]["SYN0"]
    table = runner.invoke(app, sel_args)
    assert f"{100 * choice['validation'][choice['model']]:.3f}%" in table.stdout and "validation crps %" in table.stdout
    ev_args = ["forecast", "eval", "SYN0", "--models", "ewma-vol", *common, "--out", str(tmp_path / "e.json")]
    row = json.loads(runner.invoke(app, [*ev_args, "--json"]).stdout)["results"][0]
    table = runner.invoke(app, ev_args)
    assert f"{100 * row['crps']:.3f}%" in table.stdout and "crps %" in table.stdout and "mase" in table.stdout


@pytest.fixture
def two_bar_sizes(catalog, synth):
    """SYN0 stored daily (from ``catalog``) and hourly (24/7 hourly bars)."""
    hourly = synth(n_assets=1, n_bars=400, seed=9, timeframe="1h")["SYN0"]
    catalog.write("SYN0", hourly, source="synth", timeframe="1h", asset_class="crypto")
    return catalog


def test_hyperparams_are_keyed_by_symbol_and_bar_size(two_bar_sizes, tmp_path):
    hp = ["--hyperparams-dir", str(tmp_path)]
    common = ["--origins", "40", "--horizon", "1", *hp]
    r = runner.invoke(app, ["forecast", "tune", "SYN0", "--model", "ewma-vol", "--grid", "ewma_lambda=0.9", *common])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ewma-vol" / "SYN0.1d.json").is_file() and not (tmp_path / "ewma-vol" / "SYN0.json").exists()
    daily = json.loads(runner.invoke(app, ["forecast", "SYN0", "--model", "ewma-vol", *hp, "--json"]).stdout)["SYN0"]
    hourly = json.loads(
        runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "ewma-vol", *hp, "--json"]).stdout
    )["SYN0"]
    assert daily["config"]["ewma_lambda"] == 0.9 and daily["hyperparams_file"].endswith("SYN0.1d.json")
    assert hourly["config"]["ewma_lambda"] == 0.94 and hourly["hyperparams_file"] is None  # daily tuning stays daily
    # a selection at one bar size does not overwrite, nor stand in for, the other
    assert runner.invoke(app, ["forecast", "select", "SYN0", "-t", "1h", "--models", "naive", *common]).exit_code == 0
    assert (
        runner.invoke(app, ["forecast", "select", "SYN0", "-t", "1d", "--models", "ewma-vol", *common]).exit_code == 0
    )
    assert {p.name for p in (tmp_path / "best").iterdir()} == {"SYN0.1h.json", "SYN0.1d.json"}
    best_h = json.loads(runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "best", *hp, "--json"]).stdout)[
        "SYN0"
    ]
    best_d = json.loads(runner.invoke(app, ["forecast", "SYN0", "--model", "best", *hp, "--json"]).stdout)["SYN0"]
    assert best_h["model"] == "naive" and best_h["selection_file"].endswith("best/SYN0.1h.json")
    assert best_d["model"] == "ewma-vol" and best_d["config"]["ewma_lambda"] == 0.9


def test_old_layout_files_apply_only_to_their_own_bar_size(two_bar_sizes, tmp_path):
    hp = ["--hyperparams-dir", str(tmp_path)]
    (tmp_path / "ewma-vol").mkdir()
    (tmp_path / "best").mkdir()
    # an old file without a timeframe was written for the default, daily bars
    (tmp_path / "ewma-vol" / "SYN0.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.9}})
    )
    (tmp_path / "best" / "SYN0.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"timeframe": "1d"}})
    )
    daily = json.loads(runner.invoke(app, ["forecast", "SYN0", "--model", "best", *hp, "--json"]).stdout)["SYN0"]
    assert daily["model"] == "ewma-vol" and daily["config"]["ewma_lambda"] == 0.9
    assert daily["selection_file"] == str(tmp_path / "best" / "SYN0.json")
    hourly = json.loads(
        runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "ewma-vol", *hp, "--json"]).stdout
    )["SYN0"]
    assert hourly["config"]["ewma_lambda"] == 0.94 and hourly["hyperparams_file"] is None
    r = runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "best", *hp])
    text = " ".join(r.output.split())
    assert r.exit_code == 1 and "no model-selection record for SYN0 at 1h" in text and "select SYN0 -t 1h" in text
    # an old file that says 1h applies to hourly bars only; a new-layout file wins over it
    (tmp_path / "ewma-vol" / "SYN0.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.97, "timeframe": "60m"}})
    )
    hourly = json.loads(
        runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "ewma-vol", *hp, "--json"]).stdout
    )["SYN0"]
    assert hourly["config"]["ewma_lambda"] == 0.97
    (tmp_path / "ewma-vol" / "SYN0.1h.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.91, "timeframe": "1h"}})
    )
    hourly = json.loads(
        runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "ewma-vol", *hp, "--json"]).stdout
    )["SYN0"]
    assert hourly["config"]["ewma_lambda"] == 0.91
    # a new-layout file whose config names another bar size is refused, naming both
    (tmp_path / "ewma-vol" / "SYN0.1h.json").write_text(
        json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"timeframe": "1d"}})
    )
    r = runner.invoke(app, ["forecast", "SYN0", "-t", "1h", "--model", "ewma-vol", *hp])
    assert r.exit_code == 1 and "the file name says 1h" in " ".join(r.output.split())


def test_eval_and_select_symbols_whose_histories_do_not_overlap(synth, tmp_path):
    f = synth(n_assets=2, n_bars=600, seed=21, weekdays_only=True)
    cat = Catalog()
    cat.write("OLD", f["SYN0"].iloc[:250], source="synth", timeframe="1d", asset_class="equity")
    cat.write("NEW", f["SYN1"].iloc[300:], source="synth", timeframe="1d", asset_class="equity")
    args = [
        "forecast",
        "eval",
        "OLD",
        "NEW",
        "--models",
        "naive,ewma-vol",
        "--origins",
        "100",
        "--horizon",
        "1",
        "--out",
        str(tmp_path / "e.json"),
    ]
    r = runner.invoke(app, args)
    assert r.exit_code == 0, r.output
    text = " ".join(r.stdout.split())
    assert "per-symbol origins: OLD 100" in text and "NEW 100" in text and "per symbol" in text
    import re

    assert all(
        re.search(rf"{m}\s*│\s*{s}\s*│\s*100\b", r.stdout) for m in ("naive", "ewma-vol") for s in ("OLD", "NEW")
    )  # per-symbol rows
    d = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    per = d["origins"]["per_symbol"]
    assert d["origins"]["mode"] == "per-symbol" and per["OLD"]["last"] < per["NEW"]["first"]
    assert {(x["symbol"], x["model"]) for x in d["per_symbol"]} == {
        (s, m) for s in ("OLD", "NEW") for m in ("naive", "ewma-vol")
    }
    r = runner.invoke(
        app,
        [
            "forecast",
            "select",
            "OLD",
            "NEW",
            "--models",
            "naive,ewma-vol",
            "--origins",
            "100",
            "--horizon",
            "1",
            "--hyperparams-dir",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "each symbol's own origins" in " ".join(r.stdout.split()) and (tmp_path / "best" / "NEW.1d.json").is_file()
    r = runner.invoke(app, [*args, "--joint-origins"])
    text = " ".join(r.output.split())
    assert (
        r.exit_code == 1
        and "no common origin for OLD, NEW" in text
        and "drop it to score each symbol on its own" in text
    )
    r = runner.invoke(app, [*args[:-4], "--origins", "300", "--horizon", "1", "--json"])
    assert r.exit_code == 0 and "OLD used 218" in " ".join(r.stderr.split())  # 250 bars - 31 of context - 1 after


def test_every_option_named_in_forecast_messages_exists():
    """Hints and messages must not send a user to an option no command has (e.g. the old ``--min-context``)."""
    import re
    from pathlib import Path

    from typer.main import get_command

    import mqc

    options: set[str] = set()

    def walk(cmd) -> None:
        for p in getattr(cmd, "params", []):
            options.update(getattr(p, "opts", []))
            options.update(getattr(p, "secondary_opts", []))
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(get_command(app))
    src = Path(mqc.__file__).parent
    files = [
        *(src / "core" / "forecast").rglob("*.py"),
        src / "commands" / "forecast.py",
        src / "commands" / "_forecast_view.py",
    ]
    named = {}
    for f in files:
        for opt in re.findall(r"(?<![\w-])--[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?![\w-])", f.read_text(encoding="utf-8")):
            named.setdefault(opt, f.name)
    external = {"--local-dir", "--help"}  # hf download's own option; Typer's help
    missing = {o: f for o, f in named.items() if o not in options and o not in external}
    assert not missing, f"options named in messages that no command has: {missing}"


def test_bound_errors_of_forecast_settings_carry_a_hint(catalog, monkeypatch):
    # The issue: `mqc forecast XOM --context-length 10` said "must be >= min_context (32)" and nothing more.
    r = runner.invoke(app, ["forecast", "SYN0", "--context-length", "10"])
    assert r.exit_code == 2  # a bad flag value
    assert r.stderr.splitlines() == [
        "error: forecast.context_length (10) must be >= min_context (32)",
        "hint: pass a larger --context-length (at least 32), or lower min_context to 10 ([forecast] min_context in a"
        " profile, or MQC_FORECAST_MIN_CONTEXT=10)",
    ]
    cases = {
        "MQC_FORECAST_MIN_CONTEXT": ("1", "MQC_FORECAST_MIN_CONTEXT=2"),
        "MQC_FORECAST_WINDOW": ("3", "MQC_FORECAST_WINDOW=250"),
        "MQC_FORECAST_EWMA_LAMBDA": ("1.5", "MQC_FORECAST_EWMA_LAMBDA=0.94"),
        "MQC_FORECAST_BLOCK_LENGTH": ("0", "MQC_FORECAST_BLOCK_LENGTH=1"),
        "MQC_FORECAST_BATCH_SIZE": ("0", "pass --batch-size 1"),
    }
    for var, (value, fix) in cases.items():
        monkeypatch.setenv(var, value)
        r = runner.invoke(app, ["forecast", "SYN0", "--model", "ewma-vol"])
        monkeypatch.delenv(var)
        assert r.exit_code == 1 and r.stderr.splitlines()[1].startswith("hint: ") and fix in r.stderr, (var, r.output)
    r = runner.invoke(app, ["forecast", "eval", "SYN0", "--step", "0"])
    assert r.exit_code == 2 and "hint: pass --step 1" in r.stderr, r.output
