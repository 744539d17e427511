"""Config tables of ``mqc stage1..4`` (light module: dataclasses only).

One table per stage (``[stage1]`` .. ``[stage4]``), each with the shared model / runtime fields, so
a profile can size the model once per stage. Later stages read the model's sizes from ``--in``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.errors import ConfigError

REWARDS = ("pnl", "return_mse", "token_acc")


@dataclass(frozen=True)
class _LMFields:
    """Runtime fields every stage shares (the harness reads these names)."""

    epochs: float = field(default=20.0, metadata={"help": "passes over the train tokens", "max": 1e6})
    batch: int = field(default=16, metadata={"help": "sequences per optimiser step (global, across ranks)"})
    microbatch_windows: int | None = field(default=None, metadata={"help": "sequences per forward/backward pass"})
    lr: float = field(default=1e-3, metadata={"help": "AdamW learning rate (embeddings, head)"})
    muon_lr: float = field(default=0.005, metadata={"help": "Muon learning rate for the blocks' matrices"})
    muon: bool = field(default=True, metadata={"help": "Muon for hidden matrices + AdamW for the rest"})
    weight_decay: float = field(default=0.0, metadata={"help": "weight decay"})
    grad_clip: float = field(default=1.0, metadata={"help": "clip the global gradient norm (0: off)"})
    eval_interval: int = field(default=5, metadata={"help": "evaluate on val and save latest.pt every N steps"})
    log_interval: int = field(default=5, metadata={"help": "write a train row to metrics.jsonl every N steps"})
    device: str = field(default="auto", metadata={"help": "auto, cpu, cuda or cuda:N"})
    dtype: Literal["auto", "fp32", "bf16"] = field(default="auto", metadata={"help": "auto: fp32 on CPU, bf16 on CUDA"})
    compile: bool = field(default=False, metadata={"help": "torch.compile the model (CUDA only)"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads", "max": 4096})
    seed: int = field(default=0, metadata={"help": "seed for weights, batches and samples"})
    save_dir: str | None = field(default=None, metadata={"help": "parent of the run directory (default runs/<stage>)"})
    in_run: str | None = field(default=None, metadata={"help": "the previous stage's run (default: its latest)"})

    @property
    def batch_windows(self) -> int:
        return self.batch

    @property
    def select_metric(self) -> str:
        return "score"

    def _check(self, table: str) -> None:
        for name in ("epochs", "batch", "lr", "muon_lr", "eval_interval", "log_interval", "threads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{table}.{name} must be > 0, got {getattr(self, name)}")
        if self.microbatch_windows is not None and self.microbatch_windows <= 0:
            raise ConfigError(f"{table}.microbatch_windows must be > 0, got {self.microbatch_windows}")
        if not (self.device in ("auto", "cpu") or self.device.startswith("cuda")):
            raise ConfigError(f"{table}.device must be auto, cpu, cuda or cuda:N, got {self.device!r}")


@config_table("stage1")
@dataclass(frozen=True)
class Stage1Config(_LMFields):
    """Tokenizer fit + next-token pretraining on every selected asset's train stream."""

    seq_len: int = field(default=256, metadata={"help": "tokens per training sequence (the model's context)"})
    vocab: int = field(default=512, metadata={"help": "candle codes (the separator token is added)"})
    layers: int = field(default=4, metadata={"help": "transformer blocks"})
    heads: int = field(default=4, metadata={"help": "attention heads"})
    kv_heads: int = field(default=4, metadata={"help": "key/value heads (grouped-query attention)"})
    embd: int = field(default=256, metadata={"help": "model width"})
    depth: int = field(default=0, metadata={"help": "size dial: width 64*depth, 64-dim heads (0: use the above)"})
    quantizer: Literal["vq", "bsq", "fsq"] = field(
        default="vq",
        metadata={"help": "vq: VQ-VAE with an EMA codebook; bsq: binary spherical; fsq: finite scalar (no codebook)"},
    )
    code_dim: int = field(default=32, metadata={"help": "codebook vector size (vq)"})
    commitment: float = field(default=0.25, metadata={"help": "commitment loss weight"})
    decay: float = field(default=0.99, metadata={"help": "EMA decay of the codebook"})
    tokenizer_steps: int = field(default=400, metadata={"help": "optimiser steps of the tokenizer fit"})
    tokenizer: str | None = field(default=None, metadata={"help": "reuse the tokenizer of this stage-1 run"})

    def __post_init__(self) -> None:
        self._check("stage1")
        if self.quantizer == "bsq" and self.vocab & (self.vocab - 1):
            raise ConfigError(
                f"--quantizer bsq needs a power-of-two --vocab, got {self.vocab}", hint="e.g. --vocab 512"
            )
        if self.quantizer == "fsq":
            from mqc.core.nn.fsq import levels_for

            levels_for(self.vocab)  # raises for a vocab with no grid of small levels
        if not 0 < self.decay < 1:
            raise ConfigError(f"stage1.decay must be in (0, 1), got {self.decay}")
        for name in ("seq_len", "vocab", "layers", "heads", "kv_heads", "embd", "code_dim", "tokenizer_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"stage1.{name} must be >= 1, got {getattr(self, name)}")
        if self.vocab < 2:
            raise ConfigError("stage1.vocab must be >= 2")


@config_table("stage2")
@dataclass(frozen=True)
class Stage2Config(_LMFields):
    """Midtraining on one asset or a subset, at a lower learning rate."""

    epochs: float = field(default=10.0, metadata={"help": "passes over the subset's train tokens", "max": 1e6})
    lr: float = field(default=3e-4, metadata={"help": "AdamW learning rate (lower than stage 1)"})
    muon_lr: float = field(default=0.002, metadata={"help": "Muon learning rate (lower than stage 1)"})

    def __post_init__(self) -> None:
        self._check("stage2")


@config_table("stage3")
@dataclass(frozen=True)
class Stage3Config(_LMFields):
    """Supervised fine-tuning with the loss on the horizon tokens only."""

    epochs: float = field(
        default=10.0, metadata={"help": "passes over the train candles as horizon targets", "max": 1e6}
    )
    lr: float = field(default=3e-4, metadata={"help": "AdamW learning rate"})
    muon_lr: float = field(default=0.002, metadata={"help": "Muon learning rate"})
    context_len: int = field(default=128, metadata={"help": "candles of context before the horizon"})
    horizon: int = field(default=32, metadata={"help": "candles to forecast (the loss is on these only)"})

    def __post_init__(self) -> None:
        self._check("stage3")
        if self.context_len < 1 or self.horizon < 1:
            raise ConfigError(f"stage3 context_len and horizon must be >= 1, got {self.context_len}, {self.horizon}")


@config_table("stage4")
@dataclass(frozen=True)
class Stage4Config(_LMFields):
    """Policy-gradient fine-tuning on sampled horizons (GRPO group baseline, KL to stage 3)."""

    steps: int = field(default=200, metadata={"help": "optimiser steps"})
    eval_interval: int = field(default=25, metadata={"help": "evaluate on val and save latest.pt every N steps"})
    batch_episodes: int = field(default=8, metadata={"help": "contexts per step (from the train split)"})
    group: int = field(default=4, metadata={"help": "sampled horizons per context (the group baseline)"})
    reward: Literal["pnl", "return_mse", "token_acc"] = field(
        default="pnl", metadata={"help": "pnl (net of costs, shared market model), return_mse or token_acc"}
    )
    kl: float = field(default=0.05, metadata={"help": "weight of the KL penalty to the frozen stage-3 model"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature of the episodes"})
    top_k: int = field(default=0, metadata={"help": "top-k filter of the samples (0: off)"})
    lr: float = field(default=3e-4, metadata={"help": "AdamW learning rate"})
    muon_lr: float = field(default=0.002, metadata={"help": "Muon learning rate"})
    eval_episodes: int = field(default=32, metadata={"help": "val contexts per evaluation"})

    @property
    def batch_windows(self) -> int:
        return self.batch_episodes

    def __post_init__(self) -> None:
        self._check("stage4")
        for name in ("steps", "batch_episodes", "eval_episodes"):
            if getattr(self, name) < 1:
                raise ConfigError(f"stage4.{name} must be >= 1, got {getattr(self, name)}")
        if self.group < 2:
            raise ConfigError(f"stage4.group must be >= 2 (the baseline is the group mean), got {self.group}")
        if self.reward not in REWARDS:
            raise ConfigError(f"stage4.reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        if self.kl < 0 or not self.temperature > 0:
            raise ConfigError("stage4.kl must be >= 0 and temperature > 0")
