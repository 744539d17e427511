"""Randomly initialised Chronos-2 checkpoints in the real checkpoint layout, for tests and benchmarks.

``save_random_chronos2(dir, size="tiny")`` writes ``config.json`` + ``model.safetensors`` exactly as
``save_pretrained`` does for ``amazon/chronos-2``, so loading goes through the real
``from_pretrained`` path. ``size="full"`` uses the published chronos-2 dimensions (~120M parameters).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# Quantile heads of the published chronos-2 checkpoint.
CHRONOS2_QUANTILES = [0.01, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.99]

SIZES = {
    "tiny": {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_heads": 4, "context_length": 512, "max_output_patches": 4},
    "full": {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12, "context_length": 8192, "max_output_patches": 64},
}


def save_random_chronos2(directory: str | Path, size: Literal["tiny", "full"] = "tiny", seed: int = 0) -> Path:
    """Build a random-init Chronos-2 model of ``size`` and ``save_pretrained`` it into ``directory``."""
    import torch
    from chronos.chronos2 import Chronos2Model
    from chronos.chronos2.config import Chronos2CoreConfig

    dims = dict(SIZES[size])
    context_length = dims.pop("context_length")
    max_out = dims.pop("max_output_patches")
    config = Chronos2CoreConfig(
        **dims,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        architectures=["Chronos2Model"],
        chronos_pipeline_class="Chronos2Pipeline",
        chronos_config={
            "context_length": context_length,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "output_patch_size": 16,
            "quantiles": CHRONOS2_QUANTILES,
            "use_reg_token": True,
            "use_arcsinh": True,
            "max_output_patches": max_out,
            "time_encoding_scale": context_length,
        },
    )
    torch.manual_seed(seed)
    model = Chronos2Model(config)
    out = Path(directory)
    model.save_pretrained(out)
    return out
