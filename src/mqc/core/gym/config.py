"""Configs of the gym layer (light module: dataclasses only, no numpy/gymnasium at import time).

``[cube]`` sets the forecast feature cube (``mqc data features``), ``[env]`` the portfolio
environment (action mode, episodes, reward penalties, observation normaliser) and ``[ppo]`` the
Stable-Baselines3 PPO trainer (``mqc train ppo``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.errors import ConfigError

MAX_STEPS = 1_000_000_000


def _positive(obj: object, names: tuple[str, ...], table: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            raise ConfigError(
                f"{table}.{name} must be > 0, got {value}",
                hint=f"pass a positive --{name.replace('_', '-')} (or fix [{table}] {name} in the profile)",
            )


@config_table("cube")
@dataclass(frozen=True)
class CubeConfig:
    """The forecast feature cube ``[T, A, F]``: a registered forecaster run at every bar, summarised."""

    forecaster: str = field(default="bootstrap", metadata={"help": "registered forecaster (mqc forecast models)"})
    prediction_length: int = field(default=5, metadata={"help": "bars ahead each forecast covers", "max": 1000})
    num_samples: int = field(default=256, metadata={"help": "sample paths of sampling forecasters (bootstrap)"})
    window: int = field(default=250, metadata={"help": "bars of returns the baseline forecasters use"})
    context_length: int = field(default=512, metadata={"help": "context bars given to the forecaster"})
    min_context: int = field(default=32, metadata={"help": "bars of history before forecast features are defined"})
    seed: int = field(default=0, metadata={"help": "random seed of sampling forecasters"})
    chunk: int = field(default=256, metadata={"help": "origins per batched forecaster call"})

    def __post_init__(self) -> None:
        _positive(self, ("prediction_length", "num_samples", "window", "context_length", "chunk"), "cube")
        if self.min_context < 2:
            raise ConfigError(f"cube.min_context must be >= 2, got {self.min_context}")


ActionMode = Literal["long", "leverage", "long_short"]


@config_table("env")
@dataclass(frozen=True)
class EnvConfig:
    """The portfolio environment: action decoding, episodes, reward penalties, observation normaliser.

    The market itself (costs, financing, shorting, leverage caps, cash) is the ``[market]`` table.
    """

    action_mode: ActionMode | None = field(
        default=None,
        metadata={
            "help": "long (softmax), leverage (softmax + gross head), long_short (two softmax blocks); "
            "default: long_short when market.allow_short, else long"
        },
    )
    episode_length: int = field(default=128, metadata={"help": "decisions per training episode", "max": 10_000_000})
    turnover_penalty: float = field(default=0.0, metadata={"help": "reward penalty per unit of turnover"})
    drawdown_penalty: float = field(default=0.0, metadata={"help": "penalty per unit of drawdown from the peak"})
    cvar_penalty: float = field(
        default=0.0, metadata={"help": "penalty on the forecast 5% tail loss (CVaR) times exposure"}
    )
    uncertainty_penalty: float = field(
        default=0.0, metadata={"help": "penalty on the forecast std of log return times exposure"}
    )
    loss_limit: float = field(
        default=0.0, metadata={"help": "end the episode when the drawdown exceeds this fraction (0: never)"}
    )
    shutdown_penalty: float = field(default=0.0, metadata={"help": "penalty when the loss limit ends an episode"})
    engine: Literal["auto", "numba", "numpy"] = field(
        default="auto",
        metadata={
            "help": "batched one-bar market step: auto (the compiled kernel when numba is installed), numba or "
            "numpy (whole-array calls; equal to the kernel bit for bit)"
        },
    )
    normalize: bool = field(default=True, metadata={"help": "standardise observations (running train-split stats)"})
    clip_obs: float = field(default=10.0, metadata={"help": "clip standardised observations to +-this"})

    def __post_init__(self) -> None:
        _positive(self, ("episode_length", "clip_obs"), "env")
        for name in (
            "turnover_penalty",
            "drawdown_penalty",
            "cvar_penalty",
            "uncertainty_penalty",
            "shutdown_penalty",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"env.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.loss_limit < 1.0:
            raise ConfigError(f"env.loss_limit must be in [0, 1), got {self.loss_limit}")
        if self.engine not in ("auto", "numba", "numpy"):
            raise ConfigError(f"env.engine must be auto, numba or numpy, got {self.engine!r}")


@config_table("ppo")
@dataclass(frozen=True)
class PPOTrainConfig:
    """Stable-Baselines3 PPO (``mqc train ppo``); names as SB3's."""

    num_timesteps: int = field(default=20_000, metadata={"help": "environment steps to train", "max": MAX_STEPS})
    n_envs: int = field(default=8, metadata={"help": "parallel environments", "max": 4096})
    vec_env: Literal["batched", "dummy", "subproc"] = field(
        default="batched", metadata={"help": "batched (numpy, one process), dummy or subproc (SB3)"}
    )
    n_steps: int = field(default=128, metadata={"help": "steps per env per rollout"})
    batch_size: int = field(default=256, metadata={"help": "minibatch size"})
    n_epochs: int = field(default=4, metadata={"help": "epochs per rollout"})
    learning_rate: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    gamma: float = field(default=0.99, metadata={"help": "discount"})
    gae_lambda: float = field(default=0.95, metadata={"help": "GAE lambda"})
    clip_range: float = field(default=0.2, metadata={"help": "PPO clip range"})
    ent_coef: float = field(default=0.01, metadata={"help": "entropy coefficient at the start"})
    ent_coef_final: float | None = field(
        default=None, metadata={"help": "entropy coefficient at the end (linear anneal; default: constant)"}
    )
    vf_coef: float = field(default=0.5, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "gradient clipping norm"})
    target_kl: float | None = field(default=None, metadata={"help": "stop an update's epochs past this KL"})
    net_arch: tuple[int, ...] = field(default=(64, 64), metadata={"help": "hidden sizes of policy and value MLPs"})
    eval_freq: int = field(default=2048, metadata={"help": "evaluate on val every N timesteps"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, auto"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    select_metric: str = field(default="sharpe", metadata={"help": "val metric best.pt is chosen on"})
    tensorboard: bool = field(default=True, metadata={"help": "TensorBoard logs in the run directory when installed"})
    save_dir: str | None = field(default=None, metadata={"help": "parent folder of the run directory"})
    bc_warmstart: str | None = field(
        default=None, metadata={"help": "offline dataset (mqc data offline, train segment) to clone before PPO"}
    )
    bc_epochs: int = field(default=50, metadata={"help": "behaviour-cloning epochs over the warm-start dataset"})

    def __post_init__(self) -> None:
        _positive(
            self,
            (
                "num_timesteps",
                "n_envs",
                "n_steps",
                "batch_size",
                "n_epochs",
                "learning_rate",
                "eval_freq",
                "threads",
                "bc_epochs",
            ),
            "ppo",
        )
        if not self.net_arch or any(h <= 0 for h in self.net_arch):
            raise ConfigError(f"ppo.net_arch must be positive sizes, got {self.net_arch}")
        for name in ("gamma", "gae_lambda"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ConfigError(f"ppo.{name} must be in (0, 1], got {getattr(self, name)}")
        if self.n_envs * self.n_steps < 2:
            raise ConfigError("ppo.n_envs * n_steps must be >= 2 (SB3 needs a rollout of 2 steps or more)")
