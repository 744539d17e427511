"""Where target weights come from: a checkpoint's strategy, or a weights file. One call each.

``run_checkpoint_backtest`` is what ``mqc backtest --checkpoint`` and ``mqc quickstart`` call;
``run_weights_backtest`` serves ``mqc backtest --weights``. Both load bars with ``load_panel``,
choose the segment (time split, then ``start``/``end``), replay through ``evaluate`` and write the
report unless ``write=False``.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.engine import resolve_bounds
from mqc.core.backtest.report import BacktestReport, evaluate, write_report
from mqc.core.config import from_dict
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.panel import Panel, Split, load_panel, time_split
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.errors import ArtifactNotFound, CheckpointError, DataError
from mqc.core.market.config import MarketConfig
from mqc.core.progress import NULL, Progress


def select_segment(
    panel: Panel,
    config: BacktestConfig,
    split: SplitConfig,
    lookback: int = 0,
    stored_split: dict[str, Any] | None = None,
) -> tuple[int, int, dict[str, Any]]:
    """The evaluated bars ``[lo, hi)``: the split's segment, then clipped to ``config.start/end``.

    With ``stored_split`` (a checkpoint's ``{"train": [a, b], "val": .., "test": .., "embargo": n}``,
    optionally with ``"times"``: each segment's first and last bar timestamp) the checkpoint's split
    is used, mapped onto the loaded bars (see ``map_stored_split``); ``split`` is ignored then. Only
    without one is the split computed from ``split`` on the whole loaded panel (as in training); an
    embargo of 0 means the lookback. The report's ``segment`` says which, and carries ``warnings``
    when the evaluated bars overlap the checkpoint's train or val range.

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
            embargo = int((stored_split or {}).get("embargo") or split.embargo or lookback)
            s = time_split(len(panel), split.val_frac, split.test_frac, embargo)
            info["split_source"] = "computed"
            info["split_config"] = {"val_frac": split.val_frac, "test_frac": split.test_frac, "embargo": embargo}
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
                    f"WARNING: {n} of the {hi - lo} evaluated bars are in the checkpoint's {name.upper()} range "
                    f"({str(panel.timestamps[s0])[:10]} .. {str(panel.timestamps[s1 - 1])[:10]}): in-sample, not out-of-sample"
                )
    if warnings:
        info["warnings"] = warnings
    return lo, hi, info


def _check_bounds_in_segment(panel: Panel, lo: int, hi: int, config: BacktestConfig) -> None:
    """Raise when ``start``/``end`` fall outside the selected split (clipping would hide it)."""
    if config.split == "all" or hi <= lo:
        return
    a, b = resolve_bounds(panel.timestamps, config.start, config.end) if _any_bar(panel, config) else (lo, hi)
    first, last = str(panel.timestamps[lo])[:19], str(panel.timestamps[hi - 1])[:19]
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


def count_capped_targets(result: Any, asset_classes: tuple[str, ...], market: MarketConfig) -> int:
    """Target rows in the replay whose gross leverage (after shorting rules) exceeds the cap of their bar.

    Such rows are scaled down proportionally by ``constrain_weights``; counting them makes it visible.
    """
    from mqc.core.market.simulator import constrain_weights

    t = np.asarray(result.target_weights, dtype=np.float64)
    rows = ~np.isnan(t).all(axis=1)
    if not rows.any():
        return 0
    w = np.nan_to_num(t[rows])
    capped = constrain_weights(w, asset_classes, market, overnight=np.asarray(result.overnight)[rows])
    # The allowed book is the same as the requested one unless the leverage cap bit.
    clipped = constrain_weights(w, asset_classes, dataclasses.replace(market, max_gross_leverage=1e12, max_overnight_leverage=1e12))
    return int((np.abs(np.abs(clipped).sum(1) - np.abs(capped).sum(1)) > 1e-9).sum())


def data_matches(ckpt: dict[str, Any], panel: Panel) -> bool | None:
    """Whether ``panel`` holds the bars the checkpoint was trained on; None when it cannot tell.

    Newer or older bars outside the training range are allowed (only that range is compared). A
    panel that covers only part of the range (``--start``/``--end`` inside it) cannot be compared.
    """
    want = ckpt.get("data_fingerprint")
    if not want:
        return None
    rng = ckpt.get("data_range")
    if not rng:  # checkpoints before data_range: the whole panel must be the same
        return want == panel.fingerprint
    ts = panel.timestamps
    first, last = np.datetime64(rng[0]), np.datetime64(rng[1])
    if len(ts) == 0 or ts[0] > first or ts[-1] < last:
        return None
    lo = int(np.searchsorted(ts, first, side="left"))
    hi = int(np.searchsorted(ts, last, side="right"))
    return want == panel.slice(lo, hi).fingerprint


