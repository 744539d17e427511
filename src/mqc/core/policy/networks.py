"""The two policy networks and the map from simplex "legs" to portfolio weights.

Legs (one simplex per decision):

* ``long``        A legs, fully invested: ``w = p * cap``
* ``long_cash``   A + 1 legs, the last a cash reserve: ``w = p[:A] * cap``
* ``long_short``  2A + 1 legs (long, short, reserve): ``w = (p[:A] - p[A:2A]) * cap``, so
  gross leverage ``= cap * (1 - reserve) <= cap`` by construction.

Both networks read a window ``[N, L, A, F]`` of standardised features ending at the decision bar.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
from torch import nn
from torch.nn import functional as F

from mqc.core.policy.gru import FastGRU

LegMode = Literal["long", "long_cash", "long_short"]


def leg_mode(allow_short: bool, include_cash: bool, cap: float) -> LegMode:
    """Pick the leg layout a market allows: a reserve leg whenever cash or leverage < cap is possible."""
    if allow_short:
        return "long_short"
    return "long_cash" if (include_cash or cap > 1.0) else "long"


def n_legs(mode: str, n_assets: int) -> int:
    return {"long": n_assets, "long_cash": n_assets + 1, "long_short": 2 * n_assets + 1}[mode]


def legs_to_weights(p: torch.Tensor, mode: str, n_assets: int, cap: float) -> torch.Tensor:
    """Map leg probabilities ``[..., legs]`` to asset weights ``[..., A]`` (see module docstring)."""
    if mode == "long_short":
        return (p[..., :n_assets] - p[..., n_assets : 2 * n_assets]) * cap
    return p[..., :n_assets] * cap


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network from a checkpoint's ``model_config``."""

    type: Literal["dirichlet_gru", "sharpe_mlp"]
    n_assets: int
    n_features: int
    lookback: int
    hidden_size: int
    layers: int
    mode: str
    cap: float
    alpha_min: float = 0.05

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class DirichletGRUPolicy(nn.Module):
    """GRU over the lookback window of all assets' features -> Dirichlet concentrations over legs.

    ``alpha = softplus(head) + alpha_min`` keeps every concentration strictly positive.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.inp = nn.Linear(cfg.n_assets * cfg.n_features, cfg.hidden_size)
        self.gru = FastGRU(cfg.hidden_size, cfg.hidden_size, num_layers=cfg.layers)
        self.head = nn.Linear(cfg.hidden_size, n_legs(cfg.mode, cfg.n_assets))
        nn.init.zeros_(self.head.bias)
        nn.init.normal_(self.head.weight, std=0.01)
        self.gradient_checkpointing = False

    def _alpha(self, seq_tb: torch.Tensor) -> torch.Tensor:
        """Time-major encoded inputs ``[L, N, hidden]`` -> ``alpha [N, legs]``."""
        if self.gradient_checkpointing and torch.is_grad_enabled():
            from torch.utils.checkpoint import checkpoint

            h = checkpoint(self.gru.last_state, seq_tb, use_reentrant=False)
        else:
            h = self.gru.last_state(seq_tb)
        return F.softplus(self.head(h).float()) + self.cfg.alpha_min

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``window [N, L, A, F]`` -> ``alpha [N, legs]`` (all > 0)."""
        return self._alpha(F.gelu(self.inp(window.flatten(2))).transpose(0, 1))

    def forward_span(self, inputs: torch.Tensor, t0: torch.Tensor, h: int, stride: int = 1) -> torch.Tensor:
        """Concentrations for decisions ``t0 + stride * j`` (j < ceil(h / stride)) -> ``[b, ceil(h/stride), legs]``.

        The input projection runs once per bar of the span (``L + h - 1`` bars) instead of once per
        bar of every window (``L * h``), then the overlapping windows are cut out with ``unfold``.
        """
        lb = self.cfg.lookback
        rows = t0[:, None] - (lb - 1) + torch.arange(lb + h - 1, device=t0.device)
        z = F.gelu(self.inp(inputs[rows].flatten(2)))  # [b, L + h - 1, hidden]
        seq = z.unfold(1, lb, stride)  # [b, n, hidden, L]
        b, n = seq.shape[:2]
        # Time-major [L, b * n, hidden], the layout the recurrence reads step by step.
        return self._alpha(seq.permute(3, 0, 1, 2).reshape(lb, b * n, -1)).view(b, n, -1)

    def hidden_matrices(self) -> list[str]:
        """Names of the hidden 2-D matrices (the recurrent weights) that Muon optimises."""
        return [n for n, p in self.named_parameters() if n.startswith("gru.weight")]

    def mean_legs(self, window: torch.Tensor) -> torch.Tensor:
        """Deterministic decode: the Dirichlet mean ``alpha / sum(alpha)``."""
        alpha = self.forward(window)
        return alpha / alpha.sum(-1, keepdim=True)


