"""``mqc quickstart``: sample data -> train a small dm policy -> backtest it on the test split."""

from __future__ import annotations

import typer

from mqc.commands._console import RichProgress, info, out, print_json, want_json
from mqc.commands._options import JsonOpt


def quickstart(
    steps: int = typer.Option(None, "--steps", help="Training steps (default 300)."),
    seed: int = typer.Option(0, "--seed", help="Seed for training and the bootstrap."),
    threads: int = typer.Option(1, "--threads", help="Torch CPU threads."),
    save_dir: str = typer.Option(None, "--save-dir", help="Parent of the run directory (default: the runs dir)."),
    json_out: bool = JsonOpt,
) -> None:
    """The whole loop offline: import the sample, train `dm`, backtest the val-chosen checkpoint on test."""
    from mqc.commands.backtest import render_summary
    from mqc.core.quickstart import run_quickstart

    with RichProgress() as progress:
        result = run_quickstart(steps=steps, seed=seed, threads=threads, save_dir=save_dir, progress=progress)
    if want_json(json_out):
        print_json(result.to_dict())
        return
    t = result.train
    info(
        f"trained on {', '.join(result.symbols)} in {result.seconds['train']:.0f} s; best step {t.best_step} chosen"
        " on val"
    )
    out.print(f"run directory: {t.run_dir}")
    render_summary(result.backtest)
