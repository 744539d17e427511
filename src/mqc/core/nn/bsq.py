"""Binary spherical quantisation (BSQ): a latent is projected on the unit sphere and each dimension
is replaced by its sign, scaled by ``1/sqrt(d)``; the code index is the bits packed LSB first.
There is no codebook, so nothing can collapse. Kronos's tokenizer and the candle LM's share it."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """``[..., n]`` 0/1 -> ``[...]`` integer ids (bit j has weight ``2**j``)."""
    weights = 2 ** torch.arange(bits.shape[-1], dtype=torch.long, device=bits.device)
    return (bits.long() * weights).sum(-1)


def unpack_bits(ids: torch.Tensor, n_bits: int) -> torch.Tensor:
    """Inverse of :func:`pack_bits`: ``[...]`` ids -> ``[..., n_bits]`` booleans."""
    weights = 2 ** torch.arange(n_bits, dtype=torch.long, device=ids.device)
    return (ids.unsqueeze(-1) & weights) != 0


def codes_of(bits: torch.Tensor) -> torch.Tensor:
    """The code vector of ``bits`` ``[..., d]``: ``(2 b - 1) / sqrt(d)`` (a point on the unit sphere)."""
    return (bits.float() * 2 - 1) * (1.0 / math.sqrt(bits.shape[-1]))


def quantize(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BSQ of latents ``z [..., d]``.

    Returns:
        (code vectors with a straight-through gradient to the normalised ``z``, ids ``[...]``).
    """
    u = F.normalize(z, dim=-1)
    bits = u > 0
    q = codes_of(bits)
    return u + (q - u).detach(), pack_bits(bits)
