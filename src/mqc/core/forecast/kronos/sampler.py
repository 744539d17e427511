"""Monte-Carlo sampling of Kronos candle paths, batched over windows and paths, with a KV cache.

Reproduces the published inference: each window is z-scored per field (population std + 1e-5) and
clipped, tokenised once, then extended one bar at a time by sampling the coarse token and then the
fine token (temperature, then top-k *or* top-p as upstream does, then a multinomial draw) inside a
sliding ``max_context`` window; the tokens are decoded and de-normalised. Unlike upstream, every
path is returned instead of their mean.

With ``use_cache`` each step appends one position to per-layer key/value caches. This is exact
while the window does not slide; when it slides, every hidden state changes (the dropped first bar
was visible to all of them), so the cache is rebuilt from the new window, which costs what the
uncached step costs. Rows are laid out window-major (row = window * sample_count + path) and draws
use one generator, exactly like upstream, so a seed gives the same paths with or without the cache.

The paths of a window share its context, so the context is prefilled once per window and its keys
and values are shared by the window's paths (never copied per path), and the final tokenizer
decode runs the shared context once per window and only the sampled bars per path. Both are exact
rewrites of the same computation (the attention is causal); the floats agree with the per-path
computation to rounding (~1e-7), and the sampled tokens are the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mqc.core.errors import ConfigError
from mqc.core.forecast.kronos.layers import LayerCache
from mqc.core.forecast.kronos.model import Kronos, KronosCache, KronosTokenizer
from mqc.core.nn.candles import fit_scale, standardize
from mqc.core.nn.sampling import filter_logits, sample_next

__all__ = ["filter_logits", "sample_next"]  # filter_logits lives in core/nn; kept importable here

CANDLE_FIELDS = ("open", "high", "low", "close", "volume", "amount")


@dataclass(frozen=True)
class SamplingSettings:
    """How paths are drawn (upstream names: ``T``, ``top_k``, ``top_p``, ``sample_count``, ``clip``)."""

    sample_count: int = 1
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.9
    clip: float = 5.0
    max_context: int = 512
    use_cache: bool = True

    def __post_init__(self) -> None:
        if self.sample_count < 1:
            raise ConfigError(f"sample_count must be >= 1, got {self.sample_count}")
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"top_k must be >= 0 (0 = off), got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if not self.clip > 0:
            raise ConfigError(f"clip must be > 0, got {self.clip}")
        if self.max_context < 1:
            raise ConfigError(f"max_context must be >= 1, got {self.max_context}")


def draw(logits: torch.Tensor, settings: SamplingSettings, generator: torch.Generator) -> torch.Tensor:
    """One sampled id per row, ``[B, 1]``."""
    return sample_next(logits, generator, settings.temperature, settings.top_k, settings.top_p)


def calendar_stamps(timestamps: np.ndarray) -> np.ndarray:
    """``[L, 5]`` float32 minute, hour, weekday, day, month of each timestamp (as given, no tz shift)."""
    import pandas as pd

    idx = pd.DatetimeIndex(timestamps)
    return np.stack([idx.minute, idx.hour, idx.day_of_week, idx.day, idx.month], axis=-1).astype(np.float32)


def candles(ohlcv: np.ndarray) -> np.ndarray:
    """``[..., 5]`` OHLCV -> ``[..., 6]`` float32 with upstream's amount = volume * mean(OHLC)."""
    x = np.asarray(ohlcv, dtype=np.float32)
    amount = x[..., 4:5] * x[..., :4].mean(axis=-1, keepdims=True)
    return np.concatenate([x[..., :5], amount], axis=-1)


