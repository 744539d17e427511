"""A backtest that has to recompute a checkpoint's split (no split stored anywhere) uses training's
embargo rule, ``max(lookback, warmup)`` (``core/data/split.py``), so it finds training's segments."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from test_backtest_runner import FAST, write_root

from mqc.core import runs
from mqc.core.backtest.runner import run_checkpoint_backtest
from mqc.core.backtest.segment import select_segment
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.split import embargo_for, first_decision, split_for
from mqc.core.data.synth import SynthSpec, synth_ohlcv

V1 = Path(__file__).parents[1] / "fixtures" / "v1_run"  # lookback 4, feature warm-up 11


def test_embargo_covers_the_longer_of_lookback_and_warmup() -> None:
    assert embargo_for(SplitConfig(), lookback=4, warmup=11) == 11
    assert embargo_for(SplitConfig(), lookback=30, warmup=11) == 30
    assert embargo_for(SplitConfig(embargo=5), lookback=30, warmup=11) == 5
    assert first_decision(warmup=11, lookback=4) == 14
    assert split_for(160, SplitConfig(), 4, 11).to_dict() == {
        "train": [0, 90],
        "val": [101, 125],
        "test": [136, 160],
        "embargo": 11,
    }


def test_a_checkpoint_without_a_stored_split_gets_trainings_val_segment(tmp_path) -> None:
    root = write_root(synth_ohlcv(SynthSpec(n_assets=2, n_bars=160, seed=3)), tmp_path / "bars")
    ckpt = runs.read_checkpoint(runs.checkpoint_path(V1))
    trained = ckpt["split"]
    for key in (
        "split",
        "split_times",
    ):  # a checkpoint from before splits were stored, no config.json beside it
        del ckpt[key]
    path = tmp_path / "old" / "best.pt"
    path.parent.mkdir()
    torch.save(ckpt, path)
    cfg = dataclasses.replace(FAST, split="val", window_length=8, stride=4, bootstrap_samples=20)
    rep = run_checkpoint_backtest(path, DataConfig(data_root=str(root)), cfg, write=False)
    seg = rep.segment
    assert seg["split_source"] == "computed" and seg["split_config"]["embargo"] == 11
    # the lookback alone (4) would have started val 7 bars early, on bars the policy's inputs share with train
    assert (seg["start_bar"], seg["end_bar"]) == tuple(trained["val"]) == (101, 125)


def test_weights_files_have_no_lookback_and_keep_the_configured_embargo() -> None:
    from mqc.core.data.panel import align_frames

    panel = align_frames(synth_ohlcv(SynthSpec(n_assets=2, n_bars=160, seed=3)))
    _, _, info = select_segment(panel, dataclasses.replace(FAST, split="val"), SplitConfig())
    assert info["split_config"]["embargo"] == 0
