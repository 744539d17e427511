"""``mqc backtest`` through the CLI: exit codes, messages, JSON output and the report files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()


@pytest.fixture
def bars(synth, tmp_path) -> tuple[Path, Path]:
    frames = synth(n_assets=2, n_bars=300, seed=6)
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in frames.items():
        df.to_csv(root / f"{sym}.csv", index=False)
    ts = frames["SYN0"]["timestamp"]
    weights = tmp_path / "w.csv"
    rows = "".join(f"{ts[i]:%Y-%m-%d},{0.2 + 0.1 * (i % 3)},{0.4}\n" for i in range(20, 300, 20))
    weights.write_text("timestamp,SYN0,SYN1\n" + rows)
    return root, weights


def test_weights_backtest_json(bars, tmp_path):
    root, weights = bars
    out = tmp_path / "rep"
    res = runner.invoke(
        app,
        [
            "backtest",
            "--weights",
            str(weights),
            "--data-root",
            str(root),
            "--window-length",
            "100",
            "--stride",
            "50",
            "--out",
            str(out),
            "--no-plots",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    # the segment starts at the file's first row (bar 20): 280 bars, 4 windows of 100 every 50
    assert data["windows"] == 4 and data["segment"]["split"] == "all" and data["segment"]["start_bar"] == 20
    assert data["windows_kind"] == "rolling (overlapping) slices of one replay"
    assert data["files"]["report"] == str(out / "report.json")
    assert (out / "equity.csv").is_file() and not (out / "equity.png").exists()


def test_table_output_and_default_dir(bars):
    root, weights = bars
    res = runner.invoke(
        app,
        [
            "backtest",
            "-w",
            str(weights),
            "--data-root",
            str(root),
            "--window-length",
            "64",
            "--no-trades",
            "--cost-bps",
            "20",
        ],
    )
    assert res.exit_code == 0, res.output
    for text in (
        "strategy",
        "rolling windows (overlapping slices of one replay, not re-fits): 4 windows",
        "Sharpe vs rebalanced 1/N",
        "report:",
        "backtests",
    ):
        assert text in res.stdout, text


def test_errors_exit_one(bars):
    root, weights = bars
    res = runner.invoke(app, ["backtest", "-w", str(weights), "--data-root", str(root), "--window-length", "1000"])
    assert res.exit_code == 1 and "longer than the 280 bars" in res.output
    for args in (["-w", str(weights), "-c", "latest"], []):  # a usage error: exit 2
        res = runner.invoke(app, ["backtest", *args])
        assert res.exit_code == 2 and "exactly one of" in res.output
    res = runner.invoke(app, ["backtest", "-c", "latest", "--enable-shorting"])
    assert res.exit_code == 2 and "applies to --weights only" in " ".join(res.output.split())
    res = runner.invoke(app, ["backtest", "-c", "latest"])
    assert res.exit_code == 1 and "no training runs" in res.output
    res = runner.invoke(app, ["backtest", "-w", str(weights), "--data-root", str(root), "--split", "tset"])
    assert res.exit_code == 2 and "tset" in res.output and "'test'" in res.output
    res = runner.invoke(app, ["backtest", "-w", str(weights), "--data-root", str(root), "--stride", "0"])
    assert res.exit_code == 2 and "hint: pass a valid --stride" in res.output  # a bad flag value: usage error


def test_default_window_fits_a_short_segment_and_costs_are_shown(bars, tmp_path):
    root, weights = bars
    res = runner.invoke(
        app,
        [
            "backtest",
            "-w",
            str(weights),
            "--data-root",
            str(root),
            "--split",
            "test",
            "--no-plots",
            "--slippage-bps",
            "3",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 0, res.output
    text = " ".join(res.stdout.split())
    assert "note: the default window of 256 bars is longer than the" in text and "strategy" in text
    assert "costs (fee+slippage per trade): equity 1+3 bps; overrides: --slippage-bps 3" in text


def test_capped_rows_warn_on_stderr(bars, tmp_path):
    root, weights = bars
    heavy = tmp_path / "heavy.csv"
    heavy.write_text(weights.read_text().replace(",0.4\n", ",0.9\n"))
    res = runner.invoke(
        app,
        ["backtest", "-w", str(heavy), "--data-root", str(root), "--no-plots", "--out", str(tmp_path / "r"), "--json"],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["source"]["capped_targets"] > 0
    assert "exceed the leverage cap" in " ".join(res.stderr.split())


def test_shorts_warn_when_the_market_forbids_them_and_trade_with_enable_shorting(bars, tmp_path):
    root, weights = bars
    short = tmp_path / "short.csv"
    short.write_text(weights.read_text().replace(",0.4\n", ",-0.4\n"))
    base = ["backtest", "-w", str(short), "--data-root", str(root), "--no-plots", "--json"]
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "a")])
    assert res.exit_code == 0, res.output
    off = json.loads(res.stdout)
    assert off["source"]["clipped_short_targets"] == 14
    assert "14 target row(s) hold shorts that were set to 0: shorting is off" in " ".join(res.stderr.split())
    res = runner.invoke(app, [*base, "--out", str(tmp_path / "b"), "--enable-shorting"])
    assert res.exit_code == 0, res.output
    on = json.loads(res.stdout)
    assert on["source"]["clipped_short_targets"] == 0 and "set to 0" not in res.stderr
    assert on["metrics"]["total_return"] != off["metrics"]["total_return"]
    # one spelling everywhere (train's): --long-only; backtest's old --no-shorting still works, with a note
    for i, flag in enumerate(("--long-only", "--no-shorting")):
        res = runner.invoke(app, [*base, "--out", str(tmp_path / f"c{i}"), flag])
        assert res.exit_code == 0, res.output
        assert json.loads(res.stdout)["source"]["clipped_short_targets"] == 14
        notes = [line for line in res.stderr.splitlines() if line.startswith("note:")]
        assert notes == (["note: --no-shorting is deprecated; use --long-only"] if flag == "--no-shorting" else [])


def test_reusing_out_removes_the_previous_reports_stale_files(bars, tmp_path):
    root, weights = bars
    out = tmp_path / "rep"
    args = ["backtest", "-w", str(weights), "--data-root", str(root), "--window-length", "64", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    assert (out / "equity.png").is_file() and (out / "trades.jsonl").is_file()
    (out / "notes.txt").write_text("mine")
    res = runner.invoke(app, [*args, "--no-plots", "--no-trades", "--json"])
    assert res.exit_code == 0, res.output
    assert (
        not (out / "equity.png").exists() and not (out / "weights.png").exists() and not (out / "trades.jsonl").exists()
    )
    assert sorted(p.name for p in out.iterdir()) == ["equity.csv", "notes.txt", "report.json", "windows.json"]
