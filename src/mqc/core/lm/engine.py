"""Autoregressive sampling from a ``GPT``, with or without the KV cache (same draws either way)."""

from __future__ import annotations

import torch

from mqc.core.errors import ConfigError
from mqc.core.lm.gpt import GPT
from mqc.core.nn.sampling import sample_next, sample_with_noise


@torch.no_grad()
def generate(
    model: GPT,
    prompt: torch.Tensor,
    steps: int,
    *,
    generator: torch.Generator | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    use_cache: bool = True,
    allowed: int | None = None,
    noise: torch.Tensor | None = None,
    group: int = 1,
) -> torch.Tensor:
    """Sample ``steps`` tokens after ``prompt [B, T]``; returns ``[B * group, steps]``.

    ``group``: samples per prompt row; row ``i * group + j`` continues prompt row ``i`` (the order of
    ``prompt.repeat_interleave(group)``, and the same draws). With the cache the prompt is prefilled
    once per row and its keys and values copied to the group.

    With ``use_cache`` the prompt is prefilled once and each step feeds one token; without it every
    step re-runs the whole sequence. ``allowed``: only ids below it may be drawn (e.g. candle codes,
    never the separator). The context is cut to the last ``sequence_len`` tokens without the cache.
    ``noise``: per-row Gumbel noise ``[B * group, steps, V]`` (``gumbel_noise``) used instead of
    ``generator``, so each row's draws are its own whatever batch it is in.
    """
    if group < 1:
        raise ConfigError(f"group must be >= 1, got {group}")
    was = model.training
    model.eval()
    out = torch.empty(prompt.shape[0] * group, steps, dtype=torch.long, device=prompt.device)
    if use_cache:
        cache = model.new_cache(prompt.shape[0], prompt.shape[1] + steps)
        logits = model(prompt, cache)[:, -1]
        if group > 1:
            cache, logits = cache.expand(group), logits.repeat_interleave(group, dim=0)
    else:
        cache, seq = None, prompt.repeat_interleave(group, dim=0)
        logits = model(seq)[:, -1]
    for i in range(steps):
        if allowed is not None:
            logits = logits[:, :allowed]
        if noise is not None:
            nxt = sample_with_noise(logits, noise[:, i], temperature, top_k, top_p)
        else:
            nxt = sample_next(logits, generator, temperature, top_k, top_p)
        out[:, i] = nxt[:, 0]
        if i == steps - 1:
            break
        if cache is not None:
            logits = model(nxt, cache)[:, -1]
        else:
            seq = torch.cat([seq, nxt], dim=1)
            logits = model(seq[:, -model.config.sequence_len :])[:, -1]
    model.train(was)
    return out
