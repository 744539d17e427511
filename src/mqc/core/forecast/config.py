"""Forecast configs (light module: dataclasses only, no numpy/pandas/torch at import time).

``ForecastConfig`` holds what a forecaster needs (model, horizon, quantiles and model settings); its
fields are exactly the keys of ``config{...}`` in a hyperparams file. ``EvalConfig`` holds the
rolling-origin evaluation settings shared by ``forecast eval``, ``tune`` and ``select``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.data.config import check_timeframe_label
from mqc.core.errors import ConfigError

DEFAULT_CHRONOS_ID = "amazon/chronos-2"
# Weights each Chronos variant uses when ``model_id`` is left at its default: ``--model chronos-bolt``
# must not quietly load Chronos-2 weights, nor send a user to download them.
DEFAULT_WEIGHTS = {
    "chronos2": DEFAULT_CHRONOS_ID,
    "chronos-bolt": "amazon/chronos-bolt-small",
    "chronos": "amazon/chronos-t5-small",
}
INTERVALS = (0.5, 0.8, 0.9)  # central intervals whose coverage eval reports
# The longest horizon accepted: beyond this a "forecast" is mostly noise and a table of it is
# unreadable (100,000 daily bars is ~400 years), so asking for more is a mistake, not a request.
MAX_HORIZON = 10_000
# ``--dtype`` spellings: the torch names plus the short ones ``mqc train`` takes; ``auto`` picks fp32
# on CPU (bf16 is slow and inexact there) and bf16 on CUDA. ForecastConfig stores the torch name.
DTYPE_ALIASES = {"fp32": "float32", "float32": "float32", "bf16": "bfloat16", "bfloat16": "bfloat16"}
DTYPE_CHOICES = ("auto", "fp32", "float32", "bf16", "bfloat16")
# Metrics eval reports and tune/select may rank by (the keys of scoring.LOWER_IS_BETTER, kept here
# so the CLI can list them without importing numpy); rank_ic is cross-sectional, no per-symbol value.
METRICS = ("mae", "mase", "crps", "wql", "coverage_error", "hit_rate", "rank_ic")
PER_SYMBOL_METRICS = tuple(m for m in METRICS if m != "rank_ic")


_LEVELS_HINT = "pass distinct levels in (0, 1), e.g. --quantiles 0.1,0.5,0.9"


def _fix(key: str, value: object, flag: str | None = None, table: str = "forecast") -> str:
    """A hint setting ``key`` to ``value``: by ``flag`` when there is one, else in a profile or the environment."""
    where = f"{key} = {value} in a profile's [{table}] table, or MQC_{table.upper()}_{key.upper()}={value}"
    return f"pass {flag} {value}, or set {where}" if flag else f"set {where}"


def _check_levels(levels: tuple[float, ...], where: str) -> None:
    if not levels:
        raise ConfigError(f"{where} must list at least one quantile level", hint=_LEVELS_HINT)
    for q in levels:
        if not 0.0 < q < 1.0:
            raise ConfigError(f"{where}: quantile level {q} must be strictly between 0 and 1", hint=_LEVELS_HINT)
    if len(set(levels)) != len(levels):
        raise ConfigError(f"{where}: duplicate quantile levels in {list(levels)}", hint=_LEVELS_HINT)


@config_table("forecast")
@dataclass(frozen=True)
class ForecastConfig:
    """One forecaster and its settings; the ``config`` table of ``hyperparams/<model>/<SYMBOL>.<tf>.json``."""

    model: str = field(default="ewma-vol", metadata={"help": "forecaster name (mqc forecast models lists them)"})
    model_id: str = field(
        default=DEFAULT_CHRONOS_ID,
        metadata={
            "help": (
                "model weights (--model-path): a local directory or a Hugging Face id already in the local cache"
                " (Chronos, or the Kronos predictor); left at amazon/chronos-2, chronos-bolt uses"
                " amazon/chronos-bolt-small and chronos amazon/chronos-t5-small"
            )
        },
    )
    tokenizer_path: str | None = field(
        default=None,
        metadata={
            "help": (
                "Kronos tokenizer (--tokenizer-path): a directory or a cached HF id; unset ="
                " kronos_model.tokenizer_path"
            )
        },
    )
    prediction_length: int = field(
        default=7, metadata={"help": "bars to forecast after the last context bar (--horizon)"}
    )
    quantile_levels: tuple[float, ...] = field(
        default=(0.1, 0.5, 0.9), metadata={"help": "quantile levels to return, each in (0, 1)"}
    )
    context_length: int = field(
        default=512, metadata={"help": "context bars given to the model (the last bar is the origin)"}
    )
    min_context: int = field(default=32, metadata={"help": "fewest context bars accepted; fewer is an error"})
    timeframe: str = field(default="1d", metadata={"help": "bar size of the catalog entries to forecast"})
    batch_size: int = field(default=64, metadata={"help": "series per model forward pass (Chronos)"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:0"})
    dtype: Literal["auto", "fp32", "float32", "bf16", "bfloat16"] = field(
        default="auto",
        metadata={
            "help": (
                "model weights dtype: fp32|float32, bf16|bfloat16 (CUDA only), auto = fp32 on CPU, bf16 on CUDA; stored"
                " as the torch name"
            )
        },
    )
    attn: Literal["sdpa", "eager"] = field(default="sdpa", metadata={"help": "attention implementation of Chronos-2"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA only)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    volume_covariate: bool = field(default=False, metadata={"help": "give Chronos-2 log volume as a past covariate"})
    cross_learning: bool = field(
        default=False, metadata={"help": "Chronos-2: share information across the symbols of a batch"}
    )
    season_length: int | None = field(
        default=None,
        metadata={
            "help": (
                "seasonal-naive period in bars; unset: learned per symbol, a week of daily bars (5 on weekdays, 7 for"
                " 24/7 markets) or one session/day of intraday bars"
            )
        },
    )
    window: int = field(default=250, metadata={"help": "bars of returns used by drift, hist-vol, bootstrap and garch"})
    ewma_lambda: float = field(default=0.94, metadata={"help": "EWMA decay of squared returns (RiskMetrics 0.94)"})
    garch_mean: Literal["zero", "constant"] = field(
        default="zero", metadata={"help": "garch: zero mean, or a fitted constant mean used as the drift"}
    )
    block_length: int = field(default=5, metadata={"help": "block length of the return bootstrap"})
    num_samples: int = field(default=200, metadata={"help": "sample paths drawn by sampling models (bootstrap)"})
    seed: int = field(default=0, metadata={"help": "random seed of sampling models"})
    exchange_tz: str = field(
        default="America/New_York", metadata={"help": "time zone in which equity sessions are learned"}
    )
    hyperparams_dir: str | None = field(
        default=None, metadata={"help": "read/write per-symbol hyperparams here instead of the user dir"}
    )

    def __post_init__(self) -> None:
        if self.model_id == DEFAULT_CHRONOS_ID and self.model in DEFAULT_WEIGHTS:
            object.__setattr__(self, "model_id", DEFAULT_WEIGHTS[self.model])
        check_timeframe_label(self.timeframe)
        if self.prediction_length < 1:
            raise ConfigError(
                f"forecast.prediction_length must be >= 1, got {self.prediction_length}",
                hint="pass --horizon 1 or more",
            )
        if self.prediction_length > MAX_HORIZON:
            raise ConfigError(
                f"forecast.prediction_length {self.prediction_length:,} is above the maximum of {MAX_HORIZON:,} bars",
                hint=f"pass --horizon {MAX_HORIZON} or less",
            )
        _check_levels(self.quantile_levels, "forecast.quantile_levels")
        if self.min_context < 2:
            raise ConfigError(f"forecast.min_context must be >= 2, got {self.min_context}", hint=_fix("min_context", 2))
        if self.context_length < self.min_context:
            lower = (
                f", or lower min_context to {self.context_length} ([forecast] min_context in a profile, or"
                f" MQC_FORECAST_MIN_CONTEXT={self.context_length})"
                if self.context_length >= 2
                else ""
            )
            raise ConfigError(
                f"forecast.context_length ({self.context_length}) must be >= min_context ({self.min_context})",
                hint=f"pass a larger --context-length (at least {self.min_context}){lower}",
            )
        flags = {"batch_size": "--batch-size", "threads": "--threads"}
        for name in ("batch_size", "threads", "season_length", "block_length", "num_samples"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(
                    f"forecast.{name} must be >= 1, got {getattr(self, name)}", hint=_fix(name, 1, flags.get(name))
                )
        if self.window < 10:
            raise ConfigError(f"forecast.window must be >= 10 bars, got {self.window}", hint=_fix("window", 250))
        if self.garch_mean not in ("zero", "constant"):
            raise ConfigError(
                f"forecast.garch_mean must be 'zero' or 'constant', got {self.garch_mean!r}",
                hint=_fix("garch_mean", '"zero"'),
            )
        if not 0.0 < self.ewma_lambda < 1.0:
            raise ConfigError(
                f"forecast.ewma_lambda must be in (0, 1), got {self.ewma_lambda}", hint=_fix("ewma_lambda", 0.94)
            )
        cuda = self.device.startswith("cuda")
        if self.dtype == "auto":
            dtype = "bfloat16" if cuda else "float32"
        elif self.dtype in DTYPE_ALIASES:
            dtype = DTYPE_ALIASES[self.dtype]
        else:  # a value set programmatically, bypassing the Literal check of the config loader
            raise ConfigError(
                f"forecast.dtype {self.dtype!r} is not one of {', '.join(DTYPE_CHOICES)}",
                hint='use --dtype auto (mqc forecast run), or dtype = "auto" in the profile\'s [forecast] table',
            )
        object.__setattr__(self, "dtype", dtype)  # one spelling downstream (torch attribute name)
        if not cuda and self.dtype != "float32":
            raise ConfigError(
                f"forecast.dtype={self.dtype} needs a CUDA device (got device={self.device})",
                hint=(
                    "use --dtype fp32 (or auto) on CPU (mqc forecast run; elsewhere [forecast] dtype in the profile or"
                    " MQC_FORECAST_DTYPE)"
                ),
            )
        if self.compile and not self.device.startswith("cuda"):
            raise ConfigError(
                "forecast.compile needs a CUDA device",
                hint="drop --compile on CPU (or compile = false in the profile's [forecast] table)",
            )

    @property
    def sorted_levels(self) -> tuple[float, ...]:
        return tuple(sorted(self.quantile_levels))


@config_table("forecast_eval")
@dataclass(frozen=True)
class EvalConfig:
    """Rolling-origin evaluation: which origins, which horizons, how to split validation and test."""

    origins: int = field(
        default=250,
        metadata={
            "help": (
                "forecast origins per symbol: its latest bars with enough context before and the longest horizon after"
            )
        },
    )
    step: int = field(default=1, metadata={"help": "bars between consecutive origins"})
    horizons: tuple[int, ...] = field(default=(1, 7), metadata={"help": "forecast steps scored (1 = next bar)"})
    quantile_levels: tuple[float, ...] = field(
        default=(0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95),
        metadata={"help": "levels asked of every model (must include the 50/80/90% interval ends)"},
    )
    metric: str = field(
        default="crps",
        metadata={
            "help": (
                "metric that tune/select minimise (crps, wql, mae, mase, coverage_error) or maximise (hit_rate,"
                " rank_ic)"
            )
        },
    )
    test_frac: float = field(
        default=0.3, metadata={"help": "tune/select: share of the latest origins kept for the test score"}
    )
    chunk: int = field(default=64, metadata={"help": "origins forecast per batched model call"})
    joint_origins: bool = field(
        default=False,
        metadata={
            "help": (
                "score every model on the latest origins common to all symbols (same dates for every symbol; RankIC on"
                " every origin) instead of each symbol's own; models that share across series (Chronos-2"
                " cross-learning) always use common origins"
            )
        },
    )

    def __post_init__(self) -> None:
        flags = {"origins": "--origins", "step": "--step", "chunk": None}
        for name, flag in flags.items():
            if getattr(self, name) < 1:
                raise ConfigError(
                    f"forecast_eval.{name} must be >= 1, got {getattr(self, name)}",
                    hint=_fix(name, 1, flag, table="forecast_eval"),
                )
        if not self.horizons or min(self.horizons) < 1:
            raise ConfigError(
                f"forecast_eval.horizons must be >= 1, got {list(self.horizons)}", hint="e.g. --horizon 1,7"
            )
        if max(self.horizons) > MAX_HORIZON:
            raise ConfigError(
                f"forecast_eval.horizons: {max(self.horizons):,} is above the maximum of {MAX_HORIZON:,} bars",
                hint="e.g. --horizon 1,7",
            )
        _check_levels(self.quantile_levels, "forecast_eval.quantile_levels")
        for width in INTERVALS:
            for q in ((1 - width) / 2, (1 + width) / 2):
                if not any(abs(q - x) < 1e-9 for x in self.quantile_levels):
                    raise ConfigError(
                        f"forecast_eval.quantile_levels lacks {q:g}, needed for the {width:.0%} interval coverage",
                        hint="keep 0.05,0.1,0.25,0.5,0.75,0.9,0.95 in --quantiles",
                    )
        if 0.5 not in self.quantile_levels:
            raise ConfigError("forecast_eval.quantile_levels must include 0.5 (the point forecast)")
        if not 0.0 < self.test_frac < 1.0:
            raise ConfigError(f"forecast_eval.test_frac must be in (0, 1), got {self.test_frac}")

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)
