"""``mqc backtest --strategy``: the command users type, its JSON, its errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()


@pytest.fixture
def root(synth, tmp_path) -> Path:
    frames = synth(n_assets=2, n_bars=400, seed=6)
    d = tmp_path / "bars"
    d.mkdir()
    for sym, df in frames.items():
        df.to_csv(d / f"{sym}.csv", index=False)
    return d


def test_maxdiff_json_report_with_fits_and_fill_rows(root, tmp_path):
    out = tmp_path / "rep"
    args = ["backtest", "--strategy", "maxdiff", "--model", "naive", "--data-root", str(root), "--out", str(out)]
    args += ["--refit-every", "20", "--fit-window", "100", "--no-plots", "--json", "--split", "test"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["source"]["type"] == "orders" and data["orders"]["intrabar"] == "conservative"
    assert len(data["orders"]["fit"]["fits"]) == -(-data["segment"]["bars"] // 20)
    assert {"equal_weight", "buy_and_hold"} <= set(data["benchmarks"])
    rows = [json.loads(x) for x in (out / "trades.jsonl").read_text().splitlines()]
    assert sum(r.get("type") == "fill" for r in rows) == data["orders"]["fills"]["fills"]
    # optimistic on the same bars, labelled as such
    res2 = runner.invoke(app, [*args[:-4], "--intrabar", "optimistic", "--json", "--out", str(tmp_path / "o")])
    assert res2.exit_code == 0, res2.output
    assert json.loads(res2.stdout)["orders"]["intrabar"] == "optimistic"


def test_table_output(root):
    res = runner.invoke(
        app, ["backtest", "--strategy", "highlow", "--model", "ewma-vol", "--data-root", str(root), "--no-plots"]
    )
    assert res.exit_code == 0, res.output
    assert "intrabar rule, same orders and bars" in res.output and "fill rate" in res.output


@pytest.mark.parametrize(
    ("extra", "code", "needle"),
    [
        (["--strategy", "maxdif"], 1, "did you mean"),
        (["--strategy", "maxdiff", "--model", "nope"], 2, "unknown model"),
        (["--strategy", "maxdiff", "--intrabar", "lucky"], 2, "lucky"),
        (["--strategy", "maxdiff", "--fit-window", "5000"], 1, "fit window needs 5000"),
        (["--strategy", "maxdiff", "--participation", "2"], 2, "participation"),
        (["--weights", "w.csv", "--intrabar", "optimistic"], 2, "--strategy only"),
    ],
)
def test_bad_input_is_one_clear_line(root, extra, code, needle):
    res = runner.invoke(app, ["backtest", *extra, "--data-root", str(root), "--no-plots"])
    assert res.exit_code == code, res.output
    assert needle in res.output


def test_chronos2_drives_maxdiff_through_the_real_loading_path(root, tmp_path):
    pytest.importorskip("chronos")
    from mqc.core.forecast.randinit import save_random_chronos2

    weights = save_random_chronos2(tmp_path / "tiny", size="tiny")
    args = ["backtest", "--strategy", "maxdiff", "--model", "chronos2", "--model-path", str(weights)]
    args += ["--data-root", str(root), "--no-plots", "--json", "--out", str(tmp_path / "r")]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["source"]["model"] == "chronos2" and data["orders"]["fills"]["orders"] > 0
    again = runner.invoke(app, [*args[:-1], str(tmp_path / "r2")])  # forecasts read back from the cache
    assert again.exit_code == 0 and json.loads(again.stdout)["source"]["forecasts_from_cache"] is True
