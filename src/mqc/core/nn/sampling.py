"""Logit filtering and one-token draws (temperature, top-k, top-p), for every autoregressive sampler."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Top-k when ``top_k > 0`` (top-p is then ignored, as Kronos upstream does), else nucleus top-p.

    Args:
        logits: ``[B, V]``.
        top_k: keep the k largest (0 = off).
        top_p: keep the smallest set whose probability reaches ``top_p`` (1.0 = off).
    """
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k)[0][..., -1, None]
        return logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.cumsum(F.softmax(sorted_logits, dim=-1), dim=-1)
        drop = cum > top_p
        # shift right so the token that crosses the threshold is kept, and always keep the first
        drop[..., 1:] = drop[..., :-1].clone()
        drop[..., 0] = False
        return logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def sample_next(
    logits: torch.Tensor,
    generator: torch.Generator | None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
) -> torch.Tensor:
    """One id per row, ``[B, 1]``: temperature, then the filter, then a multinomial draw
    (``temperature == 0``: the argmax)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(logits / temperature, top_k, top_p)
    return torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)


def gumbel_noise(generator: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    """Gumbel(0, 1) noise of ``shape`` from ``generator``; ``argmax(logits + noise)`` is a softmax draw."""
    u = torch.rand(shape, generator=generator).clamp_(1e-20, 1.0 - 1e-7)
    return -torch.log(-torch.log(u))


def sample_with_noise(
    logits: torch.Tensor, noise: torch.Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0
) -> torch.Tensor:
    """One id per row, ``[B, 1]``, by the Gumbel-max trick with pre-drawn per-row ``noise [B, V]``:
    the same distribution as :func:`sample_next`, but a row's draw depends on its own noise only,
    so it does not change with the batch it is computed in."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = filter_logits(logits / temperature, top_k, top_p)
    return (logits + noise[:, : logits.shape[-1]].to(logits.device)).argmax(dim=-1, keepdim=True)
