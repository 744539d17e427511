"""``mqc sweep train KIND --grid FILE``: a grid or an Optuna search over any registered trainer."""

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


@app.command("train")
def train(
    ctx: typer.Context,
    kind: str = typer.Argument(..., help="A trainer of `mqc train` (dm, sharpe, kronos, ...)."),
    grid: Path = typer.Option(..., "--grid", help="Sweep file (TOML of profile keys: lists, {low, high} ranges)."),
    samples: int = typer.Option(None, "--samples", help="Sample N configurations (random/TPE) instead of the grid."),
    sampler: Sampler = typer.Option(Sampler.tpe, "--sampler", help="Sampler of --samples: tpe or random."),
    pruner: Pruner = typer.Option(Pruner.none, "--pruner", help="Stop bad trials early: none, median or asha."),
    metric: str = typer.Option(
        None, "--metric", help="Val metric to select on (default: the trainer's select_metric)."
    ),
    sweep_dir: Path = typer.Option(None, "--sweep-dir", help="Sweep directory (default: <runs dir>/sweeps/KIND-GRID)."),
    storage: str = typer.Option(None, "--storage", help="Optuna database URL shared by several machines."),
    backend: Backend = typer.Option(Backend.local, "--backend", help="local (process pool) or ray."),
    address: str = typer.Option(None, "--address", help="Ray cluster: ray://HOST:PORT or auto (default: local)."),
    max_concurrent: int = typer.Option(None, "--max-concurrent", help="Trials at a time (default: the core count)."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial", help="CPUs (torch threads) per trial."),
    gpus_per_trial: float = typer.Option(0.0, "--gpus-per-trial", help="GPUs per trial (Ray)."),
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
    from mqc.core.sweep.runner import SweepRequest, run_sweep
    from mqc.core.train.harness import trainer_spec

    if quiet:
        state().quiet = True
    spec = trainer_spec(kind)
    flags = o.given(ctx)
    resolved = c.resolve_common(flags)
    log = c.resolve_log(flags)
    for cls in (spec.config, *spec.extra_tables):
        resolved[config.table_name(cls)] = resolve_with_profile(cls, state().profile)
    from mqc.core import paths

    req = SweepRequest(
        kind=kind,
        grid_file=grid,
        sweep_dir=(sweep_dir or paths.runs_dir() / "sweeps" / f"{kind}-{grid.stem}").expanduser().resolve(),
        base={t: config.to_dict(r.value) for t, r in resolved.items()},
        sources={t: dict(r.sources) for t, r in resolved.items()},
        samples=samples,
        sampler=sampler.value,
        pruner=pruner.value,
        storage=storage,
        backend=backend.value,
        address=address,
        max_concurrent=max_concurrent or os.cpu_count() or 1,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
        metric=metric,
        command_line=" ".join(["mqc", *sys.argv[1:]]),
        log=log,
    )
    try:
        with RichProgress() as progress:
            result = run_sweep(req, progress=progress)
    except KeyboardInterrupt as exc:
        partial = getattr(exc, "sweep_result", None)
        if partial is not None:
            render(partial, json_out)
            err.print(f"stopped; re-run the same command to resume (finished trials are kept in {partial.sweep_dir})")
        raise
    render(result, json_out)


def render(result: Any, json_out: bool) -> None:
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
    title = (
        f"sweep: {result.n_configs} configurations, {n['done']} trials run now ({n['skipped']} kept), "
        f"{n['failed']} failed, {n['pruned']} pruned; selected on val {m}"
    )
    t = Table(title=title)
    t.add_column("")
    for k in keys:
        t.add_column(k)
    t.add_column(f"val {m} mean ± std", justify="right")
    t.add_column("val return", justify="right")
    t.add_column("seeds ok", justify="right")
    t.add_column("pruned/failed", justify="right")
    chosen = result.chosen["config"] if result.chosen else None
    for cfg in result.configs[:30]:
        v = cfg["val"][m]
        cell = fmt_num(v["mean"]) + (f" ± {fmt_num(v['std'])}" if v["std"] is not None else "")
        row = ["chosen" if cfg["config"] == chosen else "", *[escape(str(cfg["overrides"].get(k))) for k in keys]]
        ret = cfg["val"].get("total_return", {}).get("mean")
        t.add_row(*row, cell, fmt_pct(ret), f"{cfg['ok']}/{len(cfg['seeds'])}", f"{cfg['pruned']}/{cfg['failed']}")
    out.print(t)
    if len(result.configs) > 30:
        out.print(f"(top 30 of {len(result.configs)}; all in {result.sweep_dir / 'summary.md'})")
    test = result.test
    if test:
        tm, dsr = test["metrics"], test["dsr"]
        sd = tm["sharpe"]["std"]
        out.print(
            f"TEST (once, chosen configuration, {len(test['runs'])} seed(s)): sharpe {fmt_num(tm['sharpe']['mean'])}"
            + (f" ± {fmt_num(sd)}" if sd is not None else "")
            + f", return {fmt_pct(tm['total_return']['mean'])}, max drawdown {fmt_pct(tm['max_drawdown']['mean'])}; "
            f"deflated Sharpe {fmt_num(dsr['mean'])} for {test['n_configs']} configurations tried"
        )
        out.print(f"next: mqc backtest --checkpoint {test['runs'][0]['run_dir']}")
    elif result.interrupted:
        out.print("no test figures: the sweep was interrupted (they are computed once, when it completes)")
    out.print(f"sweep directory: {result.sweep_dir}")
