"""Where target weights come from: a checkpoint's strategy, or a weights file. One call each.

``run_checkpoint_backtest`` is what ``mqc backtest --checkpoint`` and ``mqc quickstart`` call;
``run_weights_backtest`` serves ``mqc backtest --weights``. Both load bars with ``load_panel``,
choose the segment (time split, then ``start``/``end``), replay through ``evaluate`` and write the
report unless ``write=False``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import runs
from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.report import BacktestReport, evaluate, write_report
from mqc.core.backtest.segment import select_segment
from mqc.core.backtest.weights_file import (
    carry_into_segment,
    check_columns,
    drop_rows_outside,
    place_weights,
    read_weights_file,
)
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.data.panel import Panel, load_panel
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.errors import ArtifactNotFound, CheckpointError, DataError
from mqc.core.market.config import MarketConfig
from mqc.core.progress import NULL, Progress


def count_capped_targets(result: Any, asset_classes: tuple[str, ...], market: MarketConfig) -> int:
    """Target rows in the replay whose gross leverage (after shorting rules) exceeds the cap of their bar.

    Such rows are scaled down proportionally by ``constrain_weights``; counting them makes it visible.
    """
    from mqc.core.market.fills import constrain_weights

    t = np.asarray(result.target_weights, dtype=np.float64)
    rows = ~np.isnan(t).all(axis=1)
    if not rows.any():
        return 0
    w = np.nan_to_num(t[rows])
    capped = constrain_weights(w, asset_classes, market, overnight=np.asarray(result.overnight)[rows])
    # The allowed book is the same as the requested one unless the leverage cap bit.
    clipped = constrain_weights(
        w, asset_classes, dataclasses.replace(market, max_gross_leverage=1e12, max_overnight_leverage=1e12)
    )
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
    from mqc.core.market.fills import constrain_weights

    t = np.nan_to_num(np.asarray(result.target_weights, dtype=np.float64))
    # The market's own shorting rule, without the leverage caps (``count_capped_targets`` counts those).
    uncapped = dataclasses.replace(market, max_gross_leverage=1e12, max_overnight_leverage=1e12)
    allowed = constrain_weights(t, asset_classes, uncapped)
    bad = ((t < 0) & (allowed >= 0) & (allowed != t)).any(axis=1)
    return int(bad.sum()), bool(market.allow_short and bad.any())


def _evaluate(
    panel: Panel,
    targets: np.ndarray,
    market: MarketConfig,
    cfg: BacktestConfig,
    lo: int,
    hi: int,
    source: dict[str, Any],
    seg: dict[str, Any],
    fit_windows: bool | None,
    progress: Progress,
) -> BacktestReport:
    """The one replay + report of every weight-level backtest (checkpoint, weights file, policy)."""
    return evaluate(
        panel,
        targets,
        market,
        cfg,
        lo=lo,
        hi=hi,
        source=source,
        segment=seg,
        fit_windows=fit_windows,
        cost_overrides=_overrides(cfg),
        progress=progress,
    )


def _written(report: BacktestReport, write: bool, out_dir: str | Path | None) -> BacktestReport:
    if write:
        write_report(report, out_dir)
    return report


def _add_panel_warnings(segment: dict[str, Any], panel: Panel) -> None:
    """Data warnings from alignment (e.g. heavy forward-filling) travel with the segment's warnings."""
    if panel.report.warnings:
        segment.setdefault("warnings", []).extend(f"data: {w}" for w in panel.report.warnings)


def _market_with_overrides(market: MarketConfig, config: BacktestConfig) -> MarketConfig:
    return market.with_cost(config.cost_bps, config.slippage_bps)


