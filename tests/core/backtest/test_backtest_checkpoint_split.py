"""A checkpoint is always scored on its own split: other fractions never move its test segment onto
bars it was trained or selected on, and any overlap asked for explicitly is flagged loudly."""

from __future__ import annotations

import dataclasses

import pandas as pd

# pytest's default (prepend) import mode puts this folder on sys.path; importing the runner tests
# also registers their test-only "test-sma" strategy kind.
from test_backtest_runner import FAST, save_checkpoint, write_root

from mqc.core.backtest.runner import run_checkpoint_backtest
from mqc.core.data.config import DataConfig, SplitConfig

SYMS = ["SYN0", "SYN1", "SYN2"]
STORED = {"train": [0, 240], "val": [260, 320], "test": [340, 400], "embargo": 20}


def test_profile_split_fractions_do_not_move_the_test_segment(synth, tmp_path) -> None:
    root = write_root(synth(n_assets=3, n_bars=400, seed=3), tmp_path / "bars")
    ck = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", SYMS, split=STORED)
    other = SplitConfig(val_frac=0.2, test_frac=0.5)  # e.g. a profile's [split] table
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), FAST, split_cfg=other, write=False)
    seg = rep.segment
    assert (seg["start_bar"], seg["end_bar"]) == (340, 400)
    assert seg["split_source"] == "checkpoint" and "warnings" not in seg
    assert seg["split_config_ignored"]["test_frac"] == 0.5


def test_explicit_overlap_is_flagged(synth, tmp_path) -> None:
    root = write_root(synth(n_assets=3, n_bars=400, seed=3), tmp_path / "bars")
    ck = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", SYMS, split=STORED)
    rep = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, split="all"), write=False
    )
    text = " ".join(rep.segment["warnings"])
    assert "TRAIN range" in text and "VAL range" in text and "240 of the 400" in text
    assert rep.to_dict()["segment"]["warnings"] == rep.segment["warnings"]
    val = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, split="val"), write=False
    )
    assert "warnings" not in val.segment and (val.segment["start_bar"], val.segment["end_bar"]) == (260, 320)


def test_more_bars_than_in_training_keep_the_stored_boundaries(synth, tmp_path) -> None:
    frames = synth(n_assets=3, n_bars=400, seed=3)
    root = write_root(frames, tmp_path / "bars")
    ts = pd.to_datetime(frames["SYN0"]["timestamp"], utc=True).dt.tz_localize(None)
    # trained on the first 300 bars: train 0..180, val 200..240, test 260..300
    split = {"train": [0, 180], "val": [200, 240], "test": [260, 300], "embargo": 20}
    times = {k: [str(ts[split[k][0]]), str(ts[split[k][1] - 1])] for k in ("train", "val", "test")}
    ck = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", SYMS, split=split, split_times=times)
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), FAST, split_cfg=SplitConfig(), write=False)
    assert (rep.segment["start_bar"], rep.segment["end_bar"]) == (260, 400)  # unseen bars extend the test
    assert rep.segment["split_source"] == "checkpoint" and "warnings" not in rep.segment


def test_stored_indices_need_matching_times_when_recorded(synth_panel) -> None:
    """Same bar count is not enough: stored segment timestamps must sit on the stored indices."""
    import numpy as np

    from mqc.core.backtest.segment import map_stored_split

    panel = synth_panel(n_assets=2, n_bars=400, seed=3)
    ts = panel.timestamps

    def times(shift: int) -> dict:
        return {
            k: [str(ts[a + shift])[:29], str(ts[b - 1 + shift])[:29]]
            for k, (a, b) in (("train", (0, 240)), ("val", (260, 320)), ("test", (340, 399)))
        }

    stored = {**STORED, "times": times(0)}
    assert map_stored_split(panel, stored).test == (340, 400)
    assert map_stored_split(panel, dict(STORED)).test == (340, 400)  # no times recorded: trusted
    # the same number of bars, but training's bars started one bar later: placed by timestamp
    shifted = map_stored_split(panel, {**STORED, "times": times(1)})
    assert shifted.train == (1, 241) and shifted.val == (261, 321) and shifted.test == (341, 400)
    assert np.datetime64(ts[shifted.train[0]]) == ts[1]


def test_changed_bars_in_the_training_range_warn_newer_bars_do_not(synth, tmp_path) -> None:
    from mqc.core.data.panel import load_panel

    frames = synth(n_assets=3, n_bars=400, seed=3)
    short = {s: f.iloc[:300] for s, f in frames.items()}
    trained = load_panel(config=DataConfig(data_root=str(write_root(short, tmp_path / "trained"))))
    rng = [str(trained.timestamps[0])[:29], str(trained.timestamps[-1])[:29]]
    split = {"train": [0, 180], "val": [200, 240], "test": [260, 300], "embargo": 20}
    ts = trained.timestamps
    times = {k: [str(ts[split[k][0]]), str(ts[split[k][1] - 1])] for k in ("train", "val", "test")}
    ck = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt",
        SYMS,
        split=split,
        split_times=times,
        data_fingerprint=trained.fingerprint,
        data_range=rng,
    )
    # Newer bars appended after training: the trained range is unchanged, no warning.
    longer = write_root(frames, tmp_path / "longer")
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(longer)), FAST, write=False)
    assert rep.source["data_matches_checkpoint"] and "warnings" not in rep.segment
    # One close inside the trained range edited: flagged on the report and in its warnings.
    edited = {s: f.copy() for s, f in frames.items()}
    edited["SYN1"].loc[150, "close"] *= 1.001
    edited["SYN1"].loc[150, "high"] = max(edited["SYN1"].loc[150, "high"], edited["SYN1"].loc[150, "close"])
    rep = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(write_root(edited, tmp_path / "edited"))), FAST, write=False
    )
    assert not rep.source["data_matches_checkpoint"]
    assert any("differ from the ones the checkpoint was trained" in w for w in rep.segment["warnings"])


def test_a_partial_load_of_the_training_range_is_not_called_changed(synth, tmp_path) -> None:
    from mqc.core.data.panel import load_panel

    frames = synth(n_assets=3, n_bars=400, seed=3)
    root = write_root(frames, tmp_path / "bars")
    full = load_panel(config=DataConfig(data_root=str(root)))
    rng = [str(full.timestamps[0])[:29], str(full.timestamps[-1])[:29]]
    ck = save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt",
        SYMS,
        split=STORED,
        data_fingerprint=full.fingerprint,
        data_range=rng,
    )
    later = str(pd.Timestamp(full.timestamps[150]).date())
    rep = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root), start=later), dataclasses.replace(FAST, split="all"), write=False
    )
    assert rep.source["data_matches_checkpoint"] is None
    assert not any("differ from the ones" in w for w in rep.segment.get("warnings", []))
