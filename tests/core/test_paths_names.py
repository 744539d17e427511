"""Run, backtest and eval outputs share one UTC name format and never overwrite each other."""

from __future__ import annotations

import re

from mqc.core import paths
from mqc.core.backtest.report import default_out_dir
from mqc.core.runs import new_run_dir

STAMP = r"\d{8}T\d{6}Z"


def test_one_name_format_and_no_overwrites(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "utc_stamp", lambda: "20261122T021400Z")
    first = paths.fresh_name(tmp_path, ".json")
    first.write_text("{}")
    assert first.name == "20261122T021400Z.json"
    assert paths.fresh_name(tmp_path, ".json").name == "20261122T021400Z-1.json"
    run = new_run_dir("dm", str(tmp_path / "runs"))
    again = new_run_dir("dm", str(tmp_path / "runs"))
    assert (run.name, again.name) == ("20261122T021400Z", "20261122T021400Z-1")
    monkeypatch.setenv("MQC_RUNS_DIR", str(tmp_path / "r"))
    assert default_out_dir() == tmp_path / "r" / "backtests" / "20261122T021400Z"


def test_real_stamp_format():
    assert re.fullmatch(STAMP, paths.utc_stamp())
