"""``mqc backtest``: replay a checkpoint or a weights file with benchmarks and write a report."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from mqc.commands import _options as o
from mqc.commands._console import (
    RichProgress,
    fmt_num,
    fmt_pct,
    info,
    out,
    print_json,
    state,
    want_json,
    warn,
)


class IntrabarChoice(StrEnum):
    """``--intrabar``: which order of events inside a bar is assumed when both could have filled."""

    conservative = "conservative"
    optimistic = "optimistic"


class FitMethod(StrEnum):
    grid = "grid"
    de = "de"


class SplitChoice(StrEnum):
    """Segments ``--split`` accepts (Typer reports any other value as a usage error)."""

    test = "test"
    val = "val"
    all = "all"


SPLIT = o.Flag(
    ("--split",),
    "Segment: test, val or all (default: test for checkpoints, all for weights).",
    sets="backtest.split",
)
WINDOW = o.Flag(
    ("--window-length",), "Bars per rolling window (overlapping slices of one replay).", sets="backtest.window_length"
)
STRIDE = o.Flag(("--stride",), "Bars between window starts.", sets="backtest.stride")
NO_TRADES = o.Flag(
    ("--no-trades",),
    "Skip trades.jsonl.",
    sets="backtest.write_trades",
    default=False,
    convert=lambda v: False if v else None,
)
NO_PLOTS = o.Flag(
    ("--no-plots",), "Skip the PNG plots.", sets="backtest.plots", default=False, convert=lambda v: False if v else None
)


def backtest(
    ctx: typer.Context,
    checkpoint: str = o.CHECKPOINT(),
    weights: str = typer.Option(None, "--weights", "-w", help="CSV of target weights: timestamp,SYM1,SYM2,..."),
    policy: str = o.POLICY(help="Behaviour policy on forecast features: topk, kelly or blended (needs --symbols)."),
    forecaster: str = o.FORECASTER(help="--policy: forecaster of the feature cube (default bootstrap)."),
    top_k: int = o.TOP_K(help="--policy topk/blended: assets held (default 1)."),
    strategy: str = o.STRATEGY(),
    model: str = o.MODEL(
        help="--strategy: next-bar forecaster (mqc forecast models), or best (the hyperparams/best files)."
    ),
    model_path: str = o.MODEL_PATH(help="--strategy: model weights (Chronos, Kronos)."),
    intrabar: IntrabarChoice = typer.Option(
        None,
        "--intrabar",
        help="--strategy: entry and exit both touched in one bar: conservative (default) or optimistic.",
    ),
    refit_every: int = o.REFIT_EVERY(help="--strategy: bars between walk-forward re-fits."),
    fit_window: int = o.FIT_WINDOW(help="--strategy: trailing bars per fit (0: no fit)."),
    fit_method: FitMethod = typer.Option(None, "--fit-method", help="--strategy: grid or de (differential evolution)."),
    participation: float = typer.Option(
        None, "--participation", help="--strategy: max fraction of a bar's volume traded per symbol."
    ),
    symbols: str = o.SYMBOLS(
        help="Comma-separated symbols (default: the checkpoint's / the file's).", convert=o.split_list
    ),
    data_root: str = o.DATA_ROOT(help="Folder of per-symbol CSV/Parquet bars instead of the catalog."),
    timeframe: str = o.TIMEFRAME(help="Bar size (default: the checkpoint's, else 1d)."),
    split: SplitChoice = SPLIT(),
    window_length: int = WINDOW(),
    stride: int = STRIDE(),
    start: str = o.START(help="First timestamp evaluated (UTC, inclusive), within the split.", sets="backtest.start"),
    end: str = o.END(help="Last timestamp evaluated (UTC, inclusive), within the split.", sets="backtest.end"),
    cost_bps: float = o.COST_BPS(
        help="Stress test: commission on every non-cash asset, bps.", sets="backtest.cost_bps"
    ),
    slippage_bps: float = o.SLIPPAGE_BPS(
        help="Stress test: slippage on every non-cash asset, bps.", sets="backtest.slippage_bps"
    ),
    out_dir: str = o.OUT(help="Report directory (default: <runs dir>/backtests/<UTC time>)."),
    no_trades: bool = NO_TRADES(),
    no_plots: bool = NO_PLOTS(),
    allow_mismatch: bool = typer.Option(
        False,
        "--allow-mismatch",
        help=(
            "Transfer test: replay on another bar size, or on other symbols of the same count (mapped in order), with a"
            " warning."
        ),
    ),
    enable_shorting: bool | None = o.SHORTING(
        help=(
            "Weights files and --strategy: allow shorts (default: the profile's [market] allow_short, off);"
            " checkpoints use their own market."
        ),
    ),
    allow_altered: bool = o.ALLOW_ALTERED(),
    json_out: bool = o.JSON(),
) -> None:
    """Replay a strategy bar by bar with costs, against cash, buy & hold, 1/N and inverse-vol benchmarks.

    Example: mqc backtest --checkpoint latest --split test --cost-bps 5
    """
    import dataclasses
    from pathlib import Path

    from mqc.core.backtest.config import BacktestConfig
    from mqc.core.backtest.runner import run_checkpoint_backtest, run_weights_backtest
    from mqc.core.data.config import DataConfig, SplitConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.runs import resolve_checkpoint

    if sum(x is not None for x in (checkpoint, weights, strategy, policy)) != 1:
        raise typer.BadParameter(
            "give exactly one of them (e.g. mqc backtest --checkpoint latest)",
            param_hint="'--checkpoint' / '--weights' / '--strategy' / '--policy'",
        )
    if policy is not None and policy not in ("topk", "kelly", "blended"):
        raise typer.BadParameter(f"{policy!r} is not one of topk, kelly, blended", param_hint="'--policy'")
    if policy is None and (forecaster is not None or top_k is not None):
        raise typer.BadParameter("applies to --policy only", param_hint="'--forecaster' / '--top-k'")
    order_flags = dict(
        intrabar=intrabar.value if intrabar is not None else None,
        refit_every=refit_every,
        fit_window=fit_window,
        fit_method=fit_method.value if fit_method is not None else None,
        participation=participation,
    )
    if strategy is None and (model is not None or any(v is not None for v in order_flags.values())):
        raise typer.BadParameter("applies to --strategy only", param_hint="'--model' / '--intrabar' / '--fit-*'")
    if checkpoint is not None and enable_shorting is not None:
        raise typer.BadParameter(
            "applies to --weights only: a checkpoint replays the market it was trained under",
            param_hint="'--enable-shorting'",
        )
    profile = state().profile
    flags = o.given(ctx)
    resolved = resolve_with_profile(BacktestConfig, profile, flags=flags.get("backtest", {}))
    cfg = resolved.value
    data_res = resolve_with_profile(DataConfig, profile, flags=flags.get("data", {}))
    data = data_res.value
    if data.data_root is not None:
        data = dataclasses.replace(data, data_root=str(Path(data.data_root).expanduser().resolve()))
    fit_windows = resolved.sources["window_length"] == "default"  # shrink only a window the user did not ask for
    split_res = resolve_with_profile(SplitConfig, profile)
    split_cfg = split_res.value if any(s != "default" for s in split_res.sources.values()) else None
    market_res = resolve_with_profile(MarketConfig, profile, flags=flags.get("market", {}))
    with RichProgress() as progress:
        if strategy is not None:
            from mqc.commands._backtest_orders import order_backtest

            report = order_backtest(
                strategy,
                model,
                model_path,
                order_flags,
                data,
                cfg,
                resolved.sources,
                split_cfg,
                market_res.value,
                out_dir,
                fit_windows,
                progress,
            )
        elif checkpoint is not None:
            path, note = resolve_checkpoint(checkpoint)
            if note:
                info(note)  # which file a bare best.pt / latest.pt / 'latest' named, before the replay
            report = run_checkpoint_backtest(
                path,
                data,
                cfg,
                split_cfg=split_cfg,
                out_dir=out_dir,
                allow_mismatch=allow_mismatch,
                data_sources=data_res.sources,
                fit_windows=fit_windows,
                progress=progress,
            )
            report.source["resolved"] = note
            ignored = {k: v for k, v in market_res.sources.items() if v != "default"}
            if ignored:
                # the checkpoint's own market (what it was trained under) is replayed; only flags override
                report.segment["market_config_ignored"] = sorted(ignored)
                report.segment.setdefault("warnings", []).append(
                    f"the profile/env [market] settings ({', '.join(sorted(ignored))}) are ignored for a checkpoint: "
                    "its own market is used (override costs with --cost-bps/--slippage-bps)"
                )
        elif policy is not None:
            report = _policy_backtest(
                policy, forecaster, top_k, data, cfg, market_res.value, split_cfg, out_dir, fit_windows, progress
            )
        else:
            if resolved.sources["split"] == "default":
                cfg = dataclasses.replace(cfg, split="all")
            report = run_weights_backtest(
                weights,
                data,
                cfg,
                market_res.value,
                split_cfg=split_cfg,
                out_dir=out_dir,
                fit_windows=fit_windows,
                progress=progress,
            )
    for message in report.segment.get("warnings", []):
        warn(message)  # stderr, also with --json (the JSON carries them under segment.warnings)
    if want_json(json_out):
        print_json(report.to_dict())
        return
    render_summary(report)


def _policy_backtest(
    policy: str,
    forecaster: str | None,
    top_k: int | None,
    data: Any,
    cfg: Any,
    market: Any,
    split_cfg: Any,
    out_dir: str | None,
    fit_windows: bool,
    progress: Any,
) -> Any:
    """``--policy``: the [cube] table (profile, then --forecaster) and the policy settings, then one core call."""
    from mqc.core.backtest.runner import run_policy_backtest
    from mqc.core.gym.config import CubeConfig
    from mqc.core.gym.policies import PolicySettings
    from mqc.core.profiles import resolve_with_profile

    if not data.symbols:
        raise typer.BadParameter("--policy needs the symbols to trade", param_hint="'--symbols'")
    cube = resolve_with_profile(CubeConfig, state().profile, flags=dict(forecaster=forecaster)).value
    settings = PolicySettings(k=top_k) if top_k is not None else PolicySettings()
    return run_policy_backtest(
        policy,
        data,
        cfg,
        market,
        cube_cfg=cube,
        settings=settings,
        split_cfg=split_cfg,
        out_dir=out_dir,
        fit_windows=fit_windows,
        progress=progress,
    )


def render_summary(report: Any) -> None:
    """The Rich summary table (strategy vs benchmarks), the significance line and the file paths.

    Public so ``mqc quickstart`` prints the same table.
    """
    from rich.table import Table

    from mqc.core.market.costs import cost_line

    seg = report.segment
    t = Table(
        title=(
            f"{report.source.get('name', 'strategy')}: {seg['split']} segment {seg['first'][:10]} .. {seg['last'][:10]}"
            f" ({seg['bars']} bars)"
        )
    )
    for col in ("", "total return", "CAGR", "vol", "Sharpe", "Sortino", "max DD", "Calmar", "turnover"):
        t.add_column(col, justify="left" if not col else "right", no_wrap=not col)
    for label, m in report.summary_rows():
        t.add_row(
            label,
            fmt_pct(m["total_return"]),
            fmt_pct(m["annual_return"]),
            fmt_pct(m["volatility"]),
            fmt_num(m["sharpe"], 2),
            fmt_num(m["sortino"], 2),
            fmt_pct(m["max_drawdown"] + 0.0),
            fmt_num(m["calmar"], 2),
            fmt_pct(m["turnover"]),
            style="bold" if label == "strategy" else None,
        )
    out.print(cost_line(report.data["costs"]))
    out.print(t)
    if report.orders is not None:
        from mqc.commands._backtest_orders import render_orders

        render_orders(report)
    a, s = report.aggregates, report.significance
    if a.get("window_note"):
        out.print(f"note: {a['window_note']}")
    if a["windows"]:
        out.print(
            f"rolling windows (overlapping slices of one replay, not re-fits): {a['windows']} windows of"
            f" {a['window_length']} bars: Sharpe mean {a['sharpe_mean']:.2f}, return mean"
            f" {fmt_pct(a['cumulative_return_mean'])}, worst max DD {fmt_pct(a['max_drawdown_worst'])}"
        )
    if seg.get("skipped_before_first_row"):
        out.print(
            f"evaluated from the weights file's first row; {seg['skipped_before_first_row']} earlier bars "
            "(no decision yet) are not scored (pass --start to choose the range)"
        )
    if s.get("p_value") is not None:
        out.print(
            f"Sharpe vs rebalanced 1/N: {s['sharpe_diff']:+.2f} (95% CI {s['ci_low']:+.2f} .. {s['ci_high']:+.2f}, "
            f"p = {s['p_value']:.3f}); PSR {s['psr']:.2f}, DSR {s['dsr']:.2f}"
        )
    if report.out_dir is not None:
        out.print(f"report: {report.files.get('report')}")
        for key in ("equity_plot", "weights_plot"):
            if key in report.files:
                out.print(f"plot:   {report.files[key]}")
