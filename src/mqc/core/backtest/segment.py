"""The evaluated bars of a backtest: the time split's segment (the checkpoint's own split placed on
the loaded bars, else one computed as in training), clipped to ``--start``/``--end``."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.engine import resolve_bounds
from mqc.core.data.config import SplitConfig
from mqc.core.data.panel import Panel, Split
from mqc.core.data.split import split_for
from mqc.core.dates import iso_day, iso_seconds
from mqc.core.errors import DataError


def select_segment(
    panel: Panel,
    config: BacktestConfig,
    split: SplitConfig,
    lookback: int = 0,
    stored_split: dict[str, Any] | None = None,
    warmup: int = 0,
) -> tuple[int, int, dict[str, Any]]:
    """The evaluated bars ``[lo, hi)``: the split's segment, then clipped to ``config.start/end``.

    With ``stored_split`` (a checkpoint's ``{"train": [a, b], "val": .., "test": .., "embargo": n}``,
    optionally with ``"times"``: each segment's first and last bar timestamp) the checkpoint's split
    is used, mapped onto the loaded bars (see ``map_stored_split``); ``split`` is ignored then. Only
    without one is the split computed from ``split`` on the whole loaded panel (as in training); an
    embargo of 0 means ``embargo_for``'s (the longer of ``lookback`` and the features' ``warmup``).
    The report's ``segment`` says which, and carries ``warnings`` when the evaluated bars overlap the
    checkpoint's train or val range.

    Raises:
        DataError: when nothing is left.
    """
    info: dict[str, Any] = {"split": config.split}
    warnings: list[str] = []
    mapped = map_stored_split(panel, stored_split) if stored_split else None
    if stored_split and mapped is None:
        warnings.append(
            "the checkpoint's train/val/test split could not be placed on these bars (other data than in training): "
            "the segment below is recomputed from the split fractions and MAY OVERLAP THE TRAINING DATA"
        )
    if config.split == "all":
        lo, hi = 0, len(panel)
        if mapped is not None:
            info["split_source"] = "checkpoint"
            info["split_bars"] = mapped.to_dict()
    else:
        if mapped is not None:
            s = mapped
            info["split_source"] = "checkpoint"
        else:
            stored_embargo = int((stored_split or {}).get("embargo") or 0)
            s = split_for(
                len(panel),
                dataclasses.replace(split, embargo=stored_embargo) if stored_embargo else split,
                lookback,
                warmup,
            )
            info["split_source"] = "computed"
            info["split_config"] = {
                "val_frac": split.val_frac,
                "test_frac": split.test_frac,
                "embargo": s.embargo,
            }
        lo, hi = s.segment(config.split)
        info["split_bars"] = s.to_dict()
        if hi <= lo:
            raise DataError(
                f"the {config.split} segment is empty ({config.split}_frac is 0)",
                hint="choose --split all or another segment",
            )
    if config.start is not None or config.end is not None:
        _check_bounds_in_segment(panel, lo, hi, config)
        a, b = resolve_bounds(panel.timestamps[lo:hi], config.start, config.end)
        lo, hi = lo + a, lo + b
        info.update(start=config.start, end=config.end)
    if mapped is not None:
        for name in ("train", "val") if config.split != "val" else ("train",):
            s0, s1 = getattr(mapped, name)
            n = max(0, min(hi, s1) - max(lo, s0))
            if n:
                warnings.append(
                    f"WARNING: {n} of the {hi - lo} evaluated bars are in the checkpoint's {name.upper()} range"
                    f" ({iso_day(panel.timestamps[s0])} .. {iso_day(panel.timestamps[s1 - 1])}): in-sample, not"
                    " out-of-sample"
                )
    if warnings:
        info["warnings"] = warnings
    return lo, hi, info


def _check_bounds_in_segment(panel: Panel, lo: int, hi: int, config: BacktestConfig) -> None:
    """Raise when ``start``/``end`` fall outside the selected split (clipping would hide it)."""
    if config.split == "all" or hi <= lo:
        return
    a, b = resolve_bounds(panel.timestamps, config.start, config.end) if _any_bar(panel, config) else (lo, hi)
    first, last = iso_seconds(panel.timestamps[lo]), iso_seconds(panel.timestamps[hi - 1])
    bad = []
    if config.start is not None and a < lo:
        bad.append(f"--start {config.start}")
    if config.end is not None and b > hi:
        bad.append(f"--end {config.end}")
    if bad:
        raise DataError(
            f"{' and '.join(bad)} outside the {config.split} split, which covers {first} .. {last}",
            hint=f"choose --start/--end within {first[:10]} .. {last[:10]}, or pass --split all to evaluate other bars",
        )


def _any_bar(panel: Panel, config: BacktestConfig) -> bool:
    """True when ``start``/``end`` select at least one bar of the panel (else the later check reports it)."""
    try:
        resolve_bounds(panel.timestamps, config.start, config.end)
    except DataError:
        return False
    return True


def map_stored_split(panel: Panel, stored: dict[str, Any]) -> Split | None:
    """A checkpoint's split placed on ``panel``'s bars, or None when it cannot be placed.

    Same number of bars: the stored indices as they are, provided the stored segment timestamps
    (when recorded) fall on those very bars (the same count of other bars is other data). Otherwise the stored segment
    timestamps
    (``stored["times"]``) locate train and val; ``"first"`` (the first training-data bar) shifts
    the indices of older checkpoints. Bars after the checkpoint's data are unseen, so the test
    segment runs to the panel's end.
    """
    try:
        seg = {k: tuple(int(v) for v in stored[k]) for k in ("train", "val", "test")}
        embargo = int(stored.get("embargo", 0))
    except (KeyError, TypeError, ValueError):
        return None
    n = len(panel)
    ts = panel.timestamps
    times = stored.get("times") or {}
    if seg["test"][1] == n and _indices_match_times(ts, seg, times):
        return Split(seg["train"], seg["val"], seg["test"], embargo)
    if all(isinstance(times.get(k), list | tuple) and len(times[k]) == 2 for k in ("train", "val", "test")):

        def place(k: str) -> tuple[int, int]:
            a = int(np.searchsorted(ts, np.datetime64(times[k][0], "ns"), side="left"))
            b = int(np.searchsorted(ts, np.datetime64(times[k][1], "ns"), side="right"))
            return a, b

        train, val, test = place("train"), place("val"), place("test")
    elif stored.get("first") is not None:
        shift = int(np.searchsorted(ts, np.datetime64(iso_seconds(stored["first"]), "ns")))
        if shift >= n or ts[shift] != np.datetime64(iso_seconds(stored["first"]), "ns"):
            return None
        train, val, test = ((a + shift, b + shift) for a, b in (seg["train"], seg["val"], seg["test"]))
    else:
        return None
    if test[0] >= n:  # shorter data than the checkpoint's: no unseen bars to place a test on
        return None
    test = (min(test[0], n), n)  # the checkpoint never saw bars after its data: they are test bars
    train, val = (min(train[0], n), min(train[1], n)), (min(val[0], n), min(val[1], n))
    return Split(train, val, test, embargo)


def _indices_match_times(ts: np.ndarray, seg: dict[str, tuple[int, ...]], times: Any) -> bool:
    """True when no recorded segment timestamp contradicts the stored indices on ``ts``."""
    if not isinstance(times, dict):
        return True
    for k, (a, b) in seg.items():
        pair = times.get(k)
        if not (isinstance(pair, list | tuple) and len(pair) == 2) or b <= a:
            continue
        try:
            first, last = (np.datetime64(str(v)[:29].replace("Z", ""), "ns") for v in pair)
        except ValueError:
            return False
        if not (0 <= a < b <= len(ts)) or ts[a] != first or ts[b - 1] != last:
            return False
    return True
