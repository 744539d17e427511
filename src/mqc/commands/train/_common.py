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
from mqc.commands._options import AllowAlteredOpt as AllowAlteredOpt  # re-exported: shared with mqc backtest
from mqc.commands._options import split_list

# Data selection
DataRootOpt = typer.Option(
    None, "--data-root", help="Folder of per-symbol CSV/Parquet files (validated on the fly) instead of the catalog."
)
SymbolsOpt = typer.Option(
    None, "--symbols", "-s", help="Comma-separated catalog symbols (default: all of the timeframe)."
)
TimeframeOpt = typer.Option(None, "--timeframe", "-t", help="Bar size: 1d, 1h, 15m, ...")
StartOpt = typer.Option(None, "--start", help="First bar to load (UTC date/time).")
EndOpt = typer.Option(None, "--end", help="Last bar to load (UTC date/time).")
MaxAssetsOpt = typer.Option(None, "--max-assets", help="Keep at most this many symbols.")
ExcludeOpt = typer.Option(None, "--exclude", help="Comma-separated symbols to leave out.")
# Market
CostOpt = typer.Option(None, "--cost-bps", help="Commission in bps for equities and crypto (sets both).")
SlippageOpt = typer.Option(None, "--slippage-bps", help="Spread + slippage in bps.")
ShortOpt = typer.Option(None, "--enable-shorting/--long-only", help="Allow short positions (market.allow_short).")
CashOpt = typer.Option(
    None, "--include-cash/--no-cash", help="Give the policy an explicit cash leg (market.include_cash)."
)
# Training
LookbackOpt = typer.Option(None, "--lookback", help="Bars of features per decision.")
HorizonOpt = typer.Option(None, "--horizon", help="Decisions per sampled window.")
BatchOpt = typer.Option(None, "--batch-windows", help="Windows per optimiser step.")
# dm objective (train dm and train kronos; values are dm.Objective / dm.Reward)
RolloutGroupsOpt = typer.Option(None, "--rollout-groups", "-k", help="K rollouts per window (GRPO group).")
ObjectiveOpt = typer.Option(None, "--objective", help="grpo, pathwise or hybrid.")
RewardOpt = typer.Option(None, "--reward", help="log_wealth or sharpe.")
KlCoefOpt = typer.Option(None, "--kl-coef", help="Weight of KL to the EMA reference policy.")
EmaDecayOpt = typer.Option(None, "--ema-decay", help="EMA decay of the reference policy.")
EntropyCoefOpt = typer.Option(None, "--entropy-coef", help="Entropy bonus weight.")
HiddenOpt = typer.Option(None, "--hidden-size", help="Hidden width.")
LayersOpt = typer.Option(None, "--layers", help="Layers.")
LrOpt = typer.Option(None, "--lr", help="AdamW learning rate.")
StepsOpt = typer.Option(None, "--steps", help="Optimiser steps.")
EpochsOpt = typer.Option(None, "--epochs", help="Passes over the train split's decision bars (overrides --steps).")
EvalOpt = typer.Option(None, "--eval-interval", help="Evaluate on val and save latest.pt every N steps.")
RiskOpt = typer.Option(None, "--risk-aversion", help="Penalty on PnL variance.")
DrawdownOpt = typer.Option(None, "--drawdown-lambda", help="Penalty on the differentiable max drawdown.")
MuonOpt = typer.Option(None, "--muon/--no-muon", help="Muon for hidden matrices + AdamW (--no-muon: AdamW only).")
CompileOpt = typer.Option(None, "--compile/--no-compile", help="torch.compile the model (CUDA only).")
DeviceOpt = typer.Option(None, "--device", help="auto, cpu, cuda, cuda:N.")
DtypeOpt = typer.Option(None, "--dtype", help="auto (fp32 CPU, bf16 autocast CUDA), fp32 or bf16.")
MicroOpt = typer.Option(None, "--microbatch-windows", help="Windows per forward/backward (gradient accumulation).")
CkptOpt = typer.Option(
    None, "--gradient-checkpointing/--no-gradient-checkpointing", help="Recompute activations in backward."
)
ThreadsOpt = typer.Option(None, "--threads", help="torch CPU threads.")
SeedOpt = typer.Option(None, "--seed", help="Random seed.")
InitOpt = typer.Option(None, "--init-checkpoint", help="Start from this checkpoint's weights.")
SaveDirOpt = typer.Option(None, "--save-dir", help="Parent folder of the run directory (default: <runs dir>/<kind>).")
ResumeOpt = typer.Option(
    None,
    "--resume",
    help=(
        "Continue a killed run from RUN_DIR/checkpoints/latest.pt with its stored settings (no other training options)."
    ),
)


class DtypeChoice(StrEnum):
    """Values of ``--dtype``."""

    auto = "auto"
    fp32 = "fp32"
    bf16 = "bf16"


# option names that differ from the config field they set
_FLAG_NAMES = {
    "allow_short": "--enable-shorting/--long-only",
    "include_cash": "--include-cash/--no-cash",
    "compile": "--compile/--no-compile",
    "muon": "--muon/--no-muon",
    "gradient_checkpointing": "--gradient-checkpointing/--no-gradient-checkpointing",
}


