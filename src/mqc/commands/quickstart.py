"""``mqc quickstart``: sample data -> train a small dm policy -> backtest it on the test split."""

from __future__ import annotations

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, info, out, print_json, want_json


def quickstart(
    steps: int = o.STEPS(help="Training steps (default 300).", sets=None),
    seed: int = o.SEED(0, help="Seed for training and the bootstrap.", sets=None),
    threads: int = o.THREADS(1, help="Torch CPU threads.", sets=None),
    save_dir: str = o.SAVE_DIR(help="Parent of the run directory (default: the runs dir).", sets=None),
    json_out: bool = o.JSON(),
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
