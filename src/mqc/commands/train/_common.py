"""Options and helpers shared by ``mqc train dm``, ``sharpe`` and ``kronos`` (no torch at import)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

import typer
from rich.markup import escape

from mqc.commands._console import RichProgress, err, out, print_json, state, want_json
from mqc.commands._options import Flag, given, given_names

# Options of the trainer's table only train has ("trainer.x": the command's @tables(trainer=...));
# the shared ones (--timeframe, --cost-bps, --seed, ...) are declared in commands/_options.py.
LOOKBACK = Flag(("--lookback",), "Bars of features per decision.", sets="trainer.lookback")
BATCH = Flag(("--batch-windows",), "Windows per optimiser step.", sets="trainer.batch_windows")
# dm objective (train dm and train kronos; values are dm.Objective / dm.Reward)
ROLLOUT_GROUPS = Flag(("--rollout-groups", "-k"), "K rollouts per window (GRPO group).", sets="trainer.rollout_groups")
OBJECTIVE = Flag(("--objective",), "grpo, pathwise or hybrid.", sets="trainer.objective")
REWARD = Flag(("--reward",), "log_wealth or sharpe.", sets="trainer.reward")
KL_COEF = Flag(("--kl-coef",), "Weight of KL to the EMA reference policy.", sets="trainer.kl_coef")
EMA_DECAY = Flag(("--ema-decay",), "EMA decay of the reference policy.", sets="trainer.ema_decay")
ENTROPY_COEF = Flag(("--entropy-coef",), "Entropy bonus weight.", sets="trainer.entropy_coef")
HIDDEN = Flag(("--hidden-size",), "Hidden width.", sets="trainer.hidden_size")
LAYERS = Flag(("--layers",), "Layers.", sets="trainer.layers")
LR = Flag(("--lr",), "AdamW learning rate.", sets="trainer.lr")
EPOCHS = Flag(("--epochs",), "Passes over the train split's decision bars (overrides --steps).", sets="trainer.epochs")
EVAL = Flag(("--eval-interval",), "Evaluate on val and save latest.pt every N steps.", sets="trainer.eval_interval")
RISK = Flag(("--risk-aversion",), "Penalty on PnL variance.", sets="trainer.risk_aversion")
DRAWDOWN = Flag(("--drawdown-lambda",), "Penalty on the differentiable max drawdown.", sets="trainer.drawdown_lambda")
MUON = Flag(("--muon/--no-muon",), "Muon for hidden matrices + AdamW (--no-muon: AdamW only).", sets="trainer.muon")
MICRO = Flag(
    ("--microbatch-windows",),
    "Windows per forward/backward (gradient accumulation).",
    sets="trainer.microbatch_windows",
)
CKPT = Flag(
    ("--gradient-checkpointing/--no-gradient-checkpointing",),
    "Recompute activations in backward.",
    sets="trainer.gradient_checkpointing",
)
INIT = Flag(("--init-checkpoint",), "Start from this checkpoint's weights.", sets="trainer.init_checkpoint")


class DtypeChoice(StrEnum):
    """Values of ``--dtype``."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


def check_resume(ctx: typer.Context, kind: str, resume: str | None) -> None:
    """With ``--resume`` every setting comes from the run: other options are an error, not ignored."""
    from mqc.core.errors import ConfigError

    if not resume:
        return
    named = given_names(ctx)
    if named:
        raise ConfigError(
            f"--resume continues the run with its stored settings; these options cannot be changed: {', '.join(named)}",
            hint=f"drop them (mqc train {kind} --resume {resume}), or start a new run without --resume",
        )


