"""``mqc sweep train KIND --grid FILE`` (any registered trainer), ``mqc sweep backtest --strategy NAME
--grid FILE`` (order-strategy and forecaster settings, by what they trade) and ``mqc sweep forecast
--model NAME --grid FILE`` (forecaster settings, by forecast error): a grid or an Optuna search, chosen on val."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, err, out, print_json, state, want_json
from mqc.commands.train import _common as c

app = typer.Typer(help="Run experiment grids and searches over a trainer (local pool or Ray).", no_args_is_help=True)


class Backend(StrEnum):
    """Values of ``--backend``."""

    local = "local"
    ray = "ray"


class Sampler(StrEnum):
    """Values of ``--sampler``."""

    tpe = "tpe"
    random = "random"


class Pruner(StrEnum):
    """Values of ``--pruner``."""

    none = "none"
    median = "median"
    asha = "asha"


# Options of every `mqc sweep` command (declared once here: only the sweep commands have them).
SAMPLES = o.Flag(("--samples",), "Sample N configurations (random/TPE) instead of the grid.")
SAMPLER = o.Flag(("--sampler",), "Sampler of --samples: tpe or random.", default=Sampler.tpe)
PRUNER = o.Flag(("--pruner",), "Stop bad trials early: none, median or asha.", default=Pruner.none)
SWEEP_DIR = o.Flag(("--sweep-dir",), "Sweep directory (default: <runs dir>/sweeps/KIND-GRID).")
STORAGE = o.Flag(("--storage",), "Optuna database URL shared by several machines.")
BACKEND = o.Flag(("--backend",), "local (process pool) or ray (Ray Tune trials).", default=Backend.local)
ADDRESS = o.Flag(("--address",), "Ray cluster: ray://HOST:PORT, HOST:PORT or auto (default: a local instance).")
MAX_CONCURRENT = o.Flag(("--max-concurrent",), "Trials at a time (default: the core count).")
CPUS_PER_TRIAL = o.Flag(("--cpus-per-trial",), "CPUs (torch threads) per trial.", default=1.0)
GPUS_PER_TRIAL = o.Flag(("--gpus-per-trial",), "GPUs per trial (Ray).", default=0.0)
GRID_HELP = "Sweep file (TOML of profile keys: lists, {low, high} ranges)."
SAVE_BEST = o.Flag(
    ("--save-best",),
    "Write the chosen settings as each symbol's hyperparams/<model>/<SYMBOL>.<tf>.json (as mqc forecast tune).",
    default=False,
)


@app.command("train")
def train(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="A trainer of `mqc train` (dm, sharpe, kronos, ...)."),
    grid: Path = typer.Option(..., "--grid", help=GRID_HELP),
    samples: int = SAMPLES(),
    sampler: Sampler = SAMPLER(),
    pruner: Pruner = PRUNER(),
    metric: str = typer.Option(
        None, "--metric", help="Val metric to select on (default: the trainer's select_metric)."
    ),
    sweep_dir: Path = SWEEP_DIR(),
    storage: str = STORAGE(),
    backend: Backend = BACKEND(),
    address: str = ADDRESS(),
    max_concurrent: int = MAX_CONCURRENT(),
    cpus_per_trial: float = CPUS_PER_TRIAL(),
    gpus_per_trial: float = GPUS_PER_TRIAL(),
    tensorboard: str = o.TENSORBOARD(),
    wandb: str = o.WANDB(),
    data_root: str = o.DATA_ROOT(),
    symbols: str = o.SYMBOLS(),
    timeframe: str = o.TIMEFRAME(),
    start: str = o.START(),
    end: str = o.END(),
    cost_bps: float = o.COST_BPS(),
    quiet: bool = o.QUIET(),
    json_out: bool = o.JSON(),
) -> None:
    """Train every configuration of a sweep file; choose on val, report the choice's test figures once.

    Example: mqc sweep train dm --grid sweep.toml --max-concurrent 2
    """
    from mqc.core import config
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.train.harness import trainer_spec

    spec = trainer_spec(kind)
    flags = o.given(ctx)
    resolved = c.resolve_common(flags)
    for cls in (spec.config, *spec.extra_tables):
        resolved[config.table_name(cls)] = resolve_with_profile(cls, state().profile)
    _sweep(ctx, kind, grid, resolved, sweep_dir or Path(f"{kind}-{grid.stem}"), c.resolve_log(flags), quiet, json_out)


@app.command("backtest")
def backtest(
    ctx: typer.Context,
    grid: Path = typer.Option(..., "--grid", help=GRID_HELP + " Tables: orders, forecast, market, split, data."),
    strategy: str = o.STRATEGY("maxdiff", help="Order strategy (the base of orders.strategy)."),
    model: str = o.MODEL(help="Next-bar forecaster of the strategy (the base of forecast.model)."),
    model_path: str = o.MODEL_PATH(),
    fit_window: int = o.FIT_WINDOW(),
    refit_every: int = o.REFIT_EVERY(),
    samples: int = SAMPLES(),
    sampler: Sampler = SAMPLER(),
    metric: str = typer.Option(None, "--metric", help="Val metric to select on (default: sharpe)."),
    sweep_dir: Path = SWEEP_DIR(),
    storage: str = STORAGE(),
    backend: Backend = BACKEND(),
    address: str = ADDRESS(),
    max_concurrent: int = MAX_CONCURRENT(),
    cpus_per_trial: float = CPUS_PER_TRIAL(),
    gpus_per_trial: float = GPUS_PER_TRIAL(),
    data_root: str = o.DATA_ROOT(),
    symbols: str = o.SYMBOLS(),
    timeframe: str = o.TIMEFRAME(),
    start: str = o.START(),
    end: str = o.END(),
    cost_bps: float = o.COST_BPS(),
    quiet: bool = o.QUIET(),
    json_out: bool = o.JSON(),
) -> None:
    """Search `mqc backtest --strategy` settings ([orders], [forecast], ...) on the val split; report the
    choice's test figures once, its deflated Sharpe ratio counting every configuration tried.

    Example: mqc sweep backtest --strategy maxdiff --model naive --grid orders.toml --symbols SPY,QQQ
    """
    from mqc.core.backtest.config import OrderBacktestConfig
    from mqc.core.forecast.config import ForecastConfig
    from mqc.core.forecast.service import check_model
    from mqc.core.profiles import resolve_with_profile

    flags = o.given(ctx)
    resolved = c.resolve_common(flags)
    resolved.pop("features")  # an order backtest builds no training features
    profile = state().profile
    resolved["orders"] = resolve_with_profile(OrderBacktestConfig, profile, flags=flags.get("orders", {}))
    fres = resolve_with_profile(
        ForecastConfig,
        profile,
        flags=dict(model=model, model_id=model_path, timeframe=resolved["data"].value.timeframe),
    )
    check_model(fres.value.model, fres.sources.get("model", "default"))
    resolved["forecast"] = fres
    _sweep(ctx, "backtest", grid, resolved, sweep_dir or Path(f"backtest-{grid.stem}"), None, quiet, json_out)


@app.command("forecast")
def forecast(
    ctx: typer.Context,
    grid: Path = typer.Option(
        ..., "--grid", help=GRID_HELP + " Tables: forecast (the settings searched), forecast_eval (fixed values)."
    ),
    model: str = o.MODEL(help="Forecaster whose settings are searched (the base of forecast.model)."),
    metric: str = typer.Option(
        None,
        "--metric",
        help=f"Forecast metric to select on: {', '.join(o.PER_SYMBOL_METRICS)} (lower is better but hit_rate; "
        "default: [forecast_eval] metric, crps).",
        callback=o.choice(o.PER_SYMBOL_METRICS, "--metric"),
    ),
    origins: int = o.ORIGINS(help="Origins per symbol (validation + test), as mqc forecast tune."),
    step: int = o.STEP(),
    horizon: str = o.HORIZON(sets=None, help="Horizons scored, e.g. 1,7."),
    model_path: str = o.MODEL_PATH(),
    hyperparams_dir: str = o.HYPERPARAMS_DIR(),
    save_best: bool = SAVE_BEST(),
    samples: int = SAMPLES(),
    sampler: Sampler = SAMPLER(),
    sweep_dir: Path = SWEEP_DIR(),
    storage: str = STORAGE(),
    backend: Backend = BACKEND(),
    address: str = ADDRESS(),
    max_concurrent: int = MAX_CONCURRENT(),
    cpus_per_trial: float = CPUS_PER_TRIAL(),
    gpus_per_trial: float = GPUS_PER_TRIAL(),
    symbols: str = o.SYMBOLS(help="Comma-separated catalog symbols, each scored on its own origins."),
    timeframe: str = o.TIMEFRAME(),
    end: str = o.END(),
    quiet: bool = o.QUIET(),
    json_out: bool = o.JSON(),
) -> None:
    """Search a forecaster's settings by forecast error (CRPS, MASE, ...) on validation origins, each trial the
    per-setting evaluation of `mqc forecast tune`; report the choice's test figures once, with the number of
    configurations tried.

    Example: mqc sweep forecast --model ewma-vol --symbols SPY,QQQ --grid ewma.toml --metric crps
    """
    from mqc.core.data.config import DataConfig
    from mqc.core.forecast.config import EvalConfig, ForecastConfig
    from mqc.core.forecast.service import check_model
    from mqc.core.profiles import resolve_with_profile

    profile = state().profile
    data = resolve_with_profile(DataConfig, profile, flags=o.given(ctx).get("data", {}))
    ev = resolve_with_profile(
        EvalConfig,
        profile,
        flags={"origins": origins, "step": step, "horizons": o.int_list(horizon, "--horizon"), "metric": metric},
    )
    fres = resolve_with_profile(
        ForecastConfig,
        profile,
        flags={
            "model": model,
            "model_id": model_path,
            "hyperparams_dir": hyperparams_dir,
            "timeframe": data.value.timeframe,
        },
    )
    check_model(fres.value.model, fres.sources.get("model", "default"))
    resolved = {"data": data, "forecast": fres, "forecast_eval": ev}
    name = Path(f"forecast-{fres.value.model}-{grid.stem}")
    _sweep(ctx, "forecast", grid, resolved, sweep_dir or name, None, quiet, json_out, save_best=save_best)


def _sweep(
    ctx: typer.Context,
    kind: str,
    grid: Path,
    resolved: dict[str, Any],
    sweep_dir: Path,
    log: Any,
    quiet: bool,
    json_out: bool,
    *,
    save_best: bool = False,
) -> None:
    """The sweep options -> ``SweepRequest`` (base tables from ``resolved``), run it, render the table."""
    from mqc.core import config, paths
    from mqc.core.sweep.runner import SweepRequest, run_sweep

    if quiet:
        state().quiet = True
    p = ctx.params
    if not sweep_dir.is_absolute() and p.get("sweep_dir") is None:
        sweep_dir = paths.runs_dir() / "sweeps" / sweep_dir
    req = SweepRequest(
        kind=kind,
        grid_file=grid,
        sweep_dir=sweep_dir.expanduser().resolve(),
        base={t: config.to_dict(r.value) for t, r in resolved.items()},
        sources={t: dict(r.sources) for t, r in resolved.items()},
        samples=p.get("samples"),
        sampler=p["sampler"].value,
        pruner=p["pruner"].value if "pruner" in p else "none",
        storage=p.get("storage"),
        backend=p["backend"].value,
        address=p.get("address"),
        max_concurrent=p.get("max_concurrent") or os.cpu_count() or 1,
        cpus_per_trial=p["cpus_per_trial"],
        gpus_per_trial=p["gpus_per_trial"],
        metric=p.get("metric") if kind != "forecast" else None,  # forecast: the [forecast_eval] metric
        save_best=save_best,
        command_line=" ".join(["mqc", *sys.argv[1:]]),
        log=log,
    )
    try:
        with RichProgress() as progress:
            result = run_sweep(req, progress=progress)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "sweep_result", None)
        if partial is not None:
            render(partial, json_out, kind)
            err.print(f"stopped; re-run the same command to resume (finished trials are kept in {partial.sweep_dir})")
        raise
    render(result, json_out, kind)


def render(result: Any, json_out: bool, kind: str = "dm") -> None:
    """The summary table (best mean val metric first), the choice and its test figures."""
    if want_json(json_out):
        print_json(result.to_dict())
        return
    from rich.table import Table

    from mqc.commands._console import fmt_num, fmt_pct
    from mqc.core.sweep.summary import varying_keys

    m = result.metric
    keys = varying_keys(result.configs)
    n = result.counts
    fc = kind == "forecast"  # forecast errors: each figure a symbol's, lower is better (but hit_rate)
    from mqc.commands._forecast_view import fmt_metric, metric_header

    def fmt(name: str, x: float | None) -> str:
        return fmt_metric(name, x) if fc else fmt_num(x)

    side = ("coverage_90" if m != "coverage_90" else "mase") if fc else "total_return"
    seeds = max((len(c["seeds"]) for c in result.configs), default=1)
    side_label = f"val {metric_header(side)}" if fc else "val return"
    title = (
        f"sweep: {result.n_configs} configurations, {n['done']} trials run now ({n['skipped']} kept), "
        f"{n['failed']} failed, {n['pruned']} pruned; selected on val {m}"
        + (" (lower is better)" if result.lower else "")
        + ((", mean ± std over symbols" + (" x seeds" if seeds > 1 else "")) if fc else "")
    )
    t = Table(title=title)
    t.add_column("")
    for k in keys:
        t.add_column(k)
    t.add_column(f"val {metric_header(m) if fc else m} mean ± std", justify="right")
    t.add_column(side_label, justify="right")
    t.add_column("seeds ok", justify="right")
    t.add_column("pruned/failed", justify="right")
    chosen = result.chosen["config"] if result.chosen else None
    for cfg in result.configs[:30]:
        v = cfg["val"][m]
        cell = fmt(m, v["mean"]) + (f" ± {fmt(m, v['std'])}" if v["std"] is not None else "")
        row = ["chosen" if cfg["config"] == chosen else "", *[escape(str(cfg["overrides"].get(k))) for k in keys]]
        ret = cfg["val"].get(side, {}).get("mean")
        other = fmt(side, ret) if fc else fmt_pct(ret)
        t.add_row(*row, cell, other, f"{cfg['ok']}/{len(cfg['seeds'])}", f"{cfg['pruned']}/{cfg['failed']}")
    out.print(t)
    if len(result.configs) > 30:
        out.print(f"(top 30 of {len(result.configs)}; all in {result.sweep_dir / 'summary.md'})")
    test = result.test
    if test and fc:
        tm = test["metrics"]
        shown = [x for x in dict.fromkeys([m, "crps", "mase", "coverage_90"]) if x in tm]
        figures = ", ".join(
            f"{x} {fmt(x, tm[x]['mean'])}" + (f" ± {fmt(x, tm[x]['std'])}" if tm[x]["std"] is not None else "")
            for x in shown
        )
        n_sym = len(test["runs"][0].get("per_symbol") or {})
        out.print(
            f"TEST (once, chosen configuration, {len(test['runs'])} seed(s) x {n_sym} symbol(s)): {figures}; "
            f"a forecast metric, no deflated Sharpe ratio; {test['n_configs']} configurations tried"
        )
        out.print(f"test figures: {test['runs'][0]['report']}")
        for path in result.saved:
            out.print(f"wrote {path}")
    elif test:
        tm, dsr = test["metrics"], test["dsr"]
        sd = tm["sharpe"]["std"]
        out.print(
            f"TEST (once, chosen configuration, {len(test['runs'])} seed(s)): sharpe {fmt_num(tm['sharpe']['mean'])}"
            + (f" ± {fmt_num(sd)}" if sd is not None else "")
            + f", return {fmt_pct(tm['total_return']['mean'])}, max drawdown {fmt_pct(tm['max_drawdown']['mean'])}; "
            f"deflated Sharpe {fmt_num(dsr['mean'])} for {test['n_configs']} configurations tried"
        )
        if kind == "backtest":
            out.print(f"test report: {test['runs'][0]['report']}")
        else:
            out.print(f"next: mqc backtest --checkpoint {test['runs'][0]['run_dir']}")
    elif result.interrupted:
        out.print("no test figures: the sweep was interrupted (they are computed once, when it completes)")
    out.print(f"sweep directory: {result.sweep_dir}")
