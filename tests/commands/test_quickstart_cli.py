"""``mqc quickstart`` end to end on the embedded sample (short training budget)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from mqc.cli import app


def test_quickstart_trains_and_backtests_on_the_test_split():
    result = CliRunner().invoke(app, ["quickstart", "--steps", "20", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["symbols"] == ["SP500", "NASDAQ", "GOOG"]
    assert sorted(doc["imported"]) == ["GOOG", "NASDAQ", "SP500"]
    run_dir = Path(doc["train"]["run_dir"])
    for name in ("config.json", "metrics.jsonl", "checkpoints/best.pt", "checkpoints/latest.pt"):
        assert (run_dir / name).is_file(), name
    bt = doc["backtest"]
    assert bt["segment"]["split"] == "test"
    report = json.loads((run_dir / "backtest" / "report.json").read_text())
    assert report["segment"]["first"] == bt["segment"]["first"]
    assert set(report["benchmarks"]) == {"cash", "buy_and_hold", "equal_weight", "inverse_vol"}
    assert report["metrics"]["n_bars"] == bt["segment"]["bars"]
    _readme_benchmarks_match(report)
    # A second run reuses the catalog: nothing is imported again.
    again = CliRunner().invoke(app, ["quickstart", "--steps", "10", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["imported"] == []


def _readme_benchmarks_match(report: dict) -> None:
    """README's quickstart output names its machine, and its benchmark rows (plain float64, the same
    on every CPU, unlike the trained strategy's) are what quickstart prints."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    intro = readme.split("$ mqc quickstart")[0]
    assert "same machine" in readme and "another CPU" in readme and "Intel Xeon" in intro.split("## ")[-1]
    block = readme.split("$ mqc quickstart")[1].split("```")[0]
    shown = {
        line.split("│")[1].strip(): line.split("│")[2].strip() for line in block.splitlines() if line.startswith("│")
    }
    labels = {
        "cash": "cash",
        "buy_and_hold": "buy & hold 1/N",
        "equal_weight": "rebalanced 1/N",
        "inverse_vol": "inverse vol",
    }
    for key, label in labels.items():
        assert shown[label] == f"{report['benchmarks'][key]['total_return']:.2%}", label
    assert f"({report['segment']['bars']} bars)" in block
