"""Options shared by several commands, declared once, each knowing the config field it sets.

The pattern (use it for every new command):

* A flag is declared once, here, as a ``Flag``: its spellings, its help, and ``sets``, the
  ``"table.field"`` of the config dataclass it sets (a tuple when it sets several; ``"trainer.x"``
  means field ``x`` of the command's trainer table, bound with ``@tables(trainer="dm")``).
* A command uses it as a parameter default: ``timeframe: str = TIMEFRAME()``; a call may change the
  help, the default, the target or the converter for that command
  (``TIMEFRAME(sets="fetch.timeframe")``), never the spelling. A flag only one command has may still be declared with
  ``Flag`` in its module.
* The body builds its config flags with ``given(ctx)`` (``ctx: typer.Context``, the command's first
  parameter): ``{table: {field: value}}`` of the options that were actually given (``None`` = not
  given, so a profile or ``MQC_*`` value is not overridden), converted by the option's ``convert``
  (``Enum`` values unwrapped by default). No name matching: the mapping is the ``sets`` next to the
  option; ``--help`` shows config defaults from it; ``tests/commands/test_options.py`` checks every
  target is a real field and every long flag is declared once.
* An old spelling stays accepted through ``deprecated`` (old -> current): hidden from ``--help``,
  rewritten before parsing with a one-line ``note:`` on stderr (``MqcCommand`` in ``_help.py``).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

import typer
from typer.models import OptionInfo

_UNSET: Any = object()


def split_list(value: str | None) -> tuple[str, ...] | None:
    """Comma- (or space-) separated list option -> tuple, ``None`` when not given."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.replace(" ", ",").split(",") if v.strip())


