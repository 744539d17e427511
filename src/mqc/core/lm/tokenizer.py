"""The causal candle tokenizer: one token per candle.

Five features of candle t use candles t and t-1 only (log return vs the previous close, body, upper
wick, lower wick, range); they are standardised with statistics fitted on the train split only
(``core/nn/candles.py``); a per-candle encoder maps them to a latent that is quantised either by a
VQ-VAE codebook updated by EMA (dead codes re-seeded from the batch), by binary spherical
quantisation (``core/nn/bsq.py``) or by finite scalar quantisation (``core/nn/fsq.py``); the last
two have no codebook to collapse. A per-candle decoder maps a code back
to the five features, so a sampled token path decodes to a candle path.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mqc.core.errors import CheckpointError, DataError
from mqc.core.nn import bsq, fsq
from mqc.core.nn.candles import fit_scale, standardize

FEATURES = ("log_return", "body", "upper_wick", "lower_wick", "range")
CLIP = 8.0
DEAD = 0.05  # EMA usage per batch below which a code is re-seeded from the batch


def candle_features(ohlc: np.ndarray) -> np.ndarray:
    """``[T, 4]`` open, high, low, close -> ``[T, 5]`` float64 features; row t reads rows t-1 and t.

    The first row has no previous close: its return is taken from its own open.
    """
    x = np.asarray(ohlc, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 4:
        raise DataError(f"candle_features takes [T, 4] OHLC, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise DataError("candle prices must be finite and > 0", hint="check the bars: mqc data verify")
    o, h, lo, c = x.T
    prev = np.concatenate([o[:1], c[:-1]])
    top, bottom = np.maximum(o, c), np.minimum(o, c)
    return np.stack(
        [
            np.log(c / prev),
            np.log(c / o),
            np.log(np.maximum(h, top) / top),
            np.log(bottom / np.minimum(lo, bottom)),
            np.log(np.maximum(h, top) / np.minimum(lo, bottom)),
        ],
        axis=-1,
    )


def candles_from_features(feats: np.ndarray, prev_close: np.ndarray) -> np.ndarray:
    """Inverse of :func:`candle_features` along a path: ``[..., H, 5]`` and ``[...]`` -> ``[..., H, 4]`` OHLC."""
    close = prev_close[..., None] * np.exp(np.cumsum(feats[..., 0], axis=-1))
    open_ = close * np.exp(-feats[..., 1])
    top, bottom = np.maximum(open_, close), np.minimum(open_, close)
    high = top * np.exp(np.maximum(feats[..., 2], 0.0))
    low = bottom * np.exp(-np.maximum(feats[..., 3], 0.0))
    return np.stack([open_, high, low, close], axis=-1)


@dataclass(frozen=True)
class TokenizerSpec:
    """Shape of the tokenizer (stored in every stage checkpoint)."""

    quantizer: str = "vq"  # vq | bsq | fsq
    codes: int = 512
    code_dim: int = 32
    hidden: int = 64
    commitment: float = 0.25
    decay: float = 0.99

    @property
    def latent_dim(self) -> int:
        if self.quantizer == "fsq":
            return len(fsq.levels_for(self.codes))
        return int(math.log2(self.codes)) if self.quantizer == "bsq" else self.code_dim


class CandleTokenizer(nn.Module):
    """Per-candle encoder / quantiser / decoder with the train-split normalisation as buffers."""

    def __init__(self, spec: TokenizerSpec, mean: np.ndarray | None = None, scale: np.ndarray | None = None) -> None:
        super().__init__()
        self.spec = spec
        d, h = spec.latent_dim, spec.hidden
        self.encoder = nn.Sequential(nn.Linear(5, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, d))
        self.decoder = nn.Sequential(nn.Linear(d, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, 5))
        self.register_buffer("mean", torch.as_tensor(np.zeros(5) if mean is None else mean, dtype=torch.float64))
        self.register_buffer("scale", torch.as_tensor(np.ones(5) if scale is None else scale, dtype=torch.float64))
        if spec.quantizer == "vq":
            self.register_buffer("codebook", torch.randn(spec.codes, d))
            self.register_buffer("ema_count", torch.ones(spec.codes))
            self.register_buffer("ema_sum", self.codebook.clone())
            self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))

    # ----- features <-> normalised tensors --------------------------------------------------------
    def normalise(self, feats: np.ndarray) -> torch.Tensor:
        m, s = self.mean.numpy(), self.scale.numpy()
        return torch.as_tensor(standardize(feats, m, s, CLIP), dtype=torch.float32)

    def denormalise(self, xn: torch.Tensor) -> np.ndarray:
        return xn.double().numpy() * self.scale.numpy() + self.mean.numpy()

    # ----- quantisation ----------------------------------------------------------------------------
    def quantise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(code vectors with a straight-through gradient, ids, commitment loss) of latents ``z [N, d]``."""
        if self.spec.quantizer == "bsq":
            zq, ids = bsq.quantize(z)
            u = F.normalize(z, dim=-1)
            return zq, ids, F.mse_loss(u, zq.detach())
        if self.spec.quantizer == "fsq":  # a fixed grid: nothing to commit to
            zq, ids = fsq.quantize(z, fsq.levels_for(self.spec.codes))
            return zq, ids, z.new_zeros(())
        if self.training and not bool(self.initialised):
            self._seed_codes(z.detach(), torch.arange(self.spec.codes))
            self.initialised.fill_(True)
        ids = torch.cdist(z.detach(), self.codebook).argmin(dim=-1)
        q = self.codebook[ids]
        if self.training:
            self._ema_update(z.detach(), ids)
        return z + (q - z).detach(), ids, F.mse_loss(z, q)

    def _seed_codes(self, z: torch.Tensor, which: torch.Tensor) -> None:
        pick = torch.randint(0, z.shape[0], (which.numel(),))
        self.codebook[which] = z[pick]
        self.ema_sum[which] = z[pick]
        self.ema_count[which] = 1.0

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, ids: torch.Tensor) -> None:
        d = self.spec.decay
        counts = torch.bincount(ids, minlength=self.spec.codes).to(z.dtype)
        sums = torch.zeros_like(self.ema_sum).index_add_(0, ids, z)
        self.ema_count.mul_(d).add_(counts, alpha=1 - d)
        self.ema_sum.mul_(d).add_(sums, alpha=1 - d)
        n = self.ema_count.sum()
        count = (self.ema_count + 1e-5) / (n + self.spec.codes * 1e-5) * n  # Laplace smoothing
        self.codebook.copy_(self.ema_sum / count[:, None])
        dead = torch.nonzero(self.ema_count < DEAD).flatten()
        if dead.numel():
            self._seed_codes(z, dead)

    def code_vectors(self, ids: torch.Tensor) -> torch.Tensor:
        if self.spec.quantizer == "bsq":
            return bsq.codes_of(bsq.unpack_bits(ids, self.spec.latent_dim))
        if self.spec.quantizer == "fsq":
            return fsq.codes_of(ids, fsq.levels_for(self.spec.codes))
        return self.codebook[ids]

    # ----- public --------------------------------------------------------------------------------
    def forward(self, xn: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(reconstruction, ids, commitment loss) of normalised features ``[N, 5]``."""
        zq, ids, commit = self.quantise(self.encoder(xn))
        return self.decoder(zq), ids, commit

    @torch.no_grad()
    def encode(self, feats: np.ndarray) -> np.ndarray:
        """Token ids ``[T]`` of features ``[T, 5]`` (each id from its own candle only)."""
        was = self.training
        self.eval()
        ids = self.quantise(self.encoder(self.normalise(feats)))[1]
        self.train(was)
        return ids.numpy().astype(np.int64)

    @torch.no_grad()
    def decode(self, ids: torch.Tensor | np.ndarray) -> np.ndarray:
        """Features ``[..., 5]`` (float64, de-normalised) of ids ``[...]``."""
        return self.denormalise(self.decoder(self.code_vectors(torch.as_tensor(ids, dtype=torch.long))))

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint stores: spec, weights and normalisation (plain tensors and numbers)."""
        return {"spec": asdict(self.spec), "state_dict": {k: v.clone() for k, v in self.state_dict().items()}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CandleTokenizer:
        try:
            tok = cls(TokenizerSpec(**state["spec"]))
            tok.load_state_dict(state["state_dict"])
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"unreadable tokenizer in the checkpoint ({exc})", hint="rerun mqc stage1") from exc
        return tok.eval()


def fit_stats(train_feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale of the five features over train rows only."""
    mean, scale = fit_scale(train_feats, axis=0)
    return mean[0], scale[0]


def fit_tokenizer(
    train_feats: np.ndarray, spec: TokenizerSpec, *, steps: int, seed: int, batch: int = 1024, lr: float = 2e-3
) -> CandleTokenizer:
    """Fit a tokenizer on train-split features ``[N, 5]`` (the statistics too)."""
    if len(train_feats) < 2:
        raise DataError(f"{len(train_feats)} train candles: too few to fit a tokenizer", hint="load more bars")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    tok = CandleTokenizer(spec, *fit_stats(train_feats))
    x = tok.normalise(train_feats)
    opt = torch.optim.Adam([p for p in tok.parameters() if p.requires_grad], lr=lr)
    tok.train()
    for _ in range(steps):
        xb = x[torch.randint(0, len(x), (min(batch, len(x)),), generator=g)]
        recon, _, commit = tok(xb)
        loss = F.mse_loss(recon, xb) + spec.commitment * commit
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return tok.eval()


def tokenizer_report(tok: CandleTokenizer, feats: np.ndarray) -> dict[str, float]:
    """Reconstruction error in return space, code usage and perplexity on ``feats`` (val)."""
    ids = tok.encode(feats)
    rec = tok.decode(ids)
    counts = np.bincount(ids, minlength=tok.spec.codes).astype(float)
    p = counts[counts > 0] / counts.sum()
    return {
        "return_rmse": float(np.sqrt(np.mean((rec[:, 0] - feats[:, 0]) ** 2))),
        "return_std": float(feats[:, 0].std()),
        "code_usage": float((counts > 0).mean()),
        "perplexity": float(np.exp(-(p * np.log(p)).sum())),
    }
