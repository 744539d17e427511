"""A small GPT in the nanochat style: rotary embeddings, QK norm, parameter-free RMSNorm, ReLU^2 MLP,
causal SDPA attention with grouped KV heads, untied embeddings, a logit soft-cap, and a KV cache.

``GPTConfig.from_depth(d)`` is the size dial: width ``64 d``, one head per 64 dims (nanochat's rule).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mqc.core.errors import ConfigError

SOFTCAP = 15.0


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model; the default is the CPU default (4 layers, 4 heads, 256 dims, seq 256)."""

    sequence_len: int = 256
    vocab_size: int = 513  # candle codes + the BOS/asset-separator token
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4
    n_embd: int = 256

    def __post_init__(self) -> None:
        for name in ("sequence_len", "vocab_size", "n_layer", "n_head", "n_kv_head", "n_embd"):
            if getattr(self, name) < 1:
                raise ConfigError(f"gpt.{name} must be >= 1, got {getattr(self, name)}")
        if self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2:
            raise ConfigError(
                f"embd {self.n_embd} must split into {self.n_head} heads of an even size",
                hint="pick --embd a multiple of 2 x --heads",
            )
        if self.n_head % self.n_kv_head:
            raise ConfigError(
                f"heads {self.n_head} must be a multiple of kv-heads {self.n_kv_head}",
                hint="pass --kv-heads 1 or --heads",
            )

    @classmethod
    def from_depth(cls, depth: int, sequence_len: int, vocab_size: int) -> GPTConfig:
        """nanochat's rule: ``n_embd = 64 * depth``, 64-dim heads, as many KV heads as heads."""
        heads = max(1, depth)
        return cls(sequence_len, vocab_size, depth, heads, heads, 64 * depth)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head


def norm(x: torch.Tensor) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],))


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary embedding of ``x [B, H, T, D]`` with tables ``[T, D/2]``."""
    d = x.shape[-1] // 2
    x1, x2 = x[..., :d], x[..., d:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class KVCache:
    """Per-layer keys and values ``[B, Hkv, capacity, D]`` for incremental decoding.

    A cache made by ``expand`` continues a prefix shared by groups of rows: the prefix's keys and
    values stay once per group (``shared``, ``[B / group, Hkv, offset, D]``) and the buffers hold the
    positions after it.
    """

    def __init__(self, n_layer: int, batch: int, n_kv: int, capacity: int, head_dim: int, like: torch.Tensor) -> None:
        shape = (batch, n_kv, capacity, head_dim)
        self.k = [like.new_zeros(shape) for _ in range(n_layer)]
        self.v = [like.new_zeros(shape) for _ in range(n_layer)]
        self.pos = 0  # positions filled (advanced after the last layer), the shared prefix included
        self.capacity = capacity
        self.offset = 0  # positions held by the shared prefix
        self.shared: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store ``k, v`` at the next positions; the keys and values of this cache's own positions so far."""
        end = self.pos + k.shape[2]
        if end > self.capacity:
            raise ConfigError(f"KV cache holds {self.capacity} positions, {end} asked for")
        lo, hi = self.pos - self.offset, end - self.offset
        self.k[layer][:, :, lo:hi] = k
        self.v[layer][:, :, lo:hi] = v
        return self.k[layer][:, :, :hi], self.v[layer][:, :, :hi]

    def expand(self, repeats: int, capacity: int | None = None) -> KVCache:
        """A cache for ``repeats`` continuations of each row, row ``i * repeats + j`` continuing row
        ``i`` (``repeat_interleave`` order), with room for ``capacity`` positions in all (default:
        this cache's). The filled positions are shared, not copied; attention over them is computed
        per group (``shared_attention``), and gradients reach them from every continuation."""
        cap = self.capacity if capacity is None else capacity
        if self.shared is not None:
            raise ConfigError("a KV cache is expanded once")
        if cap < self.pos:
            raise ConfigError(f"KV cache of {cap} positions cannot hold the {self.pos} filled")
        b, n_kv, _, d = self.k[0].shape
        out = KVCache(len(self.k), b * repeats, n_kv, cap - self.pos, d, self.k[0])
        out.shared = ([k[:, :, : self.pos] for k in self.k], [v[:, :, : self.pos] for v in self.v])
        out.pos = out.offset = self.pos
        out.capacity = cap
        return out


def shared_attention(
    q: torch.Tensor, kp: torch.Tensor, vp: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: int
) -> torch.Tensor:
    """Attention of ``q [B * g, H, t, D]`` over a prefix ``kp, vp [B, H, P, D]`` shared by each group
    of ``g`` consecutive rows, then the rows' own keys ``k, v [B * g, H, start + t, D]`` (causal): the
    same as SDPA over the prefix repeated per row, reading each prefix once per group."""
    n, h, t, d = q.shape
    b, p = kp.shape[0], kp.shape[2]
    g = n // b
    qg = q.reshape(b, g, h, t, d).transpose(1, 2).reshape(b, h, g * t, d)
    sp = (qg @ kp.transpose(-1, -2)).reshape(b, h, g, t, p).transpose(1, 2).reshape(n, h, t, p)
    so = q @ k.transpose(-1, -2)
    if t > 1:  # own query i sees own keys up to start + i
        mask = torch.ones(t, start + t, dtype=torch.bool, device=q.device).tril(start)
        so = so.masked_fill(~mask, float("-inf"))
    w = torch.softmax(torch.cat([sp, so], dim=-1) * d**-0.5, dim=-1)
    wp = w[..., :p].reshape(b, g, h, t, p).transpose(1, 2).reshape(b, h, g * t, p)
    yp = (wp @ vp).reshape(b, h, g, t, d).transpose(1, 2).reshape(n, h, t, d)
    return yp + w[..., p:] @ v


