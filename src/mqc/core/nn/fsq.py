"""Finite scalar quantisation (FSQ): each latent dimension is bounded by a tanh and rounded to one of
``L_i`` levels; the code index is the levels' digits in mixed radix (dimension 0 first). There is
no codebook, so nothing can collapse, and every code is a point of a fixed grid in [-1, 1]^d."""

from __future__ import annotations

import math

import torch

from mqc.core.errors import ConfigError

MAX_LEVEL = 16  # the largest number of levels one dimension may have


def levels_for(codes: int) -> tuple[int, ...]:
    """Levels per dimension whose product is ``codes``: its prime factors shared out, largest first,
    to the currently smallest of ``max(2, round(log8 codes))`` dimensions (512 -> 8 x 8 x 8).

    Raises:
        ConfigError: ``codes`` has a prime factor above ``MAX_LEVEL`` (no grid of small levels).
    """
    if codes < 2:
        raise ConfigError(f"fsq needs at least 2 codes, got {codes}")
    primes, n, p = [], codes, 2
    while n > 1:
        while n % p == 0:
            primes.append(p)
            n //= p
        p += 1
    if max(primes) > MAX_LEVEL:
        raise ConfigError(
            f"--quantizer fsq needs a --vocab whose prime factors are at most {MAX_LEVEL}, got {codes}",
            hint="e.g. --vocab 512 (8 x 8 x 8) or 1000 (10 x 10 x 10)",
        )
    dims = min(len(primes), max(2, round(math.log(codes, 8))))
    levels = [1] * dims
    for q in sorted(primes, reverse=True):
        i = min(range(dims), key=lambda j: levels[j])
        levels[i] *= q
    return tuple(sorted(levels, reverse=True))


def _grid(levels: tuple[int, ...], like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lv = torch.tensor(levels, dtype=like.dtype, device=like.device)
    return lv, torch.div(lv, 2, rounding_mode="floor")


def bound(z: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """``z [..., d]`` squashed so dimension i rounds to ``L_i`` integers: ``-L//2 .. (L-1)//2``."""
    lv, _ = _grid(levels, z)
    half = (lv - 1) * (1 + 1e-3) / 2  # a little over, so an even level's offset keeps atanh finite
    offset = torch.where(lv.remainder(2) == 0, 0.5, 0.0)
    shift = torch.atanh(offset / half)
    return torch.tanh(z + shift) * half - offset


def quantize(z: torch.Tensor, levels: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """FSQ of latents ``z [..., d]`` (``d = len(levels)``).

    Returns:
        (code vectors in [-1, 1] with a straight-through gradient, ids ``[...]``).
    """
    b = bound(z, levels)
    q = b + (torch.round(b) - b).detach()
    lv, half = _grid(levels, z)
    digits = (torch.round(b) + half).long()
    radix = torch.cumprod(torch.cat([lv.new_ones(1), lv[:-1]]), 0).long()
    return q / half, (digits * radix).sum(-1)


def codes_of(ids: torch.Tensor, levels: tuple[int, ...]) -> torch.Tensor:
    """The code vectors ``[..., d]`` of ids ``[...]`` (inverse of the ids of :func:`quantize`)."""
    lv, half = _grid(levels, torch.zeros(0))
    radix = torch.cumprod(torch.cat([lv.new_ones(1), lv[:-1]]), 0).long()
    digits = (ids.unsqueeze(-1) // radix.to(ids.device)) % lv.long().to(ids.device)
    return (digits.float() - half.to(ids.device)) / half.to(ids.device)
