"""Kronos configs (light module: dataclasses only, no numpy/pandas/torch at import time).

``KronosModelConfig`` (profile table ``kronos_model``) holds the forecaster's settings;
``KronosFeatureConfig`` (table ``kronos``) the Monte-Carlo path features of ``mqc train kronos``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mqc.core.config import config_table
from mqc.core.errors import ConfigError

DEFAULT_MODEL = "NeoQuasar/Kronos-small"
DEFAULT_TOKENIZER = "NeoQuasar/Kronos-Tokenizer-base"


def _check_sampling(obj: object, table: str) -> None:
    def bad(name: str, rule: str) -> ConfigError:
        return ConfigError(f"{table}.{name} must be {rule}, got {getattr(obj, name)!r}")

    if obj.context < 2:  # type: ignore[attr-defined]
        raise bad("context", ">= 2 bars")
    if obj.max_context < 1:  # type: ignore[attr-defined]
        raise bad("max_context", ">= 1")
    if obj.sample_count < 1:  # type: ignore[attr-defined]
        raise bad("sample_count", ">= 1")
    if not obj.temperature > 0:  # type: ignore[attr-defined]
        raise bad("temperature", "> 0")
    if not 0 < obj.top_p <= 1:  # type: ignore[attr-defined]
        raise bad("top_p", "in (0, 1]")
    if obj.top_k < 0:  # type: ignore[attr-defined]
        raise bad("top_k", ">= 0 (0 = off)")
    if not obj.clip > 0:  # type: ignore[attr-defined]
        raise bad("clip", "> 0")
    if obj.threads < 1:  # type: ignore[attr-defined]
        raise bad("threads", ">= 1")
    if getattr(obj, "batch_size", 1) < 1:
        raise bad("batch_size", ">= 1")


@config_table("kronos_model")
@dataclass(frozen=True)
class KronosModelConfig:
    """Weights and sampling settings of the ``kronos`` forecaster."""

    model_path: str = field(
        default=DEFAULT_MODEL,
        metadata={
            "help": "Kronos predictor: a directory with config.json + model.safetensors, or a HF id in the local cache"
        },
    )
    tokenizer_path: str = field(
        default=DEFAULT_TOKENIZER,
        metadata={
            "help": "Kronos tokenizer: a directory or a cached HF id (Kronos-mini pairs with Kronos-Tokenizer-2k)"
        },
    )
    context: int = field(default=400, metadata={"help": "context bars fed to the model (the last one is the origin)"})
    max_context: int = field(
        default=512,
        metadata={"help": "model window in tokens (512 for small/base, 2048 for mini); longer sequences slide"},
    )
    sample_count: int = field(
        default=20, metadata={"help": "Monte-Carlo paths per symbol (all are kept: quantiles come from them)"}
    )
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (upstream T)"})
    top_p: float = field(
        default=0.9, metadata={"help": "nucleus sampling threshold (ignored when top_k > 0, as upstream)"}
    )
    top_k: int = field(default=0, metadata={"help": "top-k sampling (0 = off)"})
    clip: float = field(default=5.0, metadata={"help": "clip of the per-window z-scored inputs"})
    device: str = field(default="cpu", metadata={"help": "torch device: cpu, cuda, cuda:0"})
    seed: int = field(default=0, metadata={"help": "random seed of the path sampler"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads"})
    use_cache: bool = field(
        default=True, metadata={"help": "KV cache for autoregressive sampling (same paths, faster)"}
    )

    def __post_init__(self) -> None:
        _check_sampling(self, "kronos_model")


@config_table("kronos")
@dataclass(frozen=True)
class KronosFeatureConfig:
    """Kronos Monte-Carlo path features appended to the candle features by ``mqc train kronos``."""

    model_path: str = field(
        default=DEFAULT_MODEL, metadata={"help": "Kronos predictor directory or cached HF id (--kronos-model)"}
    )
    tokenizer_path: str = field(
        default=DEFAULT_TOKENIZER, metadata={"help": "Kronos tokenizer directory or cached HF id (--kronos-tokenizer)"}
    )
    context: int = field(
        default=256, metadata={"help": "context bars per feature origin, the origin bar included (--kronos-context)"}
    )
    max_context: int = field(default=512, metadata={"help": "model window in tokens (512 small/base, 2048 mini)"})
    horizons: tuple[int, ...] = field(
        default=(1, 12, 48), metadata={"help": "path horizons in bars summarised into features (--kronos-horizons)"}
    )
    sample_count: int = field(default=16, metadata={"help": "sample paths per asset and bar (--kronos-sample-count)"})
    temperature: float = field(default=1.0, metadata={"help": "sampling temperature (--kronos-temperature)"})
    top_p: float = field(default=0.9, metadata={"help": "nucleus threshold (--kronos-top-p)"})
    top_k: int = field(default=0, metadata={"help": "top-k, 0 = off (--kronos-top-k)"})
    clip: float = field(default=5.0, metadata={"help": "clip of the z-scored inputs (--kronos-clip)"})
    seed: int = field(default=0, metadata={"help": "base seed; each batch of origins derives its own"})
    device: str = field(default="cpu", metadata={"help": "torch device for the precompute"})
    threads: int = field(default=1, metadata={"help": "torch CPU threads for the precompute"})
    batch_size: int = field(
        default=32,
        metadata={"help": "origins per batched sampling call (part of the cache key: it fixes the random streams)"},
    )
    use_cache: bool = field(default=True, metadata={"help": "KV cache while sampling (same features, faster)"})

    def __post_init__(self) -> None:
        _check_sampling(self, "kronos")
        if not self.horizons or min(self.horizons) < 1:
            raise ConfigError(
                f"kronos.horizons must be >= 1, got {list(self.horizons)}", hint="e.g. --kronos-horizons 1,12,48"
            )
        if len(set(self.horizons)) != len(self.horizons):
            raise ConfigError(f"kronos.horizons has duplicates: {list(self.horizons)}")

    @property
    def max_horizon(self) -> int:
        return max(self.horizons)
