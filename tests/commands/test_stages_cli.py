"""``mqc stage1..4`` through the real CLI: the chain with default --in, JSON, bad input exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.core.lm.conftest import random_walk, write_csv
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
RUNTIME = ["--batch", "8", "--eval-interval", "5", "--device", "cpu"]
MODEL = ["--layers", "1", "--heads", "2", "--kv-heads", "1", "--embd", "32", "--seq-len", "48", "--vocab", "16"]


def test_stage_chain_through_the_cli(tmp_path: Path) -> None:
    root = tmp_path / "bars"
    root.mkdir()
    write_csv(root, "AAA", random_walk(400, 1))
    write_csv(root, "BBB", random_walk(400, 2))
    r1 = runner.invoke(
        app,
        ["stage1", "--data-root", str(root), *MODEL, *RUNTIME, "--epochs", "1", "--tokenizer-steps", "40", "--json"],
    )
    assert r1.exit_code == 0, r1.output
    doc = json.loads(r1.stdout)
    assert doc["kind"] == "stage1" and set(doc["reports"]["tokenizer"]) == {"vq", "bsq", "fsq"}
    r2 = runner.invoke(app, ["stage2", "--symbols", "aaa", *RUNTIME, "--epochs", "1", "--quiet"])
    assert r2.exit_code == 0, r2.output
    assert "val before" in r2.stdout and "bits_per_candle_other" in r2.stdout
    r3 = runner.invoke(app, ["stage3", "--context-len", "24", "--horizon", "6", *RUNTIME, "--epochs", "0.2", "--json"])
    assert r3.exit_code == 0, r3.output
    assert json.loads(r3.stdout)["source"].endswith("best.pt")
    r4 = runner.invoke(app, ["stage4", "--steps", "2", "--batch-episodes", "2", "--eval-interval", "2", "--json"])
    assert r4.exit_code == 0, r4.output
    run4 = json.loads(r4.stdout)["run_dir"]
    assert runner.invoke(app, ["data", "import", str(root)]).exit_code == 0
    fc = runner.invoke(app, ["forecast", "AAA", "--model", "mqc-lm", "--model-path", run4, "--horizon", "3", "--json"])
    assert fc.exit_code == 0, fc.output
    assert "mqc-lm" in fc.stdout and "quantiles" in fc.stdout
    bt = runner.invoke(app, ["backtest", "--checkpoint", run4, "--json"])
    assert bt.exit_code == 0, bt.output
    assert json.loads(bt.stdout)["source"]["kind"] == "stage4"


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    r = runner.invoke(app, ["stage4"])
    assert r.exit_code == 1 and "no stage3 run" in r.output and "mqc stage3" in r.output
    r = runner.invoke(app, ["stage1", "--quantizer", "nope"])
    assert r.exit_code == 2 and "quantizer" in r.output
    r = runner.invoke(app, ["stage1", "--quantizer", "bsq", "--vocab", "500"])
    assert r.exit_code == 2 and "power-of-two" in r.output
    r = runner.invoke(app, ["stage1", "--quantizer", "fsq", "--vocab", "34"])
    assert r.exit_code == 2 and "prime factors" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, ["stage1", "--data-root", str(empty)])
    assert r.exit_code == 1 and "Traceback" not in r.output


def test_stage_metrics_reach_the_tensorboard_sink(tmp_path: Path) -> None:
    """`mqc stage1 --tensorboard DIR`: the stage's metrics.jsonl rows as TensorBoard scalars, as for `mqc train`."""
    import pytest

    pytest.importorskip("tensorboardX")
    root = tmp_path / "bars"
    root.mkdir()
    write_csv(root, "AAA", random_walk(400, 1))
    tb = tmp_path / "tb"
    args = ["stage1", "--data-root", str(root), *MODEL, *RUNTIME, "--epochs", "1", "--tokenizer-steps", "20"]
    r = runner.invoke(app, [*args, "--tensorboard", str(tb), "--json"])
    assert r.exit_code == 0, r.output
    run_dir = Path(json.loads(r.stdout)["run_dir"])
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert rows
    events = list((tb / run_dir.name).glob("events.out.tfevents.*"))
    assert events and sum(e.stat().st_size for e in events) > 100