def resolve_common(flags: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Resolve the data, market, features and split tables (defaults < profile < env < flags)."""
    import dataclasses

    from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.profiles import resolve_with_profile

    prof = state().profile
    data = resolve_with_profile(DataConfig, prof, flags=flags.get("data", {}))
    if data.value.data_root is not None:
        from mqc.core.train.api import absolute_data_root

        # stored absolute in config.json: backtest/resume must work from any directory
        data = dataclasses.replace(data, value=absolute_data_root(data.value))
    return {
        "data": data,
        "market": resolve_with_profile(MarketConfig, prof, flags=flags.get("market", {})),
        "features": resolve_with_profile(FeatureConfig, prof),
        "split": resolve_with_profile(SplitConfig, prof),
    }


def run_training(ctx: typer.Context, kind: str, resume: str | None, quiet: bool, json_out: bool) -> None:
    """Resolve the tables from the options given (``given``), train (or resume) the registered
    trainer ``kind`` with a Rich progress bar, render the result.

    Every option given must set a table of the trainer (``data``, ``market``, its own table and its
    ``TrainerSpec.extra_tables``). Ctrl-C prints where the run stopped and the ``--resume`` command
    (``say_how_to_resume``)."""
    check_resume(ctx, kind, resume)
    flags = given(ctx)
    resolved = {} if resume else resolve_common(flags)
    if quiet:
        state().quiet = True
    with say_how_to_resume():
        result = _fit(kind, resolved, flags, resume)
    render(result, json_out)


@contextlib.contextmanager
def say_how_to_resume() -> Iterator[None]:
    """On Ctrl-C print where the run stopped and the ``--resume`` command (from the trainer's
    ``TrainInterrupt``), then let the interrupt reach the handler ("interrupted", exit 130)."""
    try:
        yield
    except KeyboardInterrupt as exc:
        stopped = getattr(exc, "train_interrupt", None)
        if stopped is not None:
            err.print(escape(stopped.message()))
        raise


def resolve_log(flags: dict[str, dict[str, Any]]) -> Any:
    """The ``[log]`` table (metric sinks: --tensorboard, --wandb), its sinks checked as installed."""
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.train.config import LogConfig
    from mqc.core.train.sinks import check_installed

    log = resolve_with_profile(LogConfig, state().profile, flags=flags.get("log", {})).value
    check_installed(log)
    return log


def _sink_config(resolved: dict[str, Any]) -> dict[str, Any]:
    from mqc.core.config import to_dict

    return {t: to_dict(r.value) for t, r in resolved.items()}


def _fit(kind: str, resolved: dict[str, Any], flags: dict[str, dict[str, Any]], resume: str | None) -> Any:
    from mqc.core.config import table_name
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.train import api
    from mqc.core.train.harness import trainer_spec
    from mqc.core.train.sinks import metric_sinks

    spec = trainer_spec(kind)
    log = resolve_log(flags)
    if not resume:
        tables = [spec.config, *spec.extra_tables]
        stray = set(flags) - {"data", "market", "log", *(table_name(cls) for cls in tables)}
        if stray:  # an option bound to a table this trainer does not read would be silently ignored
            raise TypeError(f"train {kind}: options set tables the trainer does not read: {sorted(stray)}")
        for cls in tables:
            resolved[table_name(cls)] = resolve_with_profile(cls, state().profile, flags=flags.get(table_name(cls), {}))
    with RichProgress() as progress, metric_sinks(log, config=_sink_config(resolved)):
        if resume:
            return api.resume_run(resume, progress=progress, expect_kind=spec.runs_as)
        tname = table_name(spec.config)
        return api.train(
            kind,
            resolved["data"].value,
            resolved["market"].value,
            resolved[tname].value,
            feature_cfg=resolved["features"].value,
            split_cfg=resolved["split"].value,
            extra={table_name(cls): resolved[table_name(cls)].value for cls in spec.extra_tables},
            progress=progress,
            command_line=" ".join(["mqc", *sys.argv[1:]]),
            sources={k: v.sources for k, v in resolved.items()},
        )


def render(result: Any, json_out: bool) -> None:
    if want_json(json_out):
        print_json(result.to_dict())
        return
    from rich.table import Table

    from mqc.commands._console import fmt_num, fmt_pct

    t = Table(title=f"train {result.kind}: best step {result.best_step} of {result.steps} (selected on val)")
    cols = [("val (best.pt)", result.val_metrics), ("TEST (once)", result.test_metrics)]
    cols += [(f"test {k}", v) for k, v in result.test_baselines.items()]
    t.add_column("metric")
    for name, _ in cols:
        t.add_column(name, justify="right")
    for key, fmt in (
        ("sharpe", fmt_num),
        ("total_return", fmt_pct),
        ("annual_return", fmt_pct),
        ("volatility", fmt_pct),
        ("max_drawdown", fmt_pct),
        ("turnover", fmt_pct),
        ("exposure", fmt_num),
    ):
        t.add_row(key, *[fmt(m.get(key)) if m else "-" for _, m in cols])
    out.print(t)
    if getattr(result, "test_range", None):
        out.print(f"test segment: {result.test_range[0][:10]} .. {result.test_range[1][:10]}")
    if getattr(result, "costs", None):
        from mqc.core.market.costs import cost_line

        out.print(cost_line(result.costs))
    if getattr(result, "resumed_from", None):
        r = result.resumed_from
        out.print(f"resumed at step {r['step']} of {r['total_steps']} from {r['checkpoint']}")
    out.print(f"run directory: {result.run_dir}")
    out.print(f"best checkpoint: {result.best_checkpoint}  (next: mqc backtest --checkpoint {result.run_dir})")
