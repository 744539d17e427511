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


def variance_penalty(net_returns: torch.Tensor, bars_per_year: float | None = None) -> torch.Tensor:
    """Population variance of per-bar net returns, annualised (``var * bars_per_year``) when
    ``bars_per_year`` is given, else times the number of bars (the scale of total log wealth)."""
    scale = bars_per_year if bars_per_year else net_returns.shape[-1]
    return net_returns.var(-1, unbiased=False) * scale


def max_drawdown(net_returns: torch.Tensor) -> torch.Tensor:
    """Differentiable maximum drawdown of the compounded equity curve, as a fraction in [0, 1).

    The running peak (``cummax``, including the starting wealth 1.0) passes its gradient to the
    bar where the peak was set, so the penalty pulls both the peak and the trough.
    """
    eq = torch.exp(torch.cumsum(torch.log1p(net_returns.clamp(min=-1.0 + 1e-6)), dim=-1))
    start = torch.ones_like(eq[..., :1])
    peak = torch.cummax(torch.cat([start, eq], dim=-1), dim=-1).values[..., 1:]
    return (1.0 - eq / peak).amax(-1)


def turnover_cost(weights: torch.Tensor, before: torch.Tensor, fees: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
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
    bars_per_year: float | None = None,
) -> torch.Tensor:
    """The training reward of one path: objective minus risk-aversion and drawdown penalties.

    With ``bars_per_year`` (what the trainers pass) every term is on an annual scale:

    * ``log_wealth``: annualised log growth ``sum_t log(1 + net_t) * bars_per_year / T``;
    * ``sharpe``: annualised Sharpe ``mean / std * sqrt(bars_per_year)``;
    * ``risk_aversion`` weighs the annualised variance ``var * bars_per_year`` (so with log
      wealth the reward is the mean-variance ``g - lambda * sigma^2``);
    * ``drawdown_lambda`` weighs the max drawdown of the path (a fraction: 0.1 = 10%).

    Without it the terms are per path: total log growth, per-bar Sharpe, ``var * T``.

    Args:
        net_returns: ``[..., T]`` net returns (costs and financing already deducted).
        objective: ``log_wealth`` or ``sharpe``.
        risk_aversion: weight on ``variance_penalty``.
        drawdown_lambda: weight on ``max_drawdown``.
        bars_per_year: annualisation (None: per-path units, see above).
    Returns:
        ``[...]`` rewards (higher is better).
    Raises:
        ValueError: unknown ``objective``.
    """
    if objective == "log_wealth":
        r = log_wealth(net_returns)
        if bars_per_year:
            r = r * (bars_per_year / net_returns.shape[-1])
    elif objective == "sharpe":
        r = sharpe_ratio(net_returns, bars_per_year=bars_per_year)
    else:
        raise ValueError(f"unknown objective {objective!r}")
    if risk_aversion:
        r = r - risk_aversion * variance_penalty(net_returns, bars_per_year)
    if drawdown_lambda:
        r = r - drawdown_lambda * max_drawdown(net_returns)
    return r
