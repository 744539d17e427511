"""The differentiable training rollout: target weights -> executed weights -> simulated returns.

The training losses must score only fills the backtest engine would make. Both apply the execution
rules of ``mqc.core.market.fills``: never trade an asset on a forward-filled bar (``panel.filled``),
hold its drifted weight, and scale the traded assets into the leverage room the held ones leave.
``rollout`` applies them inside a training window, in torch and differentiably, so a policy cannot be rewarded for
"trading" an equity at Friday's stale
close after watching weekend crypto moves.

Windows start already holding their first position (entry costs would otherwise dominate short
windows), except that an asset whose first bar is forward-filled starts from 0: its position could
only have been set at its last real bar, which the window does not see, and the policy's choice on
the stale bar must not carry information into the reward.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import constrain_weights, fill_traded, leverage_cap
from mqc.core.market.simulator import SimResult, drifted_weights, simulate


def rollout(
    targets: torch.Tensor,
    returns: torch.Tensor,
    filled: torch.Tensor,
    fees: torch.Tensor,
    dt: torch.Tensor,
    market: MarketConfig,
    asset_classes: tuple[str, ...] | list[str],
    overnight: np.ndarray,
) -> tuple[torch.Tensor, SimResult]:
    """Execute and simulate target weight paths with forward-filled bars held.

    Args:
        targets: ``[..., b, H, A]`` unconstrained target weights (leading dims: rollout samples).
        returns: ``[..., b, H, A]`` (or broadcastable) simple returns close t -> t+1.
        filled: bool ``[b, H, A]``: the asset's bar at that decision is forward-filled.
        fees: ``[A]`` one-way cost fractions.
        dt: ``[b, H]`` bar lengths in years.
        market: shorting rules, leverage caps, financing.
        asset_classes: per-asset class (crypto long-only etc.).
        overnight: bool ``[b, H]``: the position held from t crosses a day boundary.
    Returns:
        (executed weights ``[..., b, H, A]``, SimResult of ``[..., b, H]`` series, one-pass drift).
    """
    if not bool(filled.any()):
        w = constrain_weights(targets, asset_classes, market, overnight)
        return w, simulate(w, returns, fees, dt, market, prev_weights=w[..., 0, :].detach())
    hold = filled.expand(targets.shape)
    # The assets traded on a bar are constrained without the held ones' (ignored) targets.
    traded = constrain_weights(torch.where(hold, torch.zeros_like(targets), targets), asset_classes, market, overnight)
    cap = torch.as_tensor(leverage_cap(market, overnight), dtype=targets.dtype, device=targets.device)
    r = returns.expand(targets.shape)
    start = torch.where(hold[..., 0, :], torch.zeros_like(traded[..., 0, :]), traded[..., 0, :]).detach()
    book = start
    rows = []
    for t in range(targets.shape[-2]):
        w_t = fill_traded(traded[..., t, :], hold[..., t, :], book, cap[..., t])
        rows.append(w_t)
        # One-pass drift, the same as ``simulate(exact=False)`` uses for the next bar's pre-trade book.
        book = drifted_weights(w_t, r[..., t, :], (w_t * r[..., t, :]).sum(-1))
    w = torch.stack(rows, dim=-2)
    return w, simulate(w, r, fees, dt, market, prev_weights=start)


def filled_at(filled: Any, idx: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``panel.filled`` rows of decision indices ``idx`` (``[b, H]``) as a bool tensor ``[b, H, A]``."""
    return torch.as_tensor(np.asarray(filled)[idx.cpu().numpy()], device=device)