def normalize(x: np.ndarray, clip: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-window z-score over time: ``x [B, L, 6]`` -> (clipped x, mean [B, 1, 6], std + 1e-5)."""
    mean, scale = fit_scale(x, axis=1)
    return standardize(x, mean, scale, clip), mean, scale


@torch.no_grad()
def generate(
    model: Kronos,
    tokenizer: KronosTokenizer,
    x: torch.Tensor,
    x_stamp: torch.Tensor,
    y_stamp: torch.Tensor,
    settings: SamplingSettings,
    generator: torch.Generator,
) -> torch.Tensor:
    """Sample normalised paths.

    Args:
        x: ``[B, L, 6]`` normalised, clipped context candles.
        x_stamp: ``[B, L, 5]`` calendar stamps of the context; ``y_stamp`` ``[B, H, 5]`` of the future.
        settings: sampling settings; ``generator`` drives every draw.

    Returns:
        ``[B, S, H, 6]`` normalised sample paths.
    """
    x = torch.clip(x, -settings.clip, settings.clip)
    n_win, ctx_len = x.shape[:2]
    horizon, s = y_stamp.shape[1], settings.sample_count
    rows, total, window = n_win * s, ctx_len + y_stamp.shape[1], settings.max_context
    s1_ctx, s2_ctx = tokenizer.encode(x)
    s1 = s1_ctx.new_zeros(rows, total)
    s2 = s2_ctx.new_zeros(rows, total)
    s1[:, :ctx_len] = s1_ctx.repeat_interleave(s, 0)
    s2[:, :ctx_len] = s2_ctx.repeat_interleave(s, 0)
    stamp_win = torch.cat([x_stamp, y_stamp], dim=1)
    stamp = stamp_win.repeat_interleave(s, 0)
    cache: KronosCache | None = None
    cache_start = -1
    for i in range(horizon):
        cur = ctx_len + i
        start = max(0, cur - window)
        if not settings.use_cache:
            logits1, last, k, v = model.window(s1[:, start:cur], s2[:, start:cur], stamp[:, start:cur])
            kv: LayerCache | tuple[torch.Tensor, torch.Tensor] = (k, v)
        else:
            if cache is None or start != cache_start:
                cap = min(window, total)
                if i == 0:
                    # one prefill per window; its keys are shared by the window's paths, not copied
                    src = slice(0, n_win * s, s)
                    cache = model.new_cache(n_win, ctx_len - start, x.device, x.dtype)
                    logits1 = model.extend(s1[src, start:cur], s2[src, start:cur], stamp_win[:, start:cur], cache)
                    logits1 = logits1.repeat_interleave(s, 0)
                    cache = cache.share(s, cap - (ctx_len - start))
                else:
                    cache = model.new_cache(rows, cap, x.device, x.dtype)
                    logits1 = model.extend(s1[:, start:cur], s2[:, start:cur], stamp[:, start:cur], cache)
                cache_start = start
            else:
                logits1 = model.extend(s1[:, cur - 1 : cur], s2[:, cur - 1 : cur], stamp[:, cur - 1 : cur], cache)
            last, kv = cache.last_hidden, cache.dep
        pre = draw(logits1, settings, generator)
        post = draw(model.s2_logits(pre, last, kv), settings, generator)
        s1[:, cur] = pre[:, 0]
        s2[:, cur] = post[:, 0]
    start = max(0, total - window)
    # the paths of a window share its context tokens: decode them once per window, not per path
    z = tokenizer.decode_last(s1[:, start:], s2[:, start:], min(horizon, total - start), s)
    return z.reshape(n_win, s, horizon, z.shape[-1])


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded generator on ``device`` (same stream as ``torch.manual_seed(seed)`` on CPU)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def sample_paths(
    model: Kronos,
    tokenizer: KronosTokenizer,
    ohlcv: np.ndarray,
    x_stamp: np.ndarray,
    y_stamp: np.ndarray,
    settings: SamplingSettings,
    generator: torch.Generator,
) -> np.ndarray:
    """Sample candle paths in price space for a batch of equally long windows.

    Args:
        ohlcv: ``[B, L, 5]`` (open, high, low, close, volume) or ``[B, L, 6]`` with amount.
        x_stamp: ``[B, L, 5]`` calendar stamps (:func:`calendar_stamps`); ``y_stamp`` ``[B, H, 5]``.
        settings: sampling settings.
        generator: from :func:`make_generator`.

    Returns:
        ``[B, S, H, 6]`` float32 paths of open, high, low, close, volume, amount.
    """
    x = np.asarray(ohlcv, dtype=np.float32)
    if x.shape[-1] == 5:
        x = candles(x)
    xn, mean, scale = normalize(x, settings.clip)
    device = next(model.parameters()).device
    z = generate(
        model,
        tokenizer,
        torch.from_numpy(np.ascontiguousarray(xn)).to(device),
        torch.from_numpy(np.array(x_stamp, dtype=np.float32)).to(device),
        torch.from_numpy(np.array(y_stamp, dtype=np.float32)).to(device),
        settings,
        generator,
    )
    return z.float().cpu().numpy() * scale[:, None] + mean[:, None]
