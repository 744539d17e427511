"""``core/runs.py`` owns the run directory and checkpoint format: runs written before it existed
still load, the config.json marker is versioned, and every field old readers need is still written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fixtures.make_v1_run import CFG, FEATS
from fixtures.make_v1_run import panel as v1_panel

from mqc.core import runs
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import CheckpointError
from mqc.core.market.config import MarketConfig
from mqc.core.policy.strategy import load_strategy
from mqc.core.train.api import train_dm
from mqc.core.train.config import DMTrainConfig

# written by mqc at 433b72c, before runs.py (see the script)
V1 = Path(__file__).parent / "fixtures" / "v1_run"


def test_a_checkpoint_written_before_runs_py_replays_the_same_weights() -> None:
    strat = load_strategy(V1)
    want = np.load(V1.parent / "v1_run_weights.npy")
    np.testing.assert_array_equal(strat.target_weights(v1_panel()), want)
    assert strat.lookback == 4 and strat.warmup == 11


def test_a_config_json_without_the_format_marker_reads() -> None:
    doc = runs.read_run_config(V1)
    assert "format_version" not in doc
    assert runs.stored_table(doc, "train", V1 / "config.json")["lookback"] == 4
    # written before [train] was renamed [dm]: read under the current name (resume asks for "dm")
    assert "dm" not in doc["configs"] and runs.stored_table(doc, "dm", V1 / "config.json")["lookback"] == 4
    assert runs.config_tables(doc)["split"] == {"val_frac": 0.15, "test_frac": 0.15, "embargo": 0}
    ckpt = runs.read_checkpoint(runs.checkpoint_path(V1))
    split = runs.stored_split(ckpt, runs.checkpoint_run_config(runs.checkpoint_path(V1)))
    assert split["embargo"] == 11 and set(split["times"]) == {"train", "val", "test"} and split["first"]


def test_lookback_is_read_from_one_place() -> None:
    ckpt = runs.read_checkpoint(runs.checkpoint_path(V1))
    assert runs.checkpoint_lookback(ckpt) == 4
    del ckpt["lookback"]  # a checkpoint that keeps it only in model_config
    assert runs.checkpoint_lookback(ckpt) == 4


def test_new_runs_carry_the_versioned_schema(tmp_path) -> None:
    cfg = DMTrainConfig(**CFG, save_dir=str(tmp_path))
    res = train_dm(DataConfig(), MarketConfig(), cfg, feature_cfg=FEATS, split_cfg=SplitConfig(), panel=v1_panel())
    doc = json.loads((res.run_dir / "config.json").read_text())
    assert (doc["format"], doc["format_version"]) == (runs.RUN_CONFIG_FORMAT, runs.RUN_CONFIG_VERSION)
    old = runs.read_checkpoint(runs.checkpoint_path(V1))
    for name in (runs.BEST, runs.LATEST):
        new = runs.read_checkpoint(runs.checkpoint_path(res.run_dir, name))
        missing = set(old) - set(new) - {"train_state"}
        assert not missing, f"{name} lacks fields a v1 checkpoint had: {missing}"
        assert {"train_config", "split", "split_times", "data_range"} <= set(new)
    assert "train_state" in runs.read_checkpoint(res.latest_checkpoint)
    assert "train_state" not in runs.read_checkpoint(res.best_checkpoint)


def test_a_newer_run_config_version_is_refused(tmp_path) -> None:
    run = tmp_path / "run"
    shutil.copytree(V1, run)
    doc = json.loads((run / "config.json").read_text())
    runs.write_run_config(run, {k: v for k, v in doc.items()})
    assert runs.read_run_config(run)["format_version"] == runs.RUN_CONFIG_VERSION
    doc["format_version"] = runs.RUN_CONFIG_VERSION + 1
    (run / "config.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format version"):
        runs.read_run_config(run)


def test_checkpoints_are_written_through_the_schema(tmp_path) -> None:
    with pytest.raises(ValueError, match="make_checkpoint"):
        runs.save_checkpoint(tmp_path / "x.pt", {"state_dict": {}})
    runs.save_checkpoint(tmp_path / "x.pt", runs.make_checkpoint("dm", "test", step=3))
    assert runs.read_checkpoint(tmp_path / "x.pt")["step"] == 3
    torch.save({"format": runs.CHECKPOINT_FORMAT, "format_version": 99}, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        runs.read_checkpoint(tmp_path / "future.pt")


def test_owner_dir_and_run_id(tmp_path) -> None:
    run = tmp_path / "20260101T000000Z"
    shutil.copytree(V1, run)
    ck = runs.checkpoint_path(run)
    assert runs.owner_dir(ck) == run and runs.run_dir_of(ck) == run and runs.run_id(ck) == run.name
    loose = tmp_path / "elsewhere" / "model.pt"
    loose.parent.mkdir()
    shutil.copy(ck, loose)
    assert runs.owner_dir(loose) == loose.parent and runs.run_id(loose) == "model"
    assert runs.checkpoint_run_config(loose) == {}
