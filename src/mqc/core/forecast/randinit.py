"""Randomly initialised Chronos checkpoints in the real checkpoint layout, for tests and benchmarks.

``save_random_chronos2(dir, size="tiny")`` writes ``config.json`` + ``model.safetensors`` exactly as
``save_pretrained`` does for ``amazon/chronos-2``, so loading goes through the real
``from_pretrained`` path. ``size="full"`` uses the published chronos-2 dimensions (~120M parameters).
``save_random_chronos_bolt`` and ``save_random_chronos_t5`` do the same, at toy sizes, for the
``amazon/chronos-bolt-*`` (T5 encoder-decoder with patch quantile heads) and the original
``amazon/chronos-t5-*`` (token-sampling T5) layouts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

# Quantile heads of the published chronos-2 checkpoint.
CHRONOS2_QUANTILES = [
    0.01,
    0.05,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.35,
    0.4,
    0.45,
    0.5,
    0.55,
    0.6,
    0.65,
    0.7,
    0.75,
    0.8,
    0.85,
    0.9,
    0.95,
    0.99,
]

SIZES = {
    "tiny": {
        "d_model": 32,
        "d_kv": 8,
        "d_ff": 64,
        "num_layers": 1,
        "num_heads": 4,
        "context_length": 512,
        "max_output_patches": 4,
    },
    "full": {
        "d_model": 768,
        "d_kv": 64,
        "d_ff": 3072,
        "num_layers": 12,
        "num_heads": 12,
        "context_length": 8192,
        "max_output_patches": 64,
    },
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


# Quantile heads of the published chronos-bolt checkpoints.
BOLT_QUANTILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
# T5 dimensions of the toy Bolt / Chronos-T5 checkpoints: big enough to run every code path, small
# enough to build, save and load in well under a second.
_TOY_T5 = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 4}


def save_random_chronos_bolt(directory: str | Path, seed: int = 0) -> Path:
    """Build a toy random-init Chronos-Bolt model and ``save_pretrained`` it into ``directory``.

    The config has the layout of ``amazon/chronos-bolt-*`` (a ``T5Config`` with ``chronos_config``
    and ``chronos_pipeline_class="ChronosBoltPipeline"``), at toy dimensions.
    """
    import torch
    from chronos.chronos_bolt import ChronosBoltModelForForecasting
    from transformers import T5Config

    config = T5Config(
        **_TOY_T5,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        vocab_size=2,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        architectures=["ChronosBoltModelForForecasting"],
        chronos_pipeline_class="ChronosBoltPipeline",
        chronos_config={
            "context_length": 512,
            "prediction_length": 64,
            "input_patch_size": 16,
            "input_patch_stride": 16,
            "quantiles": BOLT_QUANTILES,
            "use_reg_token": True,
        },
    )
    torch.manual_seed(seed)
    model = ChronosBoltModelForForecasting(config)
    out = Path(directory)
    model.save_pretrained(out)
    return out


def save_random_chronos_t5(directory: str | Path, seed: int = 0, n_tokens: int = 128) -> Path:
    """Build a toy random-init original Chronos (T5, mean-scaled uniform bins) and save it.

    The config has the layout of ``amazon/chronos-t5-*`` (``T5ForConditionalGeneration`` with a
    ``chronos_config`` and no ``chronos_pipeline_class``, so the default ``ChronosPipeline`` loads
    it); ``n_tokens`` is far below the published 4096 to keep the vocabulary tiny.
    """
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    config = T5Config(
        **_TOY_T5,
        dropout_rate=0.1,
        feed_forward_proj="relu",
        vocab_size=n_tokens,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        architectures=["T5ForConditionalGeneration"],
        chronos_config={
            "tokenizer_class": "MeanScaleUniformBins",
            "tokenizer_kwargs": {"low_limit": -15.0, "high_limit": 15.0},
            "context_length": 512,
            "prediction_length": 64,
            "n_tokens": n_tokens,
            "n_special_tokens": 2,
            "pad_token_id": 0,
            "eos_token_id": 1,
            "use_eos_token": True,
            "model_type": "seq2seq",
            "num_samples": 20,
            "temperature": 1.0,
            "top_k": 50,
            "top_p": 1.0,
        },
    )
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config)
    out = Path(directory)
    model.save_pretrained(out)
    return out
