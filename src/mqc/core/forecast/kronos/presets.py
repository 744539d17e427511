"""Published Kronos architectures (the ``config.json`` of each checkpoint) and random initialisation.

Random checkpoints in the published layout let tests and benchmarks run the real loading and
sampling code without downloading weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mqc.core.errors import ConfigError
from mqc.core.forecast.kronos.checkpoint import save_pretrained
from mqc.core.forecast.kronos.model import Kronos, KronosTokenizer

_DROPOUTS = {"ffn_dropout_p": 0.0, "attn_dropout_p": 0.0, "resid_dropout_p": 0.0}
_BSQ = {"beta": 0.05, "gamma0": 1.0, "gamma": 1.1, "zeta": 0.05, "group_size": 4}

TOKENIZERS: dict[str, dict] = {
    "base": {
        "d_in": 6,
        "d_model": 256,
        "n_heads": 4,
        "ff_dim": 512,
        "n_enc_layers": 4,
        "n_dec_layers": 4,
        "s1_bits": 10,
        "s2_bits": 10,
        **_DROPOUTS,
        **_BSQ,
    },
    "tiny": {
        "d_in": 6,
        "d_model": 16,
        "n_heads": 2,
        "ff_dim": 32,
        "n_enc_layers": 2,
        "n_dec_layers": 2,
        "s1_bits": 4,
        "s2_bits": 4,
        **_DROPOUTS,
        **_BSQ,
    },
}
MODELS: dict[str, dict] = {
    "mini": {
        "s1_bits": 10,
        "s2_bits": 10,
        "n_layers": 4,
        "d_model": 256,
        "n_heads": 4,
        "ff_dim": 512,
        "learn_te": True,
        "token_dropout_p": 0.0,
        **_DROPOUTS,
    },
    "small": {
        "s1_bits": 10,
        "s2_bits": 10,
        "n_layers": 8,
        "d_model": 512,
        "n_heads": 8,
        "ff_dim": 1024,
        "learn_te": True,
        "token_dropout_p": 0.0,
        **_DROPOUTS,
    },
    "base": {
        "s1_bits": 10,
        "s2_bits": 10,
        "n_layers": 12,
        "d_model": 832,
        "n_heads": 16,
        "ff_dim": 2048,
        "learn_te": True,
        "token_dropout_p": 0.0,
        **_DROPOUTS,
    },
    "tiny": {
        "s1_bits": 4,
        "s2_bits": 4,
        "n_layers": 2,
        "d_model": 16,
        "n_heads": 2,
        "ff_dim": 32,
        "learn_te": True,
        "token_dropout_p": 0.0,
        **_DROPOUTS,
    },
}
# max_context of each published model (Kronos-mini pairs with a 2k-token tokenizer of the base shape)
MAX_CONTEXT = {"mini": 2048, "small": 512, "base": 512, "tiny": 512}


def save_random(directory: str | Path, preset: str = "tiny", seed: int = 0) -> tuple[Path, Path]:
    """Write a randomly initialised predictor and tokenizer under ``directory/{model,tokenizer}``.

    Args:
        preset: ``tiny`` (tests), or a published size ``mini``/``small``/``base``.
        seed: torch seed of the initialisation.

    Returns:
        (model directory, tokenizer directory).

    Raises:
        ConfigError: unknown preset.
    """
    if preset not in MODELS:
        raise ConfigError(f"unknown Kronos preset {preset!r}", hint=f"one of {', '.join(MODELS)}")
    torch.manual_seed(seed)
    tok = KronosTokenizer(**TOKENIZERS["tiny" if preset == "tiny" else "base"])
    model = Kronos(**MODELS[preset])
    root = Path(directory)
    return save_pretrained(model, root / "model"), save_pretrained(tok, root / "tokenizer")