class SharpeMLP(nn.Module):
    """Per-asset MLP (weights shared across assets) on the asset's own lookback window -> leg logits.

    A per-asset bias adds a static preference. The reserve leg's logit comes from the asset-averaged hidden state, so
    the network can go to
    cash when every asset looks poor.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.lookback * cfg.n_features
        for _ in range(cfg.layers):
            layers += [nn.Linear(width, cfg.hidden_size), nn.GELU()]
            width = cfg.hidden_size
        self.body = nn.Sequential(*layers)
        self.per_asset = nn.Linear(width, 2 if cfg.mode == "long_short" else 1)
        # A learned per-asset offset: the shared MLP cannot tell assets apart otherwise, so a static
        # preference (one asset simply earns more) would have to be inferred from features alone.
        self.asset_bias = nn.Parameter(torch.zeros(cfg.n_assets, 2 if cfg.mode == "long_short" else 1))
        self.reserve = nn.Linear(width, 1)
        self.gradient_checkpointing = False

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        """``window [N, L, A, F]`` -> leg logits ``[N, legs]``."""
        x = window.permute(0, 2, 1, 3).flatten(2)  # [N, A, L*F]
        h = self.body(x)
        s = self.per_asset(h) + self.asset_bias
        if self.cfg.mode == "long":
            return s[..., 0].float()
        res = self.reserve(h.mean(1)).float()
        if self.cfg.mode == "long_cash":
            return torch.cat([s[..., 0].float(), res], -1)
        return torch.cat([s[..., 0].float(), s[..., 1].float(), res], -1)

    def hidden_matrices(self) -> list[str]:
        """Hidden-to-hidden Linear weights (not the input layer or the heads), for Muon."""
        names = [n for n, p in self.body.named_parameters() if p.ndim == 2]
        return [f"body.{n}" for n in names[1:]]

    def forward_span(self, inputs: torch.Tensor, t0: torch.Tensor, h: int) -> torch.Tensor:
        """Leg logits for decisions ``t0 .. t0 + h - 1`` -> ``[b, h, legs]``."""
        idx = t0[:, None] + torch.arange(h, device=t0.device)
        return self.forward(gather_windows(inputs, idx.reshape(-1), self.cfg.lookback)).view(*idx.shape, -1)

    def mean_legs(self, window: torch.Tensor) -> torch.Tensor:
        """Deterministic decode: softmax over the leg logits."""
        return torch.softmax(self.forward(window), -1)


def build_model(cfg: ModelConfig) -> nn.Module:
    return DirichletGRUPolicy(cfg) if cfg.type == "dirichlet_gru" else SharpeMLP(cfg)


def gather_windows(inputs: torch.Tensor, idx: torch.Tensor, lookback: int) -> torch.Tensor:
    """Windows ``inputs[t - L + 1 .. t]`` for each decision bar ``t`` in ``idx`` -> ``[*idx.shape, L, A, F]``."""
    offs = torch.arange(lookback - 1, -1, -1, device=inputs.device)
    rows = idx[..., None] - offs
    return inputs[rows]


def mean_legs_span(model: nn.Module, inputs: torch.Tensor, t0: torch.Tensor, h: int) -> torch.Tensor:
    """Deterministic leg probabilities for decisions ``t0 .. t0 + h - 1`` -> ``[b, h, legs]``."""
    out = model.forward_span(inputs, t0, h)
    if isinstance(model, DirichletGRUPolicy):
        return out / out.sum(-1, keepdim=True)
    return torch.softmax(out, -1)


@torch.no_grad()
def decide(
    model: nn.Module, inputs: torch.Tensor, start: int, stop: int, chunk: int = 256, origin: int | None = None
) -> torch.Tensor:
    """Deterministic target weights ``[stop - start, A]`` (unconstrained) for decision bars ``start .. stop - 1``.

    Decisions run in chunks ``[origin + k * chunk, origin + (k + 1) * chunk)`` clipped to ``stop``
    (``origin`` defaults to ``start``): fp32 kernels round differently for different batch sizes, so
    two callers that share ``origin`` and ``stop`` get bit-identical rows whatever their ``start``.
    """
    cfg: ModelConfig = model.cfg  # type: ignore[assignment]
    origin = start if origin is None else min(origin, start)
    first = origin + (start - origin) // chunk * chunk
    out = []
    for s in range(first, stop, chunk):
        h = min(chunk, stop - s)
        p = mean_legs_span(model, inputs, torch.tensor([s], device=inputs.device), h)[0]
        out.append(legs_to_weights(p.float(), cfg.mode, cfg.n_assets, cfg.cap))
    if not out:
        return torch.zeros(0, cfg.n_assets, device=inputs.device)
    return torch.cat(out)[start - first :]