def count_clipped_shorts(result: Any, asset_classes: tuple[str, ...], market: MarketConfig) -> tuple[int, bool]:
    """Target rows holding a short the market does not allow (set to 0 by ``constrain_weights``).

    Returns (rows, whether shorting is on, so the zeroed shorts are crypto under ``crypto_long_only``).
    """
    from mqc.core.market.simulator import constrain_weights

    t = np.nan_to_num(np.asarray(result.target_weights, dtype=np.float64))
    # The market's own shorting rule, without the leverage caps (``count_capped_targets`` counts those).
    uncapped = dataclasses.replace(market, max_gross_leverage=1e12, max_overnight_leverage=1e12)
    allowed = constrain_weights(t, asset_classes, uncapped)
    bad = ((t < 0) & (allowed >= 0) & (allowed != t)).any(axis=1)
    return int(bad.sum()), bool(market.allow_short and bad.any())


def map_stored_split(panel: Panel, stored: dict[str, Any]) -> Split | None:
    """A checkpoint's split placed on ``panel``'s bars, or None when it cannot be placed.

    Same number of bars: the stored indices as they are, provided the stored segment timestamps
    (when recorded) fall on those very bars (the same count of other bars is other data). Otherwise the stored segment timestamps
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
        shift = int(np.searchsorted(ts, np.datetime64(str(stored["first"])[:19], "ns")))
        if shift >= n or ts[shift] != np.datetime64(str(stored["first"])[:19], "ns"):
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


def _add_panel_warnings(segment: dict[str, Any], panel: Panel) -> None:
    """Data warnings from alignment (e.g. heavy forward-filling) travel with the segment's warnings."""
    if panel.report.warnings:
        segment.setdefault("warnings", []).extend(f"data: {w}" for w in panel.report.warnings)


def _market_with_overrides(market: MarketConfig, config: BacktestConfig) -> MarketConfig:
    return market.with_cost(config.cost_bps, config.slippage_bps)


def _overrides(config: BacktestConfig) -> dict[str, float]:
    return {k: v for k, v in (("cost_bps", config.cost_bps), ("slippage_bps", config.slippage_bps)) if v is not None}


