"""Catalog integrity through the CLI: ``mqc data verify``, damaged entries in ``data list``, and
train / backtest refusing changed bars unless ``--allow-altered-data`` is given."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from mqc.cli import app
from mqc.core.data.catalog import Catalog

runner = CliRunner()


def mqc(*args):
    return runner.invoke(app, list(map(str, args)))


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def catalog() -> Catalog:
    r = mqc("data", "synth", "--assets", "3", "--bars", "320", "--seed", "4")
    assert r.exit_code == 0, r.output
    return Catalog(Path(os.environ["MQC_DATA_DIR"]) / "catalog")


def alter(cat: Catalog, symbol: str) -> Path:
    path = cat.path_for(cat.find(symbol))
    t = pq.read_table(path)
    close = t.column("close").to_numpy().copy()
    close[200] *= 1.02
    pq.write_table(t.set_column(t.schema.get_field_index("close"), "close", pa.array(close)), path)
    return path


def test_verify_lists_damaged_files_with_the_repair_and_exits_1(catalog):
    r = mqc("data", "verify")
    assert r.exit_code == 0 and "all 3 file(s) match the manifest" in flat(r.output)
    altered = alter(catalog, "SYN1")
    catalog.path_for(catalog.find("SYN2")).write_bytes(b"")
    r = mqc("data", "verify")
    text = flat(r.output)
    assert r.exit_code == 1 and "2 of 3 file(s) damaged" in text
    assert f"damaged: 1d/SYN1: {altered.name} holds other bars than were imported" in text
    assert "damaged: 1d/SYN2:" in text and "is empty (0 bytes)" in text
    assert (
        "mqc data import FILE --symbol SYN1 --timeframe 1d --replace" in text
        and "mqc data remove SYN2 --timeframe 1d" in text
    )
    r = mqc("--json", "data", "verify")
    doc = json.loads(r.stdout)
    assert r.exit_code == 1 and doc["damaged"] == 2 and [e["ok"] for e in doc["entries"]] == [True, False, False]


def test_list_marks_a_truncated_file(catalog):
    path = catalog.path_for(catalog.find("SYN0"))
    path.write_bytes(path.read_bytes()[:100])
    r = mqc("data", "list")
    assert r.exit_code == 0 and "SYN0 DAMAGED" in flat(r.output) and "SYN1 DAMAGED" not in flat(r.output)
    assert "damaged: 1d/SYN0:" in flat(r.output) and "is not a whole Parquet file" in flat(r.output)
    problems = [e["problem"] for e in json.loads(mqc("--json", "data", "list").stdout)["entries"]]
    assert problems[0].startswith("is not a whole Parquet file") and problems[1:] == ["", ""]
    r = mqc("data", "show", "SYN0")
    assert r.exit_code == 1 and str(path) in flat(r.output) and "mqc data remove SYN0" in flat(r.output)
    assert "internal error" not in r.output


def test_a_manifest_of_the_wrong_shape_is_one_line_naming_it(catalog):
    catalog.manifest_path.write_text("null")
    r = mqc("data", "list")
    assert r.exit_code == 1 and "manifest.json: the catalog manifest must be a JSON object, got null" in flat(r.output)
    assert "internal error" not in r.output


def test_remove_refuses_a_manifest_pointing_outside_and_deletes_nothing(catalog, tmp_path):
    victim = catalog.root.parent / "victim.txt"
    victim.write_text("keep")
    doc = json.loads(catalog.manifest_path.read_text())
    doc["entries"]["1d/SYN0"]["file"] = "../../victim.txt"
    catalog.manifest_path.write_text(json.dumps(doc))
    for args in (("data", "remove", "SYN0"), ("data", "show", "SYN0")):
        r = mqc(*args)
        assert r.exit_code == 1 and "names the file '../../victim.txt'" in flat(r.output)
    assert victim.read_text() == "keep"


TINY = [
    "--lookback",
    "16",
    "--horizon",
    "8",
    "--batch-windows",
    "4",
    "--hidden-size",
    "8",
    "--steps",
    "2",
    "--eval-interval",
    "2",
]


def test_train_and_backtest_refuse_altered_bars_unless_allowed(catalog, tmp_path):
    alter(catalog, "SYN1")
    r = mqc("train", "sharpe", "--symbols", "SYN0,SYN1", *TINY, "--save-dir", tmp_path / "runs", "--device", "cpu")
    assert (
        r.exit_code == 1
        and "catalog entry 1d/SYN1:" in flat(r.output)
        and "holds other bars than were imported" in flat(r.output)
    )
    assert "--replace" in flat(r.output)
    r = mqc(
        "train",
        "sharpe",
        "--symbols",
        "SYN0,SYN1",
        *TINY,
        "--save-dir",
        tmp_path / "runs",
        "--device",
        "cpu",
        "--allow-altered-data",
    )
    assert r.exit_code == 0, r.output
    assert "holds other bars than were imported" in flat(r.output) and "used anyway" in flat(r.output)
    weights = tmp_path / "w.csv"
    weights.write_text("timestamp,SYN0,SYN1\n2015-03-02,0.5,0.5\n")
    r = mqc("backtest", "--weights", weights, "--no-plots", "--out", tmp_path / "bt")
    assert r.exit_code == 1 and "catalog entry 1d/SYN1:" in flat(r.output)
    r = mqc(
        "backtest",
        "--weights",
        weights,
        "--no-plots",
        "--out",
        tmp_path / "bt",
        "--allow-altered-data",
        "--window-length",
        "64",
    )
    assert r.exit_code == 0, r.output
    assert "used anyway" in flat(r.output)


def test_show_marks_an_altered_file_and_export_refuses_it(catalog, tmp_path):
    alter(catalog, "SYN1")
    r = mqc("data", "show", "SYN1")
    assert r.exit_code == 0 and "content hash MISMATCH" in flat(r.output) and "--replace" in flat(r.output)
    r = mqc("data", "export", "SYN1", "--out", tmp_path / "x.csv")
    assert (
        r.exit_code == 1
        and "holds other bars than were imported" in flat(r.output)
        and not (tmp_path / "x.csv").exists()
    )
