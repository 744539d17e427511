"""The Kronos tokenizer (BSQ candle codes) and the decoder-only predictor, inference side.

Constructor arguments are the keys of the published ``config.json`` files (dropout rates are
accepted and ignored: we only run inference), and module names match the published state dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from mqc.core.forecast.kronos.layers import (
    BSQuantizer,
    DependencyAwareLayer,
    DualHead,
    HierarchicalEmbedding,
    LayerCache,
    RMSNorm,
    TemporalEmbedding,
    TransformerBlock,
)

TOKENIZER_KEYS = (
    "d_in", "d_model", "n_heads", "ff_dim", "n_enc_layers", "n_dec_layers", "ffn_dropout_p",
    "attn_dropout_p", "resid_dropout_p", "s1_bits", "s2_bits", "beta", "gamma0", "gamma", "zeta",
    "group_size",
)  # fmt: skip
MODEL_KEYS = (
    "s1_bits", "s2_bits", "n_layers", "d_model", "n_heads", "ff_dim", "ffn_dropout_p",
    "attn_dropout_p", "resid_dropout_p", "token_dropout_p", "learn_te",
)  # fmt: skip


class KronosTokenizer(nn.Module):
    """Encodes normalised 6-field candles to (s1, s2) token ids and decodes them back."""

    def __init__(
        self,
        d_in: int = 6,
        d_model: int = 256,
        n_heads: int = 4,
        ff_dim: int = 512,
        n_enc_layers: int = 4,
        n_dec_layers: int = 4,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
        s1_bits: int = 10,
        s2_bits: int = 10,
        beta: float = 0.05,
        gamma0: float = 1.0,
        gamma: float = 1.1,
        zeta: float = 0.05,
        group_size: int = 4,
    ) -> None:
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k in TOKENIZER_KEYS}
        self.d_in = d_in
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        codebook_dim = s1_bits + s2_bits
        self.embed = nn.Linear(d_in, d_model)
        self.head = nn.Linear(d_model, d_in)
        # the published layout has n-1 blocks on each side (the embed/head count as the n-th)
        self.encoder = nn.ModuleList(TransformerBlock(d_model, n_heads, ff_dim) for _ in range(n_enc_layers - 1))
        self.decoder = nn.ModuleList(TransformerBlock(d_model, n_heads, ff_dim) for _ in range(n_dec_layers - 1))
        self.quant_embed = nn.Linear(d_model, codebook_dim)
        self.post_quant_embed_pre = nn.Linear(s1_bits, d_model)  # training-only path, kept for strict load
        self.post_quant_embed = nn.Linear(codebook_dim, d_model)
        self.tokenizer = BSQuantizer(s1_bits, s2_bits, group_size)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` [B, L, d_in] normalised candles -> (s1, s2) ids, each [B, L]."""
        z = self.embed(x)
        for block in self.encoder:
            z = block(z)
        return self.tokenizer.indices(self.quant_embed(z))

    def decode(self, s1: torch.Tensor, s2: torch.Tensor) -> torch.Tensor:
        """(s1, s2) ids [B, L] -> normalised candles [B, L, d_in] (causal decoder)."""
        z = self.post_quant_embed(self.tokenizer.codes(s1, s2))
        for block in self.decoder:
            z = block(z)
        return self.head(z)

    def decode_last(self, s1: torch.Tensor, s2: torch.Tensor, n_last: int, group: int = 1) -> torch.Tensor:
        """``decode(s1, s2)[:, -n_last:]``, decoding a prefix shared by groups of rows only once.

        Rows come in runs of ``group`` consecutive rows (the sample paths of one window) that hold
        the same ids at every position before the last ``n_last``. The decoder is causal, so that
        prefix is decoded once per run, its keys/values are copied to the run's rows, and only the
        last ``n_last`` positions are decoded per row: ``group`` times less work on the prefix.

        Args:
            s1, s2: ids ``[B, L]``, ``B`` a multiple of ``group``.
            n_last: positions to return (the sampled ones), ``1 <= n_last <= L``.
            group: rows sharing each prefix.

        Returns:
            Normalised candles ``[B, n_last, d_in]``.
        """
        prefix = s1.shape[1] - n_last
        if prefix <= 0 or not self.decoder:
            return self.decode(s1, s2)[:, -n_last:]
        dtype = self.head.weight.dtype
        caches = []
        for block in self.decoder:
            att = block.self_attn
            shape = (s1.shape[0] // group, att.n_heads, prefix, att.head_dim)
            caches.append(LayerCache(s1.new_empty(shape, dtype=dtype), s1.new_empty(shape, dtype=dtype)))
        src = slice(0, s1.shape[0], group)
        z = self.post_quant_embed(self.tokenizer.codes(s1[src, :prefix], s2[src, :prefix]))
        for block, cache in zip(self.decoder, caches, strict=True):
            z = block(z, cache)
        z = self.post_quant_embed(self.tokenizer.codes(s1[:, prefix:], s2[:, prefix:]))
        for block, cache in zip(self.decoder, caches, strict=True):
            z = block(z, cache.share(group, n_last))
        return self.head(z)


@dataclass
class KronosCache:
    """KV cache of one sampling batch: per-layer self-attention plus the dependency layer's keys.

    ``dep`` holds the dependency layer's cross-attention keys/values of every window position
    (unrotated: that layer runs at position 0 at inference), in the same layout as a layer cache.
    """

    layers: list[LayerCache]
    dep: LayerCache
    last_hidden: torch.Tensor = field(default_factory=lambda: torch.empty(0))  # [B, 1, d]

    @property
    def length(self) -> int:
        return self.layers[0].length

    def share(self, n: int, capacity: int) -> KronosCache:
        """Every row's positions so far become the shared prefix of ``n`` rows (one prefill, n paths).

        Args:
            n: rows per prefilled row (row i -> rows ``i*n .. i*n+n-1``).
            capacity: positions each row can still append.
        """
        return KronosCache(
            [c.share(n, capacity) for c in self.layers],
            self.dep.share(n, capacity),
            self.last_hidden.repeat_interleave(n, 0),
        )


class Kronos(nn.Module):
    """Decoder-only transformer over hierarchical tokens with a dependency-aware dual head."""

    def __init__(
        self,
        s1_bits: int = 10,
        s2_bits: int = 10,
        n_layers: int = 8,
        d_model: int = 512,
        n_heads: int = 8,
        ff_dim: int = 1024,
        ffn_dropout_p: float = 0.0,
        attn_dropout_p: float = 0.0,
        resid_dropout_p: float = 0.0,
        token_dropout_p: float = 0.0,
        learn_te: bool = True,
    ) -> None:
        super().__init__()
        self.config = {k: v for k, v in locals().items() if k in MODEL_KEYS}
        self.s1_bits = s1_bits
        self.s2_bits = s2_bits
        self.d_model = d_model
        self.embedding = HierarchicalEmbedding(s1_bits, s2_bits, d_model)
        self.time_emb = TemporalEmbedding(d_model, learn_te)
        self.transformer = nn.ModuleList(TransformerBlock(d_model, n_heads, ff_dim) for _ in range(n_layers))
        self.norm = RMSNorm(d_model)
        self.dep_layer = DependencyAwareLayer(d_model)
        self.head = DualHead(s1_bits, s2_bits, d_model)
        self._init_weights()

    def _init_weights(self) -> None:
        # the upstream initialisation, so randomly initialised models have realistic scales
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding) and m.weight.requires_grad:
                nn.init.normal_(m.weight, mean=0.0, std=self.d_model**-0.5)

    def _hidden(
        self, s1: torch.Tensor, s2: torch.Tensor, stamp: torch.Tensor, caches: list[LayerCache] | None
    ) -> torch.Tensor:
        x = self.embedding(s1, s2) + self.time_emb(stamp)
        for i, block in enumerate(self.transformer):
            x = block(x, None if caches is None else caches[i])
        return self.norm(x)

    def window(
        self, s1: torch.Tensor, s2: torch.Tensor, stamp: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Full forward over a window, no cache.

        Returns:
            s1 logits of the last position [B, V1], its hidden state [B, 1, d] and the dependency
            layer's keys/values over the whole window.
        """
        h = self._hidden(s1, s2, stamp, None)
        k, v = self.dep_layer.cross_attn.keys_values(h)
        last = h[:, -1:]
        return self.head.proj_s1(last[:, 0]), last, k, v

    def new_cache(self, batch: int, capacity: int, device: torch.device, dtype: torch.dtype) -> KronosCache:
        """An empty cache of ``batch`` rows holding up to ``capacity`` positions."""

        def empty(att: nn.Module) -> LayerCache:
            shape = (batch, att.n_heads, capacity, att.head_dim)
            return LayerCache(
                torch.empty(shape, device=device, dtype=dtype), torch.empty(shape, device=device, dtype=dtype)
            )

        return KronosCache([empty(block.self_attn) for block in self.transformer], empty(self.dep_layer.cross_attn))

    def extend(self, s1: torch.Tensor, s2: torch.Tensor, stamp: torch.Tensor, cache: KronosCache) -> torch.Tensor:
        """Append positions (a whole prefill, or one token) to ``cache``; returns last s1 logits [B, V1]."""
        h = self._hidden(s1, s2, stamp, cache.layers)
        cache.dep.append(*self.dep_layer.cross_attn.keys_values(h))
        cache.last_hidden = h[:, -1:]
        return self.head.proj_s1(cache.last_hidden[:, 0])

    def s2_logits(
        self, s1_sample: torch.Tensor, last: torch.Tensor, kv: LayerCache | tuple[torch.Tensor, torch.Tensor]
    ) -> torch.Tensor:
        """Fine-token logits [B, V2] given the sampled coarse ids ``s1_sample`` [B, 1].

        Args:
            last: the window's last hidden state [B, 1, d].
            kv: the dependency layer's keys/values over the window: ``cache.dep`` or a pair from
                :meth:`window`.
        """
        sibling = self.embedding.emb_s1(s1_sample)
        return self.head.proj_s2(self.dep_layer(last, sibling, kv)[:, 0])