def _run_tables(path: Path) -> dict[str, dict[str, Any]]:
    """Config tables of the run that wrote ``path`` (``<run>/config.json``), as plain values."""
    import json

    doc_path = path.parent.parent / "config.json" if path.parent.name == "checkpoints" else path.parent / "config.json"
    try:
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
        tables = doc["configs"]
        return {t: {k: (v["value"] if isinstance(v, dict) and "value" in v else v) for k, v in vals.items()} for t, vals in tables.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _stored_split(ckpt: dict[str, Any], path: Path) -> dict[str, Any] | None:
    """The checkpoint's split (plus segment timestamps / first bar when recorded), else the run's."""
    import json

    split = ckpt.get("split")
    doc: dict[str, Any] = {}
    doc_path = path.parent.parent / "config.json" if path.parent.name == "checkpoints" else path.parent / "config.json"
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads(doc_path.read_text(encoding="utf-8"))
    if not isinstance(split, dict):
        split = doc.get("split") if isinstance(doc.get("split"), dict) else None
    if split is None:
        return None
    split = dict(split)
    if isinstance(ckpt.get("split_times"), dict):
        split.setdefault("times", ckpt["split_times"])
    first = (doc.get("panel") or {}).get("first") if isinstance(doc.get("panel"), dict) else None
    if first:
        split.setdefault("first", first)
    return split


def _table(tables: dict[str, dict[str, Any]], name: str, cls: type, where: Path) -> Any:
    raw = tables.get(name)
    if not isinstance(raw, dict):
        return None
    names = {f.name for f in dataclasses.fields(cls)}
    try:
        return from_dict(cls, {k: v for k, v in raw.items() if k in names}, where=f"{where} [{name}]")
    except Exception as exc:  # a stored config this version cannot read
        raise CheckpointError(f"{where}: unreadable [{name}] config ({exc})", hint="retrain with this mqc version") from exc


def run_checkpoint_backtest(
    ref: str | Path,
    data_cfg: DataConfig | None = None,
    backtest_cfg: BacktestConfig | None = None,
    *,
    split_cfg: SplitConfig | None = None,
    out_dir: str | Path | None = None,
    allow_mismatch: bool = False,
    data_sources: Mapping[str, str] | None = None,
    fit_windows: bool | None = None,
    write: bool = True,
    progress: Progress = NULL,
) -> BacktestReport:
    """Backtest the strategy stored in a checkpoint.

    Args:
        ref: checkpoint file, run directory or ``latest``.
        data_cfg: where to load bars. Empty ``symbols`` and a timeframe/start/end/data_root/align
            that was not given (see ``data_sources``) mean "the checkpoint's" (or its run's); other
            symbols or bar sizes are errors unless ``allow_mismatch``.
        backtest_cfg: segment, windows, cost overrides, benchmark and bootstrap settings.
        split_cfg: split fractions (default: stored in the checkpoint, else ``SplitConfig()``).
        out_dir: report directory (default ``<runs>/backtests/<UTC time>``).
        allow_mismatch: replay on another bar size, or on other symbols of the same count (mapped
            in order), as an out-of-distribution transfer test: the report says so in its warnings.
        data_sources: where each ``data_cfg`` field came from (``Resolved.sources``); a field is
            "given" unless its source is ``"default"``. None: a field is given when it differs
            from ``DataConfig()`` (so the API can pass a plain config).
        fit_windows: the window length is a default: shrink the rolling windows to a shorter
            segment instead of raising (see ``evaluate``; None: when it is the default 256).
        write: write the report files.
    Returns:
        BacktestReport (``out_dir`` and ``files`` set when written).
    Raises:
        ArtifactNotFound, CheckpointError: missing, corrupted or other-version checkpoint.
        DataError: data that does not match the checkpoint, an empty segment, a too-long window.
    """
    from mqc.core.policy.strategy import load_strategy, read_checkpoint, resolve_checkpoint, run_id

    cfg = backtest_cfg or BacktestConfig()
    path, resolved_note = resolve_checkpoint(ref)
    ckpt = read_checkpoint(path)
    strategy = load_strategy(path)
    want = tuple(s.upper() for s in strategy.symbols)
    dcfg = data_cfg or DataConfig()
    tables = _run_tables(path)
    stored_data = _table(tables, "data", DataConfig, path)
    symbols = tuple(s.upper() for s in dcfg.symbols) or want
    if symbols != want and not (allow_mismatch and len(symbols) == len(want)):
        raise DataError(
            f"{path}: the checkpoint trades {', '.join(want)} but the data symbols are {', '.join(symbols)}",
            hint="drop --symbols to use the checkpoint's, or pass as many symbols as it has with --allow-mismatch",
        )
    def given(name: str) -> bool:
        if data_sources is not None:
            return data_sources.get(name, "default") != "default"
        return bool(getattr(dcfg, name) != getattr(DataConfig(), name))

    # an explicit --timeframe is honoured even when it equals the default (1d): compared by source
    timeframe = dcfg.timeframe if given("timeframe") else strategy.timeframe
    changes: dict[str, Any] = {"symbols": symbols, "timeframe": timeframe}
    if stored_data is not None:
        # the run's data settings, where the caller left the defaults: the same bars as in training
        if not given("start") and not given("end"):
            changes.update(start=stored_data.start, end=stored_data.end)
        if not given("data_root"):
            changes["data_root"] = stored_data.data_root
        if not given("align"):
            changes["align"] = stored_data.align
    dcfg = dataclasses.replace(dcfg, **changes)
    try:
        panel = load_panel(config=dcfg)
    except (ArtifactNotFound, DataError) as exc:
        raise DataError(
            f"{path}: data for the checkpoint's symbols ({', '.join(symbols)}, {timeframe}) is not available: {exc}",
            hint=exc.hint or "import the bars (mqc data import PATH) or pass --data-root DIR",
        ) from exc
    if tuple(panel.symbols) != symbols:
        raise DataError(
            f"{path}: the loaded data has symbols {', '.join(panel.symbols)}, the checkpoint needs {', '.join(symbols)}",
            hint="drop --exclude/--max-assets so every checkpoint symbol is loaded",
        )
    other_bars = parse_timeframe(panel.timeframe) != parse_timeframe(strategy.timeframe)
    if other_bars and not allow_mismatch:
        raise DataError(
            f"{path}: the checkpoint was trained on {strategy.timeframe} bars but the data has {panel.timeframe} bars",
            hint=f"drop --timeframe (or pass --timeframe {strategy.timeframe}); --allow-mismatch replays it on "
                 f"{panel.timeframe} bars as a transfer test",
        )
    transfer = None
    if allow_mismatch and (other_bars or symbols != want):
        strategy, transfer = _retarget(strategy, panel, path)
    split = split_cfg or _table(tables, "split", SplitConfig, path) or SplitConfig()
    # The checkpoint's own split always wins: other fractions (a profile's [split]) would move the
    # test segment onto bars the policy was trained or selected on. --split all / --start / --end
    # are the explicit ways to look elsewhere (and the report warns on any overlap).
    stored_split = _stored_split(ckpt, path)
    lo, hi, seg = select_segment(panel, cfg, split, strategy.lookback, stored_split)
    if stored_split and split_cfg is not None:
        seg["split_config_ignored"] = {"val_frac": split_cfg.val_frac, "test_frac": split_cfg.test_frac, "embargo": split_cfg.embargo}
    history = panel.slice(0, hi)  # the strategy never sees a bar after the segment's end
    targets = np.asarray(strategy.target_weights(history), dtype=np.float64)
    if targets.shape != (hi, panel.n_assets):
        raise CheckpointError(
            f"{path}: strategy {strategy.kind!r} returned weights of shape {targets.shape}, expected {(hi, panel.n_assets)}"
        )
    full = np.zeros((len(panel), panel.n_assets))
    full[:hi] = targets
    market = _market_with_overrides(strategy.market, cfg)
    source = {
        "type": "checkpoint",
        "name": f"{strategy.kind} {run_id(path)}",
        "path": str(path),
        "resolved": resolved_note,  # how a bare best.pt / latest.pt / 'latest' was looked up
        "kind": strategy.kind,
        "symbols": list(want),
        "timeframe": strategy.timeframe,
        "lookback": strategy.lookback,
        "checkpoint_mqc_version": ckpt.get("mqc_version"),
        "checkpoint_data_fingerprint": ckpt.get("data_fingerprint"),
        "data_matches_checkpoint": data_matches(ckpt, panel),
        "allow_mismatch": allow_mismatch,
    }
    _add_panel_warnings(seg, panel)
    if transfer is not None:
        source["transfer"] = transfer
        seg.setdefault("warnings", []).append(transfer["warning"])
    if source["data_matches_checkpoint"] is False and transfer is None:
        seg.setdefault("warnings", []).append(
            "these bars differ from the ones the checkpoint was trained and reported on (data fingerprint changed): "
            "figures can differ from the run's report.json"
        )
    report = evaluate(panel, full, market, cfg, lo=lo, hi=hi, source=source, segment=seg, fit_windows=fit_windows,
                      cost_overrides=_overrides(cfg), progress=progress)
    if write:
        write_report(report, out_dir)
    return report


def _retarget(strategy: Any, panel: Panel, path: Path) -> tuple[Any, dict[str, Any]]:
    """``--allow-mismatch``: the strategy relabelled to ``panel``'s symbols (in order) and bar size.

    The policy's inputs keep the training bars' standardisation, so on other assets or another bar
    size it sees out-of-distribution features: the result is a transfer test, and says so.
    """
    if not dataclasses.is_dataclass(strategy):
        raise CheckpointError(
            f"{path}: a {strategy.kind} checkpoint cannot be replayed on other symbols or bar sizes",
            hint="drop --allow-mismatch and load the checkpoint's own symbols and bar size",
        )
    old_syms, old_tf = tuple(strategy.symbols), strategy.timeframe
    new = dataclasses.replace(strategy, symbols=tuple(panel.symbols), timeframe=panel.timeframe)
    mapping = {a: b for a, b in zip(old_syms, panel.symbols, strict=True)}
    changed = [f"{a}->{b}" for a, b in mapping.items() if a != b]
    parts = []
    if changed:
        parts.append(f"symbols mapped in order ({', '.join(changed)})")
    if parse_timeframe(old_tf) != parse_timeframe(panel.timeframe):
        parts.append(f"{panel.timeframe} bars instead of {old_tf}")
    warning = (
        f"--allow-mismatch: transfer test, not the trained policy's own performance: {'; '.join(parts)}. "
        "Its features are standardised with the training bars' statistics, so it sees out-of-distribution inputs"
    )
    return new, {"symbols": mapping, "trained_timeframe": old_tf, "timeframe": panel.timeframe, "warning": warning}


def read_weights_file(path: str | Path) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Read a ``timestamp,SYM1,SYM2,...`` CSV of target weights.

    Returns:
        (timestamps datetime64[ns] UTC [R], symbols, weights [R, S] with NaN for empty cells).
    Raises:
        ArtifactNotFound: no such file. DataError: no timestamp column, unparsable or repeated
        timestamps, non-numeric weights.
    """
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise ArtifactNotFound(f"weights file {p} not found", hint="pass a CSV with a timestamp column and one column per symbol")
    try:
        df = pd.read_csv(p)
    except Exception as exc:
        raise DataError(f"{p}: not a readable CSV ({exc})") from exc
    cols = [str(c).strip() for c in df.columns]
    if not cols or cols[0].lower() not in ("timestamp", "date", "datetime", "time"):
        raise DataError(f"{p}: the first column must be 'timestamp', got {cols[0] if cols else 'nothing'!r}")
    symbols = tuple(c.upper() for c in cols[1:])
    if not symbols:
        raise DataError(f"{p}: no symbol columns after the timestamp")
    if len(set(symbols)) != len(symbols):
        raise DataError(f"{p}: repeated symbol columns")
    try:
        ts = pd.to_datetime(df.iloc[:, 0], utc=True)
    except Exception as exc:
        raise DataError(f"{p}: unparsable timestamp ({exc})", hint="use ISO 8601, e.g. 2024-01-31 or 2024-01-31T15:00:00Z") from exc
    values = df.iloc[:, 1:].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & df.iloc[:, 1:].notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{p}: row {r + 2}, column {symbols[c]}: {df.iloc[r, c + 1]!r} is not a number")
    stamps = ts.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    if len(stamps) > 1 and not (np.diff(stamps.astype(np.int64)) > 0).all():
        i = int(np.flatnonzero(np.diff(stamps.astype(np.int64)) <= 0)[0])
        raise DataError(f"{p}: timestamps must be strictly increasing (row {i + 3}: {stamps[i + 1]} after {stamps[i]})")
    return stamps, symbols, values.to_numpy(dtype=np.float64)


def align_weights(
    stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel, where: str = "weights"
) -> np.ndarray:
    """Place weight rows on the panel's bars: ``[T, A]`` with NaN (hold) between rows.

    Every row's timestamp must be a bar of the panel (the close the decision is taken at). Before
    the first row the book is cash; after a row its weights are held without trading (they drift)
    until the next row; never back-filled. Columns the file lacks are 0 on every row it has.
    A target on a bar where the asset's close is forward-filled (``panel.filled``: a weekend or
    holiday for an equity in a mixed panel) cannot trade there: it stays pending and is placed on
    the asset's next real bar, unless a later row for that asset gets there first (see
    ``deferred_targets``).
    """
    return _align(stamps, symbols, values, panel, where)[0]


def deferred_targets(stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel) -> tuple[int, int]:
    """(targets moved to the asset's next real bar, targets with no real bar left to trade on)."""
    _, moved, lost = _align(stamps, symbols, values, panel, "weights")
    return moved, lost


def _align(
    stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel, where: str
) -> tuple[np.ndarray, int, int]:
    idx = np.searchsorted(panel.timestamps, stamps)
    ok = (idx < len(panel)) & (panel.timestamps[np.minimum(idx, len(panel) - 1)] == stamps)
    if not ok.all():
        bad = stamps[~ok]
        first, last = str(panel.timestamps[0])[:19], str(panel.timestamps[-1])[:19]
        raise DataError(
            f"{where}: {bad.size} row timestamp(s) match no {panel.timeframe} bar, first {str(bad[0])[:19]} "
            f"(bars run {first} .. {last})",
            hint="each row must be the UTC timestamp of a bar whose close the decision is taken at",
        )
    if len(idx) == 0:
        raise DataError(f"{where}: no weight rows", hint="add at least one row: timestamp,SYM1,...")
    out = np.full((len(panel), panel.n_assets), np.nan)
    out[: idx[0]] = 0.0
    rows = np.zeros((len(stamps), panel.n_assets))
    for j, s in enumerate(symbols):
        rows[:, panel.symbols.index(s)] = values[:, j]
    nxt = _next_real_bars(np.asarray(panel.filled, dtype=bool))
    moved = lost = 0
    # Rows in time order: a later row landing on the same (deferred) bar overrides an earlier one.
    for i, t in enumerate(idx):
        pos = nxt[t]
        live = pos < len(panel)
        lost += int((~live).sum())
        moved += int((pos[live] != t).sum())
        cols = np.flatnonzero(live)
        out[pos[live], cols] = rows[i, live]
    return out, moved, lost


def _check_columns(path: str | Path, symbols: tuple[str, ...], loaded: tuple[str, ...] | list[str]) -> None:
    """Every column of the weights file must be a loaded symbol (with a "did you mean")."""
    from mqc.core.config import did_you_mean

    unknown = [s for s in symbols if s not in loaded]
    if unknown:
        guess = did_you_mean(unknown[0], loaded) if len(unknown) == 1 else ""
        raise DataError(
            f"{path}: column(s) {', '.join(unknown)} are not among the loaded symbols {', '.join(loaded)}{guess}",
            hint="add them to --symbols, or remove those columns from the file",
        )


def _drop_rows_outside(
    stamps: np.ndarray, values: np.ndarray, panel: Panel, path: str | Path
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """Drop weight rows before the first or after the last bar (a file spanning its symbols' union of
    dates is routine). Rows inside the bars that match none stay an error (``_align``)."""
    first, last = panel.timestamps[0], panel.timestamps[-1]
    keep = (stamps >= first) & (stamps <= last)
    if keep.all():
        return stamps, values, None
    if not keep.any():
        raise DataError(
            f"{path}: none of its {len(stamps)} rows ({str(stamps[0])[:10]} .. {str(stamps[-1])[:10]}) fall within the "
            f"{panel.timeframe} bars, which run {str(first)[:19]} .. {str(last)[:19]}",
            hint="load bars covering the file's dates (--symbols, --data-root, --timeframe)",
        )
    parts = []
    for mask in (stamps < first, stamps > last):
        if mask.any():
            d = stamps[mask]
            parts.append(f"{int(mask.sum())} from {str(d[0])[:19]} to {str(d[-1])[:19]}")
    n = int((~keep).sum())
    warning = (
        f"{Path(path).name}: {n} of {len(stamps)} weight rows lie outside the {panel.timeframe} bars "
        f"({str(first)[:19]} .. {str(last)[:19]}) and were dropped: {'; '.join(parts)}"
    )
    return stamps[keep], values[keep], {"rows": n, "warning": warning}


def _next_real_bars(filled: np.ndarray) -> np.ndarray:
    """``[T, A]``: for each bar and asset, the first bar >= t whose close is real (not forward-filled);
    ``T`` where none is left."""
    T = len(filled)
    pos = np.where(filled, T, np.arange(T)[:, None])
    # a running minimum from the end: the nearest real bar at or after t
    return np.minimum.accumulate(pos[::-1], axis=0)[::-1]


def carry_into_segment(targets: np.ndarray, panel: Panel, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """Start a segment ``[lo, hi)`` from the target in force at its first bar, not from cash.

    For each asset without a target of its own at ``lo``, the last target at or before ``lo``
    (0 before the file's first row) is placed on the asset's first real bar in the segment, unless a
    newer target already sits between ``lo`` and that bar. Returns the new targets and how many
    assets were carried in with a non-zero weight.
    """
    out = targets.copy()
    nxt = _next_real_bars(np.asarray(panel.filled[lo:hi], dtype=bool)) + lo
    carried = 0
    for a in range(panel.n_assets):
        col = targets[: lo + 1, a]
        have = np.flatnonzero(~np.isnan(col))
        if not have.size or have[-1] == lo:
            continue
        pos = int(nxt[0, a])
        if pos >= hi or not np.isnan(targets[lo : pos + 1, a]).all():
            continue
        out[pos, a] = col[have[-1]]
        carried += bool(col[have[-1]] != 0.0)
    return out, carried


def run_weights_backtest(
    weights_path: str | Path,
    data_cfg: DataConfig | None = None,
    backtest_cfg: BacktestConfig | None = None,
    market: MarketConfig | None = None,
    *,
    split_cfg: SplitConfig | None = None,
    out_dir: str | Path | None = None,
    fit_windows: bool | None = None,
    write: bool = True,
    progress: Progress = NULL,
) -> BacktestReport:
    """Backtest a weights file (see ``align_weights`` for how rows map to bars).

    Args:
        weights_path: CSV ``timestamp,SYM1,...`` of target weights decided at each row's close.
        data_cfg: bars to load (default symbols: the file's columns).
        backtest_cfg: segment (default split here is whatever the config says), windows, costs.
        market: cost model (cost overrides of ``backtest_cfg`` apply on top).
        fit_windows: as in ``run_checkpoint_backtest``.
    Returns:
        BacktestReport (``source["capped_targets"]``: target rows scaled down to the leverage cap). Raises DataError/ArtifactNotFound as ``read_weights_file``/``load_panel``.
    """
    cfg = backtest_cfg or BacktestConfig()
    dcfg = data_cfg or DataConfig()
    stamps, symbols, values = read_weights_file(weights_path)
    if not dcfg.symbols:
        dcfg = dataclasses.replace(dcfg, symbols=symbols)
    # the bars first: a --symbols entry that is not stored gets the loader's own "did you mean"
    panel = load_panel(config=dcfg)
    _check_columns(weights_path, symbols, panel.symbols)
    stamps, values, outside = _drop_rows_outside(stamps, values, panel, weights_path)
    targets, moved, lost = _align(stamps, symbols, values, panel, str(weights_path))
    lo, hi, seg = select_segment(panel, cfg, split_cfg or SplitConfig())
    first_row = int(np.searchsorted(panel.timestamps, stamps[0], side="left"))
    if cfg.start is None and lo < first_row < hi:
        # Bars before the file's first row hold no decision: scoring them as cash would dilute the
        # strategy's Sharpe/CAGR while the benchmarks and the significance test run over them too.
        # Without an explicit --start the segment begins at the first weights row.
        seg["skipped_before_first_row"] = first_row - lo
        lo = first_row
    seg["active_from"] = "first weights row" if seg.get("skipped_before_first_row") else "segment start"
    carried = 0
    if lo > 0:
        targets, carried = carry_into_segment(targets, panel, lo, hi)
    mkt = _market_with_overrides(market or MarketConfig(), cfg)
    source = {
        "type": "weights",
        "name": Path(weights_path).name,
        "path": str(weights_path),
        "symbols": list(symbols),
        "rows": len(stamps),  # rows inside the bars (see rows_outside_bars)
        # targets on a bar where the asset's close was forward-filled, traded at its next real bar
        "deferred_targets": moved,
        "unexecuted_targets": lost,
        "carried_into_segment": carried,
    }
    _add_panel_warnings(seg, panel)
    if outside is not None:
        source["rows_outside_bars"] = outside["rows"]
        seg.setdefault("warnings", []).append(outside["warning"])
    report = evaluate(panel, targets, mkt, cfg, lo=lo, hi=hi, source=source, segment=seg, fit_windows=fit_windows,
                      cost_overrides=_overrides(cfg), progress=progress)
    shorts, crypto_only = count_clipped_shorts(report.result, panel.asset_classes, mkt)
    report.source["clipped_short_targets"] = shorts
    if shorts:
        why = "crypto is long-only (market.crypto_long_only)" if crypto_only else "shorting is off (market.allow_short = false; pass --enable-shorting)"
        report.segment.setdefault("warnings", []).append(f"{shorts} target row(s) hold shorts that were set to 0: {why}")
    capped = count_capped_targets(report.result, panel.asset_classes, mkt)
    report.source["capped_targets"] = capped
    if capped:
        report.segment.setdefault("warnings", []).append(
            f"{capped} target row(s) exceed the leverage cap (max_gross_leverage {mkt.max_gross_leverage:g}, "
            f"overnight {mkt.max_overnight_leverage:g}) and were scaled down proportionally"
        )
    if write:
        write_report(report, out_dir)
    return report
