"""Execution rules, written once for numpy (float64 backtests) and torch (differentiable training).

What the market lets a book hold, and how one bar fills:

- **Constraints** (``constrain_weights``): shorts are clipped to 0 unless ``allow_short`` (crypto
  always when ``crypto_long_only``); gross leverage above the cap of the bar (``leverage_cap``:
  intraday, or overnight when the position crosses a UTC day boundary) is scaled down.
- **Holds** (``fill``): an asset marked held (a NaN target, or a forward-filled bar: no real price
  to trade at) keeps its pre-trade (drifted) weight; it is never traded or rescaled, not even when
  drift lifts gross leverage a little over the cap. The assets traded on that bar are constrained
  without the held ones and then scaled into the leverage room the held ones leave
  (``scale_into_room``).
- **One bar** (``step``): the fill above, then the market equations of ``simulate`` for that bar
  (costs on the trade from the pre-trade book, financing, net return) and the book drifted to the
  next bar. A gym env or a paper broker calls it bar by bar; the backtest engine and the training
  rollout run the same rules vectorised over many bars.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import SimResult, _is_torch, drifted_weights, simulate


def leverage_cap(config: MarketConfig, overnight: Any = None) -> np.ndarray:
    """Gross-leverage cap of each bar: ``max_overnight_leverage`` where the position held from the
    bar crosses a day boundary, else ``max_gross_leverage``; without ``overnight``, the overnight
    cap (the stricter one). Returns a numpy array shaped like ``overnight`` (0-d without it)."""
    if overnight is None:
        return np.asarray(config.max_overnight_leverage)
    return np.where(np.asarray(overnight), config.max_overnight_leverage, config.max_gross_leverage)


def constrain_weights(
    weights: Any, asset_classes: tuple[str, ...] | list[str], config: MarketConfig, overnight: Any = None
) -> Any:
    """Apply shorting rules and leverage caps: the weights the market actually lets you hold.

    Args:
        weights: ``[..., A]`` target weights (numpy or torch).
        asset_classes: per-asset class (``crypto`` may be long-only).
        config: shorting rules and caps.
        overnight: bool ``[...]`` per row (see ``leverage_cap``).
    Returns:
        The constrained weights, same backend and shape.
    """
    torch_mode = _is_torch(weights)
    if torch_mode:
        import torch

    w = weights
    crypto = np.array([c == "crypto" for c in asset_classes])
    if not config.allow_short:
        w = w.clamp(min=0.0) if torch_mode else np.maximum(w, 0.0)
    elif config.crypto_long_only and crypto.any():
        mask = torch.as_tensor(crypto, device=w.device) if torch_mode else crypto
        w = torch.where(mask, w.clamp(min=0.0), w) if torch_mode else np.where(mask, np.maximum(w, 0.0), w)
    cap_np = leverage_cap(config, overnight)
    gross = w.abs().sum(-1) if torch_mode else np.abs(w).sum(-1)
    if torch_mode:
        cap = torch.as_tensor(cap_np, dtype=w.dtype, device=w.device)
        scale = torch.clamp(cap / gross.clamp(min=1e-12), max=1.0)
    else:
        scale = np.minimum(cap_np / np.maximum(gross, 1e-12), 1.0)
    return w * scale[..., None]


def scale_into_room(traded: Any, held_gross: Any, cap: Any) -> Any:
    """Scale the traded weights into the gross leverage the held positions leave under ``cap``.

    Args:
        traded: ``[..., A]`` constrained weights of the traded assets (0 at held ones).
        held_gross: ``[...]`` sum of |weight| of the held positions (never scaled).
        cap: ``[...]`` gross-leverage cap (``leverage_cap``).
    Returns:
        ``traded`` scaled down where its gross exceeds the room (never scaled up).
    """
    if _is_torch(traded):
        import torch

        cap_t = torch.as_tensor(cap, dtype=traded.dtype, device=traded.device)
        room = (cap_t - held_gross).clamp(min=0.0)
        gross = traded.abs().sum(-1)
        scale = torch.clamp(room / gross.clamp(min=1e-12), max=1.0)
        return traded * scale[..., None]
    room = np.maximum(cap - held_gross, 0.0)
    gross = np.abs(traded).sum(-1)
    over = gross > room
    scale = np.where(over, room / np.where(over, gross, 1.0), 1.0)
    return traded * scale[..., None]


def fill_traded(traded: Any, hold: Any, book: Any, cap: Any) -> Any:
    """Executed weights of a bar from its already constrained traded weights: held assets keep
    their ``book`` weight, the traded ones are scaled into the room left (``scale_into_room``)."""
    if _is_torch(traded):
        import torch

        held_gross = torch.where(hold, book, torch.zeros_like(book)).abs().sum(-1)
        return torch.where(hold, book, scale_into_room(traded, held_gross, cap))
    # One book (the engine, a broker): sum only the held weights, so the sum's rounding does not
    # depend on how many traded assets sit between them.
    held_gross = np.abs(book[hold]).sum() if np.ndim(book) == 1 else np.abs(np.where(hold, book, 0.0)).sum(-1)
    return np.where(hold, book, scale_into_room(traded, held_gross, cap))


def fill(
    targets: Any,
    hold: Any,
    book: Any,
    asset_classes: tuple[str, ...] | list[str],
    config: MarketConfig,
    overnight: Any,
) -> Any:
    """Executed weights of a bar: held assets keep their pre-trade ``book`` weight; the others are
    constrained (``constrain_weights``, without the held ones' targets) and scaled into the room left.

    Args:
        targets: ``[..., A]`` target weights (values at held assets are ignored; NaN allowed there).
        hold: bool ``[..., A]``: the asset is not traded on this bar.
        book: ``[..., A]`` pre-trade (drifted) weights.
        overnight: bool ``[...]``: the position held from this bar crosses a day boundary.
    """
    if _is_torch(targets):
        import torch

        free = torch.where(hold, torch.zeros_like(targets), targets)
    else:
        free = np.where(hold, 0.0, targets)
    traded = constrain_weights(free, asset_classes, config, overnight)
    return fill_traded(traded, hold, book, leverage_cap(config, overnight))


@dataclass
class Fill:
    """One bar filled: the executed weights, the bar's market series and the next pre-trade book."""

    weights: Any  # [..., A] executed at the close of the bar, held to the next close
    book: Any  # [..., A] pre-trade weights at the next bar (drifted by the bar's returns)
    bar: SimResult  # the bar's series, each [...]

    @property
    def net_return(self) -> Any:
        return self.bar.net_returns

    @property
    def costs(self) -> Any:
        return self.bar.costs


def step(
    book: Any,
    targets: Any,
    hold: Any,
    returns: Any,
    fees: Any,
    dt: Any,
    overnight: Any,
    asset_classes: tuple[str, ...] | list[str],
    config: MarketConfig,
    *,
    exact: bool = True,
) -> Fill:
    """Fill one bar and run the market equations on it (numpy or torch, following ``targets``).

    Args:
        book: ``[..., A]`` pre-trade weights (zeros: all cash).
        targets: ``[..., A]`` target weights decided at this bar's close.
        hold: bool ``[..., A]``: not traded on this bar (NaN target or forward-filled bar).
        returns: ``[..., A]`` simple returns from this close to the next.
        fees: ``[A]`` one-way cost fractions (``fee_rates``).
        dt: bar length in years (scalar or ``[...]``; 0 for the last bar of a backtest).
        overnight: bool (or ``[...]``): the position held from this bar crosses a day boundary.
        asset_classes, config: shorting rules, caps, financing.
        exact: drift the next book with the realised net return (costs and financing leave the
            book, as the backtest engine does); ``False`` drifts with ``w . r`` (the training rollout).
    Returns:
        Fill with the executed weights, the bar's series (``net_returns``, ``costs``, ...) and the
        next pre-trade book.
    """
    w = fill(targets, hold, book, asset_classes, config, overnight)
    if _is_torch(w):
        import torch

        dt_col = torch.as_tensor(dt, dtype=w.dtype, device=w.device)[..., None]
    else:
        dt_col = np.asarray(dt, dtype=np.float64)[..., None]
    # One bar whose pre-trade book is given: nothing to solve, a single pass is exact.
    sim = simulate(w[..., None, :], returns[..., None, :], fees, dt_col, config, prev_weights=book)
    bar = SimResult(**{name: value[..., 0] for name, value in vars(sim).items()})
    growth = bar.net_returns if exact else bar.gross_returns
    return Fill(weights=w, book=drifted_weights(w, returns, growth), bar=bar)
