"""Differentiable reward terms over simulated net returns (torch, batched over leading dims).

Every function takes per-bar series of shape ``[..., T]`` (the ``SimResult`` fields of
``mqc.core.market.simulator.simulate`` in torch mode) and returns one value per path ``[...]``.
Each term has a known-answer unit test in ``tests/core/market/test_rewards.py``.
"""

from __future__ import annotations

import torch


def smooth_abs(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """``sqrt(x^2 + eps^2) - eps``: |x| with a finite gradient at 0 (equal to 0 at 0)."""
    return torch.sqrt(x * x + eps * eps) - eps


def log_wealth(net_returns: torch.Tensor) -> torch.Tensor:
    """Terminal log wealth ``sum_t log(1 + net_t)``: the compounding (Kelly) objective.

    Net returns at or below -100% are clamped just above it so the log stays finite.
    """
    return torch.log1p(net_returns.clamp(min=-1.0 + 1e-6)).sum(-1)


def sharpe_ratio(net_returns: torch.Tensor, eps: float = 1e-8, bars_per_year: float | None = None) -> torch.Tensor:
    """Differentiable Sharpe ratio ``mean / std`` (population std, smoothed by ``eps``).

    Annualised by ``sqrt(bars_per_year)`` when given; per-bar otherwise (a better gradient scale).
    """
    mean = net_returns.mean(-1)
    var = ((net_returns - mean[..., None]) ** 2).mean(-1)
    s = mean / torch.sqrt(var + eps)
    return s * bars_per_year**0.5 if bars_per_year else s


def variance_penalty(net_returns: torch.Tensor) -> torch.Tensor:
    """Population variance of per-bar net returns times the number of bars (scales like log wealth)."""
    t = net_returns.shape[-1]
    return net_returns.var(-1, unbiased=False) * t


def max_drawdown(net_returns: torch.Tensor) -> torch.Tensor:
    """Differentiable maximum drawdown of the compounded equity curve, as a fraction in [0, 1).

    The running peak (``cummax``, including the starting wealth 1.0) passes its gradient to the
    bar where the peak was set, so the penalty pulls both the peak and the trough.
    """
    eq = torch.exp(torch.cumsum(torch.log1p(net_returns.clamp(min=-1.0 + 1e-6)), dim=-1))
    start = torch.ones_like(eq[..., :1])
    peak = torch.cummax(torch.cat([start, eq], dim=-1), dim=-1).values[..., 1:]
    return (1.0 - eq / peak).amax(-1)


def turnover_cost(
    weights: torch.Tensor, before: torch.Tensor, fees: torch.Tensor, eps: float = 1e-6
) -> torch.Tensor:
    """Smooth per-bar trading cost ``sum_a smooth_abs(w - w_before) * fee_a``, shape ``[..., T]``.

    ``simulate`` charges the exact |x|; this smooth version is for objectives that want a
    well-defined gradient when a position is unchanged.
    """
    return (smooth_abs(weights - before, eps) * fees).sum(-1)


def financing_cost(financing: torch.Tensor) -> torch.Tensor:
    """Total financing paid over the path ``sum_t financing_t`` (negative when cash earns interest)."""
    return financing.sum(-1)


def portfolio_reward(
    net_returns: torch.Tensor,
    *,
    objective: str = "log_wealth",
    risk_aversion: float = 0.0,
    drawdown_lambda: float = 0.0,
) -> torch.Tensor:
    """The training reward of one path: objective minus risk-aversion and drawdown penalties.

    Args:
        net_returns: ``[..., T]`` net returns (costs and financing already deducted).
        objective: ``log_wealth`` or ``sharpe`` (per-bar Sharpe times T, on the log-wealth scale).
        risk_aversion: weight on ``variance_penalty``.
        drawdown_lambda: weight on ``max_drawdown``.
    Returns:
        ``[...]`` rewards (higher is better).
    """
    if objective == "log_wealth":
        r = log_wealth(net_returns)
    elif objective == "sharpe":
        r = sharpe_ratio(net_returns)
    else:
        raise ValueError(f"unknown objective {objective!r}")
    if risk_aversion:
        r = r - risk_aversion * variance_penalty(net_returns)
    if drawdown_lambda:
        r = r - drawdown_lambda * max_drawdown(net_returns)
    return r