def _overrides(config: BacktestConfig) -> dict[str, float]:
    return {k: v for k, v in (("cost_bps", config.cost_bps), ("slippage_bps", config.slippage_bps)) if v is not None}


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
    from mqc.core.policy.strategy import strategy_from_checkpoint

    cfg = backtest_cfg or BacktestConfig()
    path, resolved_note = runs.resolve_checkpoint(ref)
    ckpt = runs.read_checkpoint(path)
    strategy = strategy_from_checkpoint(ckpt, path)
    want = tuple(s.upper() for s in strategy.symbols)
    dcfg = data_cfg or DataConfig()
    run_doc = runs.checkpoint_run_config(path)
    tables = runs.config_tables(run_doc)
    stored_data = runs.stored_config(tables, "data", DataConfig, path)
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
            f"{path}: the loaded data has symbols {', '.join(panel.symbols)}, the checkpoint needs"
            f" {', '.join(symbols)}",
            hint="drop --exclude/--max-assets so every checkpoint symbol is loaded",
        )
    other_bars = parse_timeframe(panel.timeframe) != parse_timeframe(strategy.timeframe)
    if other_bars and not allow_mismatch:
        raise DataError(
            f"{path}: the checkpoint was trained on {strategy.timeframe} bars but the data has {panel.timeframe} bars",
            hint=(
                f"drop --timeframe (or pass --timeframe {strategy.timeframe}); --allow-mismatch replays it on "
                f"{panel.timeframe} bars as a transfer test"
            ),
        )
    transfer = None
    if allow_mismatch and (other_bars or symbols != want):
        strategy, transfer = _retarget(strategy, panel, path)
    split = split_cfg or runs.stored_config(tables, "split", SplitConfig, path) or SplitConfig()
    # The checkpoint's own split always wins: other fractions (a profile's [split]) would move the
    # test segment onto bars the policy was trained or selected on. --split all / --start / --end
    # are the explicit ways to look elsewhere (and the report warns on any overlap).
    stored_split = runs.stored_split(ckpt, run_doc)
    lo, hi, seg = select_segment(
        panel, cfg, split, strategy.lookback, stored_split, warmup=getattr(strategy, "warmup", 0)
    )
    if stored_split and split_cfg is not None:
        seg["split_config_ignored"] = {
            "val_frac": split_cfg.val_frac,
            "test_frac": split_cfg.test_frac,
            "embargo": split_cfg.embargo,
        }
    history = panel.slice(0, hi)  # the strategy never sees a bar after the segment's end
    # rows before the segment are never traded: a strategy that can skip them (target_weights_from) does
    decide_from = getattr(strategy, "target_weights_from", None)
    raw = decide_from(history, max(lo - 1, 0)) if decide_from is not None else strategy.target_weights(history)
    targets = np.asarray(raw, dtype=np.float64)
    if targets.shape != (hi, panel.n_assets):
        raise CheckpointError(
            f"{path}: strategy {strategy.kind!r} returned weights of shape {targets.shape}, expected"
            f" {(hi, panel.n_assets)}"
        )
    full = np.zeros((len(panel), panel.n_assets))
    full[:hi] = targets
    market = _market_with_overrides(strategy.market, cfg)
    source = {
        "type": "checkpoint",
        "name": f"{strategy.kind} {runs.run_id(path)}",
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
    report = _evaluate(panel, full, market, cfg, lo, hi, source, seg, fit_windows, progress)
    return _written(report, write, out_dir)


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
        BacktestReport (``source["capped_targets"]``: target rows scaled down to the leverage cap). Raises
        DataError/ArtifactNotFound as ``read_weights_file``/``load_panel``.
    """
    cfg = backtest_cfg or BacktestConfig()
    dcfg = data_cfg or DataConfig()
    stamps, symbols, values = read_weights_file(weights_path)
    if not dcfg.symbols:
        dcfg = dataclasses.replace(dcfg, symbols=symbols)
    # the bars first: a --symbols entry that is not stored gets the loader's own "did you mean"
    panel = load_panel(config=dcfg)
    check_columns(weights_path, symbols, panel.symbols)
    stamps, values, outside = drop_rows_outside(stamps, values, panel, weights_path)
    targets, moved, lost = place_weights(stamps, symbols, values, panel, str(weights_path))
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
    report = _evaluate(panel, targets, mkt, cfg, lo, hi, source, seg, fit_windows, progress)
    shorts, crypto_only = count_clipped_shorts(report.result, panel.asset_classes, mkt)
    report.source["clipped_short_targets"] = shorts
    if shorts:
        why = (
            "crypto is long-only (market.crypto_long_only)"
            if crypto_only
            else "shorting is off (market.allow_short = false; pass --enable-shorting)"
        )
        report.segment.setdefault("warnings", []).append(
            f"{shorts} target row(s) hold shorts that were set to 0: {why}"
        )
    capped = count_capped_targets(report.result, panel.asset_classes, mkt)
    report.source["capped_targets"] = capped
    if capped:
        report.segment.setdefault("warnings", []).append(
            f"{capped} target row(s) exceed the leverage cap (max_gross_leverage {mkt.max_gross_leverage:g}, "
            f"overnight {mkt.max_overnight_leverage:g}) and were scaled down proportionally"
        )
    return _written(report, write, out_dir)


def run_policy_backtest(
    policy: str,
    data_cfg: DataConfig,
    backtest_cfg: BacktestConfig | None = None,
    market: MarketConfig | None = None,
    *,
    cube_cfg: Any = None,
    settings: Any = None,
    split_cfg: SplitConfig | None = None,
    out_dir: str | Path | None = None,
    fit_windows: bool | None = None,
    write: bool = True,
    progress: Progress = NULL,
) -> BacktestReport:
    """Backtest a behaviour policy (``topk``, ``kelly``, ``blended``: ``mqc.core.gym.policies``) on the
    feature cube of the loaded bars (``cube_cfg``: forecaster and its settings).

    Raises:
        ConfigError: unknown policy or forecaster. DataError: too few bars for the cube, an empty segment.
    """
    from mqc.core.gym.cube import build_cube, slice_cube
    from mqc.core.gym.policies import BehaviourPolicy, PolicySettings

    cfg = backtest_cfg or BacktestConfig()
    mkt = _market_with_overrides(market or MarketConfig(), cfg)
    panel = load_panel(config=data_cfg)
    strategy = BehaviourPolicy(
        policy,
        tuple(panel.symbols),
        panel.timeframe,
        mkt,
        **({"cube_cfg": cube_cfg} if cube_cfg else {}),
        settings=settings or PolicySettings(),
    )
    lo, hi, seg = select_segment(panel, cfg, split_cfg or SplitConfig(), strategy.lookback, warmup=strategy.warmup)
    # the cube of the whole panel, rows up to the segment's end: each row uses bars <= its own only
    cube = build_cube(panel, strategy.cube_cfg, progress=progress)
    targets = np.zeros((len(panel), panel.n_assets))
    targets[:hi] = strategy.target_weights(panel.slice(0, hi), slice_cube(cube, 0, hi))
    source = {
        "type": "policy",
        "name": f"{policy} ({strategy.cube_cfg.forecaster})",
        "kind": policy,
        "symbols": list(panel.symbols),
        "forecaster": strategy.cube_cfg.forecaster,
        "settings": dataclasses.asdict(strategy.settings),
        "feature_cube": cube.key,
    }
    _add_panel_warnings(seg, panel)
    report = _evaluate(panel, targets, mkt, cfg, lo, hi, source, seg, fit_windows, progress)
    return _written(report, write, out_dir)
