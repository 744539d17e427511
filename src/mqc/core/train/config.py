"""Training configs (light module: dataclasses only, no torch/numpy at import time).

``[dm]`` (formerly ``[train]``, still read with a note) configures ``mqc train dm`` and ``train kronos``
(Dirichlet GRU policy, GRPO / pathwise objectives) and ``[sharpe]`` configures ``mqc train sharpe`` (differentiable
Sharpe, no RL). Defaults train in a few
minutes on a 2-core CPU; docs/train.md lists a GPU profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.errors import ConfigError

# Upper bounds no real run reaches (field metadata "max", checked by config.check_values); sizes
# below them that still would not fit are caught by the memory estimate.
MAX_STEPS = 100_000_000
MAX_BARS = 1_000_000
MAX_WIDTH = 65_536
MAX_LAYERS = 256


# Far above any single machine: a size needing more is refused before the data is even loaded; the
# trainer compares the estimate with the actual device's memory (``check_memory``).
MEMORY_CEILING = 16 * 2**40
_F32 = 4


def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def check_memory(cfg: DMTrainConfig | SharpeTrainConfig, need: int, have: int | None, where: str) -> None:
    """Refuse sizes whose lower-bound memory ``need`` exceeds ``have`` bytes (``where``: the device).

    Raises:
        ConfigError: naming the size fields, the estimate and the memory there is.
    """
    if have is None or need <= have:
        return
    table = "dm" if isinstance(cfg, DMTrainConfig) else "sharpe"
    raise ConfigError(
        f"{table}.hidden_size {cfg.hidden_size} x layers {cfg.layers} (lookback {cfg.lookback}, horizon {cfg.horizon}, "
        f"{cfg.microbatch_windows or cfg.batch_windows} windows per pass) needs at least {_gib(need)} for weights, "
        f"gradients, optimiser state and activations; {where}: {_gib(have)}",
        hint="lower --hidden-size/--layers, or --microbatch-windows / --gradient-checkpointing for the activations",
    )


def _positive(obj: object, names: tuple[str, ...], table: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            raise ConfigError(
                f"{table}.{name} must be > 0, got {value}",
                hint=f"pass a positive --{name.replace('_', '-')} (or fix [{table}] {name} in the profile)",
            )


def _non_negative(obj: object, names: tuple[str, ...], table: str) -> None:
    for name in names:
        if getattr(obj, name) < 0:
            raise ConfigError(
                f"{table}.{name} must be >= 0, got {getattr(obj, name)}",
                hint=f"pass --{name.replace('_', '-')} 0 or more (or fix [{table}] {name} in the profile)",
            )


@dataclass(frozen=True)
class _RuntimeFields:
    """Fields every trainer shares: budget, evaluation, hardware, reproducibility, outputs."""

    steps: int = field(default=300, metadata={"help": "optimiser steps (ignored when epochs is set)", "max": MAX_STEPS})
    epochs: float | None = field(
        default=None,
        metadata={
            "help": "train for this many passes over the train split's decision bars instead of --steps",
            "max": 1e6,
        },
    )
    eval_interval: int = field(default=50, metadata={"help": "evaluate on val (and save latest.pt) every N steps"})
    log_interval: int = field(default=10, metadata={"help": "write a train row to metrics.jsonl every N steps"})
    select_metric: Literal["sharpe", "total_return", "sortino", "calmar"] = field(
        default="sharpe", metadata={"help": "val metric that picks best.pt"}
    )
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate"})
    muon_lr: float = field(default=0.02, metadata={"help": "Muon learning rate for hidden 2-D matrices"})
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay (AdamW and Muon)"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the global gradient norm (0: off)"})
    muon: bool = field(
        default=True,
        metadata={"help": "torch.optim.Muon for hidden 2-D matrices + AdamW for the rest (false: AdamW only)"},
    )
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA only; ignored on CPU)"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    dtype: Literal["auto", "fp32", "bf16"] = field(
        default="auto", metadata={"help": "auto: fp32 on CPU, bf16 autocast on CUDA"}
    )
    microbatch_windows: int | None = field(
        default=None, metadata={"help": "windows per forward/backward pass; gradients accumulate up to batch_windows"}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "recompute the encoder in backward to save memory"}
    )
    threads: int = field(default=1, metadata={"help": "torch CPU threads", "max": 4096})
    seed: int = field(default=0, metadata={"help": "seed for weights, window sampling and rollouts"})
    init_checkpoint: str | None = field(
        default=None, metadata={"help": "start from the weights of this checkpoint (same kind and shapes)"}
    )
    save_dir: str | None = field(
        default=None, metadata={"help": "parent of the run directory (default: <runs dir>/<kind>)"}
    )
    risk_aversion: float = field(
        default=0.0, metadata={"help": "penalty weight on the annualised variance of per-bar net returns"}
    )
    drawdown_lambda: float = field(
        default=0.0, metadata={"help": "penalty weight on the differentiable max drawdown (fraction) of each rollout"}
    )

    def _check_runtime(self, table: str) -> None:
        _positive(
            self,
            ("steps", "eval_interval", "log_interval", "lr", "muon_lr", "threads", "microbatch_windows", "epochs"),
            table,
        )
        _non_negative(self, ("weight_decay", "grad_clip", "risk_aversion", "drawdown_lambda"), table)
        if not (self.device == "auto" or self.device == "cpu" or self.device.startswith("cuda")):
            raise ConfigError(f"{table}.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@config_table("dm", old_names=("train",))
@dataclass(frozen=True)
class DMTrainConfig(_RuntimeFields):
    """``mqc train dm``: a Dirichlet GRU portfolio policy trained by GRPO and/or pathwise gradients."""

    lookback: int = field(
        default=192, metadata={"help": "bars of features the policy sees for each decision", "max": MAX_BARS}
    )
    horizon: int = field(
        default=16, metadata={"help": "consecutive decisions (bars) per sampled window", "max": MAX_BARS}
    )
    batch_windows: int = field(
        default=8, metadata={"help": "windows sampled from the train split per step", "max": MAX_BARS}
    )
    rollout_groups: int = field(
        default=8, metadata={"help": "K Dirichlet rollouts per window (the GRPO group)", "max": 4096}
    )
    hidden_size: int = field(default=32, metadata={"help": "GRU hidden size", "max": MAX_WIDTH})
    layers: int = field(default=1, metadata={"help": "GRU layers", "max": MAX_LAYERS})
    objective: Literal["grpo", "pathwise", "hybrid"] = field(
        default="hybrid",
        metadata={
            "help": (
                "grpo: score-function with group advantages; pathwise: reparameterised samples through the simulator;"
                " hybrid: both"
            )
        },
    )
    reward: Literal["log_wealth", "sharpe"] = field(
        default="log_wealth",
        metadata={"help": "per-rollout reward before penalties: annualised log growth or annualised Sharpe"},
    )
    kl_coef: float = field(default=0.01, metadata={"help": "weight of KL(policy || EMA reference policy)"})
    ema_decay: float = field(default=0.99, metadata={"help": "EMA decay of the reference policy"})
    kl_every: int = field(
        default=8, metadata={"help": "compute the KL on every Nth decision of a window (unbiased subsample; 1: all)"}
    )
    entropy_coef: float = field(default=0.001, metadata={"help": "weight of the Dirichlet entropy bonus"})
    alpha_min: float = field(default=0.05, metadata={"help": "floor added to softplus concentrations (alpha > 0)"})

    def __post_init__(self) -> None:
        self._check_runtime("dm")
        _positive(
            self,
            (
                "lookback",
                "horizon",
                "batch_windows",
                "rollout_groups",
                "hidden_size",
                "layers",
                "alpha_min",
                "kl_every",
            ),
            "dm",
        )
        _non_negative(self, ("kl_coef", "entropy_coef"), "dm")
        if self.rollout_groups < 2 and self.objective != "pathwise":
            raise ConfigError(
                "dm.rollout_groups must be >= 2 for grpo/hybrid (advantages are normalised within a group)"
            )
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"dm.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.microbatch_windows is not None and self.microbatch_windows > self.batch_windows:
            raise ConfigError(
                f"dm.microbatch_windows ({self.microbatch_windows}) cannot exceed batch_windows ({self.batch_windows})"
            )
        check_memory(self, self.min_memory_bytes(), MEMORY_CEILING, "the most mqc allows on any machine")

    def min_memory_bytes(self, n_inputs: int = 1, n_assets: int = 1) -> int:
        """A lower bound of one training step's memory: every parameter 4 times (weights, gradient,
        two AdamW moments) plus, without gradient checkpointing, 3 floats per hidden unit per
        recurrence step of a microbatch (``n_inputs``: assets x features)."""
        h = self.hidden_size
        params = n_inputs * h + self.layers * 6 * h * h + h * (n_assets + 1)
        steps = (self.microbatch_windows or self.batch_windows) * self.horizon * self.lookback
        acts = 0 if self.gradient_checkpointing else 3 * steps * h * self.layers
        return _F32 * (4 * params + acts)


@config_table("sharpe")
@dataclass(frozen=True)
class SharpeTrainConfig(_RuntimeFields):
    """``mqc train sharpe``: a small per-asset network trained to maximise Sharpe net of costs."""

    lookback: int = field(default=8, metadata={"help": "bars of features per asset the network sees", "max": MAX_BARS})
    horizon: int = field(
        default=128, metadata={"help": "decisions per sampled window (the Sharpe is computed over it)", "max": MAX_BARS}
    )
    batch_windows: int = field(default=16, metadata={"help": "windows per step", "max": MAX_BARS})
    hidden_size: int = field(default=32, metadata={"help": "hidden width of the per-asset MLP", "max": MAX_WIDTH})
    layers: int = field(default=2, metadata={"help": "hidden layers of the per-asset MLP", "max": MAX_LAYERS})
    steps: int = field(default=300, metadata={"help": "optimiser steps (ignored when epochs is set)", "max": MAX_STEPS})
    lr: float = field(default=3e-3, metadata={"help": "AdamW learning rate"})

    def __post_init__(self) -> None:
        self._check_runtime("sharpe")
        _positive(self, ("lookback", "horizon", "batch_windows", "hidden_size", "layers"), "sharpe")
        if self.horizon < 2:
            raise ConfigError("sharpe.horizon must be >= 2 bars (a Sharpe needs a variance)")
        if self.microbatch_windows is not None and self.microbatch_windows > self.batch_windows:
            raise ConfigError(
                f"sharpe.microbatch_windows ({self.microbatch_windows}) cannot exceed batch_windows"
                f" ({self.batch_windows})"
            )
        check_memory(self, self.min_memory_bytes(), MEMORY_CEILING, "the most mqc allows on any machine")

    def min_memory_bytes(self, n_inputs: int = 1, n_assets: int = 1) -> int:
        """A lower bound of one training step's memory (see ``DMTrainConfig.min_memory_bytes``);
        ``n_inputs`` here is the features per asset."""
        h = self.hidden_size
        params = self.lookback * n_inputs * h + (self.layers - 1) * h * h
        acts = (self.microbatch_windows or self.batch_windows) * self.horizon * n_assets * h * self.layers
        return _F32 * (4 * params + acts)


@config_table("log")
@dataclass(frozen=True)
class LogConfig:
    """``[log]``: metric sinks beside metrics.jsonl for every trainer (fed from the harness; core/train/sinks.py)."""

    tensorboard: str | None = field(
        default=None, metadata={"help": "TensorBoard folder: each run's scalars under DIR/<run> (tensorboard extra)"}
    )
    wandb: str | None = field(default=None, metadata={"help": "W&B project: each run's metrics as one W&B run"})
    wandb_group: str | None = field(default=None, metadata={"help": "W&B group of the runs (a sweep: its name)"})
    wandb_mode: Literal["auto", "offline", "online"] = field(
        default="auto", metadata={"help": "auto: online when logged in to W&B, offline otherwise"}
    )

    def __post_init__(self) -> None:
        for name in ("tensorboard", "wandb", "wandb_group"):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise ConfigError(
                    f"log.{name} is empty", hint=f"give a value (--{name.replace('_', '-')}) or leave it unset"
                )

    @property
    def active(self) -> bool:
        return self.tensorboard is not None or self.wandb is not None