def upper_list(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of symbols, upper-cased (``spy,qqq`` -> ``("SPY", "QQQ")``)."""
    items = split_list(value)
    return None if items is None else tuple(s.upper() for s in items)


def symbols_from(args: list[str] | None, option: str | None) -> tuple[str, ...]:
    """Merge positional symbols (space-separated, each may also hold commas) with ``--symbols``."""
    out: list[str] = []
    for chunk in [*(args or []), option or ""]:
        out.extend(s.upper() for s in split_list(chunk) or ())
    seen: dict[str, None] = {}
    for s in out:
        seen.setdefault(s, None)
    return tuple(seen)


def choice(allowed: tuple[str, ...], option: str):
    """A callback making ``option`` a usage error (exit 2) unless its value is one of ``allowed``."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"{value!r} is not one of {', '.join(allowed)}", param_hint=option)
        return value

    return check


def int_list(text: str | None, name: str) -> tuple[int, ...] | None:
    """Comma-separated integers (``None`` when not given); not integers is a usage error naming ``name``."""
    items = split_list(text)
    if items is None:
        return None
    try:
        return tuple(int(x) for x in items)
    except ValueError as exc:
        raise typer.BadParameter(f"{name} must be integers, got {text!r}") from exc


# Kept in sync with core/forecast/config.py METRICS / PER_SYMBOL_METRICS (a test checks it); literal
# here so `mqc --help` does not import the forecast core.
FORECAST_METRICS = ("mae", "mase", "crps", "wql", "coverage_error", "hit_rate", "rank_ic")
PER_SYMBOL_METRICS = tuple(m for m in FORECAST_METRICS if m != "rank_ic")


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


@dataclasses.dataclass(frozen=True)
class Binding:
    """What one use of a flag sets: ``targets`` (``"table.field"``), and how the parsed value is converted."""

    name: str
    targets: tuple[str, ...]
    convert: Callable[[Any], Any]
    deprecated: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class Flag:
    """One flag's declaration (see the module docstring); calling it gives the ``typer.Option``."""

    decls: tuple[str, ...]
    help: str
    sets: str | tuple[str, ...] | None = None
    default: Any = None
    convert: Callable[[Any], Any] = _plain
    deprecated: Mapping[str, str] = dataclasses.field(default_factory=dict)
    kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def __call__(
        self,
        default: Any = _UNSET,
        *,
        help: str | None = None,
        sets: str | tuple[str, ...] | None = _UNSET,
        convert: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        info = typer.Option(
            self.default if default is _UNSET else default,
            *self.decls,
            help=help or self.help,
            **{**self.kwargs, **kwargs},
        )
        targets = self.sets if sets is _UNSET else sets
        info.mqc = Binding(  # type: ignore[attr-defined]
            name=self.decls[0],
            targets=() if targets is None else ((targets,) if isinstance(targets, str) else tuple(targets)),
            convert=convert or self.convert,
            deprecated=self.deprecated,
        )
        return info


def tables(**bound: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Bind placeholder tables of a command's options: ``@tables(trainer="dm")``."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__mqc_tables__ = dict(bound)  # type: ignore[attr-defined]
        return fn

    return wrap


def _function(command: Any) -> Callable[..., Any]:
    fn = command.callback if hasattr(command, "callback") else command
    return inspect.unwrap(fn)


def bindings(command: Any) -> dict[str, Binding]:
    """Parameter name -> ``Binding`` of every declared flag of a click command (or its function),
    with placeholder tables (``trainer.x``) replaced by the command's ``@tables``."""
    fn = _function(command)
    bound = getattr(fn, "__mqc_tables__", {})
    out: dict[str, Binding] = {}
    for name, param in inspect.signature(fn).parameters.items():
        binding = getattr(param.default, "mqc", None) if isinstance(param.default, OptionInfo) else None
        if binding is None:
            continue
        targets = []
        for target in binding.targets:
            table, field = target.split(".", 1)
            if table in bound:
                table = bound[table]
            elif table == "trainer":
                raise TypeError(f"{fn.__name__}: {binding.name} sets {target}: bind it with @tables(trainer=...)")
            targets.append(f"{table}.{field}")
        out[name] = dataclasses.replace(binding, targets=tuple(targets))
    return out


def given(ctx: typer.Context) -> dict[str, dict[str, Any]]:
    """``{table: {field: value}}`` of the config options given to the running command (``None``: not
    given). ``ctx``: the command's ``typer.Context`` parameter."""
    out: dict[str, dict[str, Any]] = {}
    for name, binding in bindings(ctx.command).items():
        value = ctx.params.get(name)
        if value is None or not binding.targets:
            continue
        value = binding.convert(value)
        if value is None:
            continue
        for target in binding.targets:
            table, field = target.split(".", 1)
            out.setdefault(table, {})[field] = value
    return out


def given_names(ctx: typer.Context) -> list[str]:
    """The spellings (``--steps``, ``--enable-shorting/--long-only``) of the config options given."""
    declared = bindings(ctx.command)
    names = []
    for param in ctx.command.params:
        if param.name in declared and declared[param.name].targets and ctx.params.get(param.name) is not None:
            secondary = getattr(param, "secondary_opts", None)
            names.append(f"{param.opts[0]}/{secondary[0]}" if secondary else param.opts[0])
    return names


def deprecated_spellings(command: Any) -> dict[str, str]:
    """Old spelling -> current one for the flags of ``command``."""
    out: dict[str, str] = {}
    for binding in bindings(command).values():
        out.update(binding.deprecated)
    return out


# ---- output --------------------------------------------------------------------------------
JSON = Flag(("--json",), "Print the result as JSON on stdout.", default=False)
QUIET = Flag(("--quiet", "-q"), "No progress bar or logs; results only.", default=False)

# ---- data selection (the [data] table) -----------------------------------------------------
TIMEFRAME = Flag(("--timeframe", "-t"), "Bar size: 1d, 1h, 15m, ...", sets="data.timeframe")
SYMBOLS = Flag(
    ("--symbols", "-s"),
    "Comma-separated catalog symbols (default: all of the timeframe).",
    sets="data.symbols",
    convert=upper_list,
)
DATA_ROOT = Flag(
    ("--data-root",),
    "Folder of per-symbol CSV/Parquet files (validated on the fly) instead of the catalog.",
    sets="data.data_root",
)
START = Flag(("--start",), "First bar to load (UTC date/time).", sets="data.start")
END = Flag(("--end",), "Last bar to load (UTC date/time).", sets="data.end")
MAX_ASSETS = Flag(("--max-assets",), "Keep at most this many symbols.", sets="data.max_assets")
EXCLUDE = Flag(("--exclude",), "Comma-separated symbols to leave out.", sets="data.exclude", convert=split_list)
# train and backtest: the explicit "yes, use them" for catalog files changed since import
ALLOW_ALTERED = Flag(
    ("--allow-altered-data",),
    "Use catalog files whose bars changed since import (a warning instead of an error; mqc data verify lists them).",
    sets="data.allow_altered",
)

# ---- market (what --cost-bps / --slippage-bps set: MarketConfig.cost_fields, a test holds them equal)
COST_BPS = Flag(
    ("--cost-bps",),
    "Commission in bps for equities and crypto (sets both).",
    sets=("market.equity_fee_bps", "market.crypto_fee_bps"),
)
SLIPPAGE_BPS = Flag(("--slippage-bps",), "Spread + slippage in bps.", sets="market.slippage_bps")
SHORTING = Flag(
    ("--enable-shorting/--long-only",),
    "Allow short positions (market.allow_short).",
    sets="market.allow_short",
    deprecated={"--no-shorting": "--long-only"},  # mqc backtest's spelling before 0.x
)
CASH = Flag(
    ("--include-cash/--no-cash",),
    "Give the policy an explicit cash leg (market.include_cash).",
    sets="market.include_cash",
)

# ---- runtime (the trainer's table; also forecast and quickstart) ---------------------------
SEED = Flag(("--seed",), "Random seed.", sets="trainer.seed")
DEVICE = Flag(("--device",), "auto, cpu, cuda, cuda:N.", sets="trainer.device")
DTYPE = Flag(("--dtype",), "auto (fp32 CPU, bf16 autocast CUDA), fp32 or bf16.", sets="trainer.dtype")
THREADS = Flag(("--threads",), "torch CPU threads.", sets="trainer.threads")
COMPILE = Flag(("--compile/--no-compile",), "torch.compile the model (CUDA only).", sets="trainer.compile")
STEPS = Flag(("--steps",), "Optimiser steps.", sets="trainer.steps")
HORIZON = Flag(("--horizon",), "Decisions per sampled window.", sets="trainer.horizon")
SAVE_DIR = Flag(
    ("--save-dir",),
    "Parent folder of the run directory (default: <runs dir>/<kind>).",
    sets="trainer.save_dir",
)
RESUME = Flag(
    ("--resume",),
    "Continue a killed run from RUN_DIR/checkpoints/latest.pt with its stored settings (no other training options).",
)
OUT = Flag(("--out", "-o"), "Output file or folder.")

# Order strategies on forecasts (`mqc backtest --strategy`, `mqc forecast select --by pnl`): the [orders] table.
STRATEGY = Flag(
    ("--strategy",),
    "Order strategy on forecasts: maxdiff, maxdiff-always-on, simple, highlow, takeprofit, buy-hold.",
    sets="orders.strategy",
)
REFIT_EVERY = Flag(("--refit-every",), "Bars between walk-forward re-fits of the strategy.", sets="orders.refit_every")
FIT_WINDOW = Flag(("--fit-window",), "Trailing bars per walk-forward fit (0: no fit).", sets="orders.fit_window")

# Forecasters (`mqc forecast ...`, `mqc backtest --strategy`): the [forecast] table, built by hand there.
MODEL = Flag(("--model", "-m"), "Forecaster.")
MODEL_PATH = Flag(
    ("--model-path", "--model-id"), "Model weights (Chronos, or the Kronos predictor): local dir or cached HF id."
)
HYPERPARAMS_DIR = Flag(
    ("--hyperparams-dir",), "Read/write hyperparams here (default: user dir, then repo hyperparams/)."
)
# Rolling-origin evaluation (`mqc forecast eval/tune/select`, `mqc sweep forecast`): the [forecast_eval] table.
ORIGINS = Flag(("--origins",), "Origins per symbol.")
STEP = Flag(("--step",), "Bars between origins.")

# The forecast feature cube ([cube]: `mqc data features`, `data offline`, `train ppo`, `backtest --policy`).
FORECASTER = Flag(
    ("--forecaster",), "Forecaster of the feature cube (bootstrap, ewma-vol, chronos2, ...).", sets="cube.forecaster"
)
NUM_SAMPLES = Flag(("--num-samples",), "Sample paths of sampling forecasters.", sets="cube.num_samples")
PREDICTION_LENGTH = Flag(("--prediction-length",), "Bars ahead each forecast covers.", sets="cube.prediction_length")
EPISODE_LENGTH = Flag(("--episode-length",), "Decisions per episode of the portfolio env.", sets="env.episode_length")
POLICY = Flag(("--policy",), "Behaviour policy on forecast features: topk, kelly or blended.")
TOP_K = Flag(("--top-k",), "Assets held by the topk / blended behaviour policies (default 1).")
CHECKPOINT = Flag(
    ("--checkpoint", "-c"),
    "Checkpoint file, run directory, 'latest' (newest run), or best.pt / latest.pt (of the run you are in, else"
    " the newest).",
)

# ---- metric sinks beside metrics.jsonl (the [log] table) -----------------------------------------
TENSORBOARD = Flag(
    ("--tensorboard",),
    "Also write the metrics as TensorBoard scalars under DIR/<run> (a sweep: DIR/<trial>).",
    sets="log.tensorboard",
    kwargs={"metavar": "DIR"},
)
WANDB = Flag(
    ("--wandb",),
    "Also log the metrics to this W&B project (offline unless logged in; a sweep's trials form one group).",
    sets="log.wandb",
    kwargs={"metavar": "PROJECT"},
)