def check_resume(kind: str, resume: str | None, given: dict[str, Any]) -> None:
    """With ``--resume`` every setting comes from the run: other options are an error, not ignored."""
    from mqc.core.errors import ConfigError

    if not resume:
        return
    named = [_FLAG_NAMES.get(k, "--" + k.replace("_", "-")) for k, v in given.items() if v is not None]
    if named:
        raise ConfigError(
            f"--resume continues the run with its stored settings; these options cannot be changed: {', '.join(named)}",
            hint=f"drop them (mqc train {kind} --resume {resume}), or start a new run without --resume",
        )


# command parameters whose name differs from the config field they set
_PARAM_FOR_FIELD = {"allow_short": "enable_shorting", "compile": "compile_"}


def flags_for(cls: type, params: dict[str, Any]) -> dict[str, Any]:
    """The flags a command's parameters give config ``cls``: every field with a same-named parameter
    (``_PARAM_FOR_FIELD`` for the renamed ones), Enum values unwrapped. One mapping for every
    trainer command, so ``train dm`` and ``train kronos`` cannot drift apart."""
    import dataclasses
    from enum import Enum

    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        name = _PARAM_FOR_FIELD.get(f.name, f.name)
        if name in params:
            value = params[name]
            out[f.name] = value.value if isinstance(value, Enum) else value
    return out


def command_flags(train_cls: type, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(data, market, training) flags of a trainer command from its parameters (``locals()``)."""
    from mqc.core.data.config import DataConfig
    from mqc.core.market.config import MarketConfig

    return flags_for(DataConfig, params), flags_for(MarketConfig, params), flags_for(train_cls, params)


QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bar or logs; results only.")


def resolve_common(data_flags: dict[str, Any], market_flags: dict[str, Any], cost_bps: float | None) -> dict[str, Any]:
    """Resolve the data, market, features and split tables (defaults < profile < env < flags)."""
    import dataclasses

    from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.profiles import resolve_with_profile

    prof = state().profile
    data_flags = {
        **data_flags,
        "symbols": split_list(data_flags.get("symbols")),
        "exclude": split_list(data_flags.get("exclude")),
    }
    if data_flags["symbols"]:
        data_flags["symbols"] = tuple(s.upper() for s in data_flags["symbols"])
    market_flags = {**market_flags, **MarketConfig.cost_fields(cost_bps)}  # the one meaning of --cost-bps
    data = resolve_with_profile(DataConfig, prof, flags=data_flags)
    if data.value.data_root is not None:
        from mqc.core.train.api import absolute_data_root

        # stored absolute in config.json: backtest/resume must work from any directory
        data = dataclasses.replace(data, value=absolute_data_root(data.value))
    return {
        "data": data,
        "market": resolve_with_profile(MarketConfig, prof, flags=market_flags),
        "features": resolve_with_profile(FeatureConfig, prof),
        "split": resolve_with_profile(SplitConfig, prof),
    }


def run_training(
    kind: str,
    data_flags: dict[str, Any],
    market_flags: dict[str, Any],
    cost_bps: float | None,
    train_flags: dict[str, Any],
    resume: str | None,
    quiet: bool,
    json_out: bool,
    extra_flags: dict[str, dict[str, Any]] | None = None,
    extra_options: dict[str, Any] | None = None,
) -> None:
    """Resolve the tables, train (or resume) the registered trainer ``kind`` with a Rich progress bar,
    render the result.

    ``extra_flags`` are the flags of the trainer's extra tables by table name (``TrainerSpec.extra_tables``);
    ``extra_options`` the same values by option name, for the ``--resume`` check. Ctrl-C prints where
    the run stopped and the ``--resume`` command (``say_how_to_resume``)."""
    check_resume(
        kind, resume, {**data_flags, **market_flags, "cost_bps": cost_bps, **train_flags, **(extra_options or {})}
    )
    resolved = {} if resume else resolve_common(data_flags, market_flags, cost_bps)
    if quiet:
        state().quiet = True
    with say_how_to_resume():
        result = _fit(kind, resolved, train_flags, resume, extra_flags or {})
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


def _fit(
    kind: str,
    resolved: dict[str, Any],
    train_flags: dict[str, Any],
    resume: str | None,
    extra_flags: dict[str, dict[str, Any]],
) -> Any:
    from mqc.core.config import table_name
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.train import api
    from mqc.core.train.harness import trainer_spec

    spec = trainer_spec(kind)
    with RichProgress() as progress:
        if resume:
            return api.resume_run(resume, progress=progress, expect_kind=spec.runs_as)
        tcls = spec.config
        resolved[table_name(tcls)] = resolve_with_profile(tcls, state().profile, flags=train_flags)
        for cls in spec.extra_tables:
            resolved[table_name(cls)] = resolve_with_profile(
                cls, state().profile, flags=extra_flags.get(table_name(cls), {})
            )
        return api.train(
            kind,
            resolved["data"].value,
            resolved["market"].value,
            resolved[table_name(tcls)].value,
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
