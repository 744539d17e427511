"""Building blocks of the Kronos tokenizer and predictor (inference only).

Attribute names (``q_proj``, ``rotary.inv_freq``, ``ffn.w1`` ...) are part of the checkpoint format:
they must equal the names in the published ``model.safetensors`` so weights load with
``strict=True``. The self-attention takes an optional :class:`LayerCache` so autoregressive
sampling appends one position at a time instead of re-running the whole window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mqc.core.nn.bsq import codes_of, pack_bits, unpack_bits


class RMSNorm(nn.Module):
    """Root-mean-square norm computed in float32, as in the published model."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class FeedForward(nn.Module):
    """SwiGLU feed-forward: ``w2(silu(w1 x) * w3 x)``."""

    def __init__(self, d_model: int, ff_dim: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(d_model, ff_dim, bias=False)
        self.w3 = nn.Linear(d_model, ff_dim, bias=False)
        self.w2 = nn.Linear(ff_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class RotaryPositionalEmbedding(nn.Module):
    """Rotary position embedding; ``inv_freq`` is a persistent buffer in the checkpoint."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (10000 ** (torch.arange(0, dim, 2).float() / dim)))

    def cos_sin(self, start: int, length: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Cos/sin tables ``[1, 1, length, dim]`` for positions ``start .. start+length-1``."""
        pos = torch.arange(start, start + length, device=device).type_as(self.inv_freq)
        # outer product: one multiply per entry, so any window offset reproduces the same values
        freqs = pos[:, None] * self.inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[None, None], emb.sin()[None, None]

    @staticmethod
    def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin


@dataclass
class LayerCache:
    """Keys and values of one attention layer for incremental decoding.

    Each row's own positions live in ``k``/``v``, preallocated to ``capacity`` positions. After
    :meth:`share`, the first positions are instead held once per run of ``group`` consecutive rows
    (the sample paths of one window, which share its context): ``shared_k``/``shared_v``. Reading
    that prefix once per window instead of once per path is what makes a decoding step cheap: at
    16 paths the per-row copies were 16x the memory traffic of the whole step's attention.
    """

    k: torch.Tensor  # [B, H, capacity, hd]
    v: torch.Tensor
    length: int = 0  # positions so far, the shared prefix included
    shared_k: torch.Tensor | None = None  # [B / group, H, prefix, hd]
    shared_v: torch.Tensor | None = None
    group: int = 1

    @property
    def prefix(self) -> int:
        return 0 if self.shared_k is None else self.shared_k.shape[2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> None:
        """Store the keys/values ``[B, H, n, hd]`` of the next ``n`` positions."""
        a = self.length - self.prefix
        self.k[:, :, a : a + k.shape[2]] = k
        self.v[:, :, a : a + k.shape[2]] = v
        self.length += k.shape[2]

    def own(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The rows' own filled keys and values ``[B, H, length - prefix, hd]``."""
        n = self.length - self.prefix
        return self.k[:, :, :n], self.v[:, :, :n]

    def share(self, n: int, capacity: int) -> LayerCache:
        """Row i's positions so far become the shared prefix of rows ``i*n .. i*n+n-1``.

        Args:
            n: rows per run (sample paths per window).
            capacity: positions each new row can still append.

        Returns:
            A cache of ``B * n`` rows; this one's filled keys are referenced, not copied.
        """
        if self.shared_k is not None:
            raise ValueError("a cache can be shared once")
        b, h, _, hd = self.k.shape
        shape = (b * n, h, capacity, hd)
        fk, fv = self.own()
        return LayerCache(self.k.new_empty(shape), self.v.new_empty(shape), self.length, fk, fv, n)

    def attend(self, q: torch.Tensor) -> torch.Tensor:
        """Attention of the ``n`` newest positions' queries ``q [B, H, n, hd]`` over the cache.

        Query i sees every position up to its own (all cached positions when ``n`` is 1).
        """
        k, v = self.own()
        if self.shared_k is None:
            if q.shape[2] == 1:
                # a single new query attends to every cached position: no mask needed
                return F.scaled_dot_product_attention(q, k, v)
            raise ValueError("an unshared KV cache appends a whole prefill or one position at a time")
        return attend_shared(q, self.shared_k, self.shared_v, k, v, self.group)  # type: ignore[arg-type]


def attend_shared(
    q: torch.Tensor, shared_k: torch.Tensor, shared_v: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: int
) -> torch.Tensor:
    """Softmax attention over a prefix shared by runs of ``group`` rows followed by per-row keys.

    Args:
        q: ``[B, H, n, hd]`` queries of each row's last ``n`` positions.
        shared_k, shared_v: ``[B / group, H, P, hd]`` the prefix, once per run of rows.
        k, v: ``[B, H, m, hd]`` each row's own positions after the prefix (``m >= n``); query i
            sees own positions ``0 .. m - n + i`` (causal), and the whole prefix.

    Returns:
        ``[B, H, n, hd]``, the same quantity as one softmax over the concatenated keys.
    """
    b, h, n, hd = q.shape
    w, p, m = b // group, shared_k.shape[2], k.shape[2]
    q = q * hd**-0.5
    # the runs' queries stacked on one axis: one GEMM per window reads its prefix once
    qg = q.view(w, group, h, n, hd).transpose(1, 2).reshape(w, h, group * n, hd)
    pre = (qg @ shared_k.transpose(-1, -2)).view(w, h, group, n, p).transpose(1, 2).reshape(b, h, n, p)
    own = q @ k.transpose(-1, -2)
    if n > 1:
        hidden = torch.ones(n, m, dtype=torch.bool, device=q.device).triu(m - n + 1)
        own = own.masked_fill(hidden, float("-inf"))
    probs = torch.softmax(torch.cat([pre, own], dim=-1), dim=-1)
    pg = probs[..., :p].reshape(w, group, h, n, p).transpose(1, 2).reshape(w, h, group * n, p)
    out = (pg @ shared_v).view(w, h, group, n, hd).transpose(1, 2).reshape(b, h, n, hd)
    return out + probs[..., p:] @ v


class _Projections(nn.Module):
    """q/k/v/out projections shared by self- and cross-attention."""

    def __init__(self, d_model: int, n_heads: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.q_proj = nn.Linear(d_model, d_model)
        self.k_proj = nn.Linear(d_model, d_model)
        self.v_proj = nn.Linear(d_model, d_model)
        self.out_proj = nn.Linear(d_model, d_model)
        self.rotary = RotaryPositionalEmbedding(self.head_dim)

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.n_heads, self.head_dim).transpose(1, 2)

    def merge(self, x: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = x.shape
        return self.out_proj(x.transpose(1, 2).contiguous().view(b, n, self.d_model))


class MultiHeadAttentionWithRoPE(_Projections):
    """Causal self-attention with RoPE; positions count from the start of the window."""

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        q, k, v = self.heads(self.q_proj(x)), self.heads(self.k_proj(x)), self.heads(self.v_proj(x))
        start = cache.length if cache is not None else 0
        cos, sin = self.rotary.cos_sin(start, x.shape[1], x.device)
        q, k = self.rotary.rotate(q, cos, sin), self.rotary.rotate(k, cos, sin)
        if cache is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.merge(out)
        cache.append(k, v)
        if start == 0:
            # a prefill attends to its own fresh keys (the same tensors as the uncached pass)
            return self.merge(F.scaled_dot_product_attention(q, k, v, is_causal=True))
        return self.merge(cache.attend(q))


class MultiHeadCrossAttentionWithRoPE(_Projections):
    """Cross-attention of the dependency layer, in its inference-time form.

    Upstream sizes the rotary table by the query length, which is 1 at inference, so queries and keys
    all get position 0 (no rotation), and the attention is unmasked over the whole window. We keep
    exactly that: keys and values are plain projections of the window's hidden states.
    """

    def keys_values(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.heads(self.k_proj(hidden)), self.heads(self.v_proj(hidden))

    def attend(self, query: torch.Tensor, kv: LayerCache | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Unmasked attention of ``query [B, 1, d]`` over a window's keys/values (a cache or a pair)."""
        q = self.heads(self.q_proj(query))
        if isinstance(kv, LayerCache):
            return self.merge(kv.attend(q))
        return self.merge(F.scaled_dot_product_attention(q, *kv))


class TransformerBlock(nn.Module):
    """Pre-norm block: RMSNorm -> RoPE self-attention -> RMSNorm -> SwiGLU."""

    def __init__(self, d_model: int, n_heads: int, ff_dim: int) -> None:
        super().__init__()
        self.norm1 = RMSNorm(d_model)
        self.self_attn = MultiHeadAttentionWithRoPE(d_model, n_heads)
        self.norm2 = RMSNorm(d_model)
        self.ffn = FeedForward(d_model, ff_dim)

    def forward(self, x: torch.Tensor, cache: LayerCache | None = None) -> torch.Tensor:
        x = x + self.self_attn(self.norm1(x), cache)
        return x + self.ffn(self.norm2(x))


class HierarchicalEmbedding(nn.Module):
    """Embeds the coarse (s1) and fine (s2) sub-tokens and fuses them."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.emb_s1 = nn.Embedding(2**s1_bits, d_model)
        self.emb_s2 = nn.Embedding(2**s2_bits, d_model)
        self.fusion_proj = nn.Linear(2 * d_model, d_model)

    def forward(self, s1_ids: torch.Tensor, s2_ids: torch.Tensor) -> torch.Tensor:
        scale = math.sqrt(self.d_model)
        return self.fusion_proj(torch.cat([self.emb_s1(s1_ids) * scale, self.emb_s2(s2_ids) * scale], dim=-1))


class FixedEmbedding(nn.Module):
    """Sinusoidal, non-trainable table (used when ``learn_te`` is false)."""

    def __init__(self, size: int, d_model: int) -> None:
        super().__init__()
        table = torch.zeros(size, d_model)
        pos = torch.arange(0, size).float()[:, None]
        div = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
        table[:, 0::2] = torch.sin(pos * div)
        table[:, 1::2] = torch.cos(pos * div)
        self.emb = nn.Embedding(size, d_model)
        self.emb.weight = nn.Parameter(table, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.emb(x)


# Calendar fields of a bar, in the column order of the stamp tensor, with their table sizes.
STAMP_FIELDS: tuple[tuple[str, int], ...] = (
    ("minute", 60),
    ("hour", 24),
    ("weekday", 7),
    ("day", 32),
    ("month", 13),
)


class TemporalEmbedding(nn.Module):
    """Sum of minute/hour/weekday/day/month embeddings of each bar's timestamp."""

    def __init__(self, d_model: int, learn_te: bool) -> None:
        super().__init__()
        make = nn.Embedding if learn_te else FixedEmbedding
        for name, size in STAMP_FIELDS:
            setattr(self, f"{name}_embed", make(size, d_model))

    def forward(self, stamp: torch.Tensor) -> torch.Tensor:
        ids = stamp.long()
        # same summation order as upstream (hour, weekday, day, month, minute) for bitwise parity
        parts = [getattr(self, f"{name}_embed")(ids[:, :, i]) for i, (name, _) in enumerate(STAMP_FIELDS)]
        minute, hour, weekday, day, month = parts
        return hour + weekday + day + month + minute


class DependencyAwareLayer(nn.Module):
    """Conditions the fine-token head on the sampled coarse token (4 heads, as published)."""

    def __init__(self, d_model: int, n_heads: int = 4) -> None:
        super().__init__()
        self.cross_attn = MultiHeadCrossAttentionWithRoPE(d_model, n_heads)
        self.norm = RMSNorm(d_model)

    def forward(
        self, last_hidden: torch.Tensor, sibling: torch.Tensor, kv: LayerCache | tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """``last_hidden`` [B, 1, d] is the window's last hidden state; ``kv`` covers the whole window."""
        return self.norm(last_hidden + self.cross_attn.attend(sibling, kv))


class DualHead(nn.Module):
    """Coarse (s1) and conditional fine (s2) output projections."""

    def __init__(self, s1_bits: int, s2_bits: int, d_model: int) -> None:
        super().__init__()
        self.proj_s1 = nn.Linear(d_model, 2**s1_bits)
        self.proj_s2 = nn.Linear(d_model, 2**s2_bits)


class BinarySphericalQuantizer(nn.Module):
    """Holds the BSQ bit-weight buffers; quantisation itself is a sign test (see the tokenizer)."""

    def __init__(self, embed_dim: int, group_size: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.register_buffer("basis", 2 ** torch.arange(embed_dim - 1, -1, -1))
        self.register_buffer("group_basis", 2 ** torch.arange(group_size - 1, -1, -1))


class BSQuantizer(nn.Module):
    """Binary spherical quantiser splitting a code into coarse (s1) and fine (s2) bit groups."""

    def __init__(self, s1_bits: int, s2_bits: int, group_size: int) -> None:
        super().__init__()
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.bsq = BinarySphericalQuantizer(s1_bits + s2_bits, group_size)

    def indices(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Split-code indices of latent ``z``: bit j of a group (LSB first) is ``z_j > 0``."""
        bits = F.normalize(z, dim=-1) > 0
        s1 = pack_bits(bits[..., : self.s1_bits])
        s2 = pack_bits(bits[..., self.s1_bits :])
        return s1, s2

    def codes(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`indices`: the scaled +-1 code vector."""
        return codes_of(torch.cat([unpack_bits(s1, self.s1_bits), unpack_bits(s2, self.s2_bits)], dim=-1))