class Attention(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.layer, self.n_head, self.n_kv, self.hd = layer, cfg.n_head, cfg.n_kv_head, cfg.head_dim
        self.c_q = nn.Linear(cfg.n_embd, cfg.n_head * self.hd, bias=False)
        self.c_k = nn.Linear(cfg.n_embd, cfg.n_kv_head * self.hd, bias=False)
        self.c_v = nn.Linear(cfg.n_embd, cfg.n_kv_head * self.hd, bias=False)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.c_q(x).view(b, t, self.n_head, self.hd).transpose(1, 2)
        k = self.c_k(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        v = self.c_v(x).view(b, t, self.n_kv, self.hd).transpose(1, 2)
        q, k = norm(rotate(q, cos, sin)), norm(rotate(k, cos, sin))  # QK norm
        start = 0
        if cache is not None:
            start = cache.pos
            k, v = cache.update(self.layer, k, v)
        rep = self.n_head // self.n_kv
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        if cache is not None and cache.shared is not None:
            kp, vp = cache.shared[0][self.layer], cache.shared[1][self.layer]
            if rep > 1:
                kp, vp = kp.repeat_interleave(rep, dim=1), vp.repeat_interleave(rep, dim=1)
            y = shared_attention(q, kp, vp, k, v, start - cache.offset)
        elif start == 0:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif t == 1:
            y = F.scaled_dot_product_attention(q, k, v)
        else:  # a chunk after a prefix: query i sees the prefix and its own first i+1 positions
            mask = torch.ones(t, start + t, dtype=torch.bool, device=x.device).tril(start)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.relu(self.c_fc(x)).square())


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig, layer: int) -> None:
        super().__init__()
        self.attn = Attention(cfg, layer)
        self.mlp = MLP(cfg.n_embd)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        x = x + self.attn(norm(x), cos, sin, cache)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    """Decoder-only transformer over token ids; ``forward`` returns logits ``[B, T, V]``."""

    def __init__(self, cfg: GPTConfig) -> None:
        super().__init__()
        self.config = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.blocks = nn.ModuleList(Block(cfg, i) for i in range(cfg.n_layer))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        # rotary tables for 4x the training length (generation may run past it); not in checkpoints
        inv = 1.0 / (10000 ** (torch.arange(0, cfg.head_dim, 2, dtype=torch.float32) / cfg.head_dim))
        freqs = torch.outer(torch.arange(4 * cfg.sequence_len, dtype=torch.float32), inv)
        self.register_buffer("cos", freqs.cos(), persistent=False)
        self.register_buffer("sin", freqs.sin(), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nanochat-style init: output projections and the head start at zero."""
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight") or name == "lm_head.weight":
                nn.init.zeros_(p)
            elif name == "wte.weight":
                nn.init.normal_(p, std=1.0)
            else:
                nn.init.uniform_(p, -(3**0.5) / p.shape[1] ** 0.5, 3**0.5 / p.shape[1] ** 0.5)

    def hidden_matrices(self) -> list[str]:
        """Names of the matrices Muon updates (the blocks'); embeddings and the head go to AdamW."""
        return [n for n, p in self.named_parameters() if n.startswith("blocks.") and p.ndim == 2]

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        c = self.config
        return KVCache(c.n_layer, batch, c.n_kv_head, capacity, c.head_dim, self.lm_head.weight)

    def forward(
        self, idx: torch.Tensor, cache: KVCache | None = None, *, suffix: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Logits ``[B, T, V]`` of ``idx [B, T]`` (continuing ``cache`` when given).

        With ``suffix [B * g, S]``: ``idx`` is a prefix shared by ``g`` consecutive suffix rows, and the
        result ``[B * g, 1 + S, V]`` is the logits of the prefix's last position and of every suffix
        position, i.e. ``forward(cat(idx.repeat_interleave(g), suffix))[:, T - 1 :]``, with the prefix
        run once per row of ``idx`` instead of ``g`` times (gradients reach it from every suffix).
        """
        if suffix is not None:
            return self._grouped(idx, suffix)
        return self._head(self._hidden(idx, cache))

    def _hidden(self, idx: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        t = idx.shape[1]
        start = cache.pos if cache is not None else 0
        if start + t > self.cos.shape[0]:
            raise ConfigError(f"sequence of {start + t} tokens exceeds the rotary table ({self.cos.shape[0]})")
        cos, sin = self.cos[start : start + t], self.sin[start : start + t]
        x = norm(self.wte(idx))
        for block in self.blocks:
            x = block(x, cos, sin, cache)
        if cache is not None:
            cache.pos += t
        return x

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(norm(x)).float()
        return SOFTCAP * torch.tanh(logits / SOFTCAP)

    def _grouped(self, idx: torch.Tensor, suffix: torch.Tensor) -> torch.Tensor:
        (b, t), (n, s) = idx.shape, suffix.shape
        if n % b:
            raise ConfigError(f"{n} suffix rows do not split into groups over {b} prefix rows")
        g = n // b
        cache = self.new_cache(b, t)
        x = self._hidden(idx, cache)[:, -1:].repeat_interleave(g, dim=0)
        if s:
            x = torch.cat([x, self._hidden(suffix, cache.expand(g, t + s))], dim=1)
        return self._head(x)

    def flops_per_token(self) -> float:
        """Training FLOPs per token: 6 x matmul parameters + attention (nanochat's estimate)."""
        c = self.config
        n = sum(p.numel() for n_, p in self.named_parameters() if n_ != "wte.weight")
        return 6.0 * n + 12.0 * c.n_layer * c.n_head * c.head_dim * c.sequence_len
