"""Known answers for every differentiable reward term."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mqc.core.market import rewards
from mqc.core.metrics import max_drawdown as np_max_drawdown


def test_log_wealth_known_answer_and_gradient() -> None:
    r = torch.tensor([0.1, -0.05, 0.2], dtype=torch.float64, requires_grad=True)
    lw = rewards.log_wealth(r)
    assert lw.item() == pytest.approx(math.log(1.1 * 0.95 * 1.2))
    lw.backward()
    np.testing.assert_allclose(r.grad.numpy(), [1 / 1.1, 1 / 0.95, 1 / 1.2])


def test_sharpe_known_answer_and_annualisation() -> None:
    r = torch.tensor([0.01, 0.03, -0.01, 0.01], dtype=torch.float64)
    mean, sd = 0.01, math.sqrt(((0.0) ** 2 + 0.02**2 + 0.02**2 + 0.0) / 4)
    assert rewards.sharpe_ratio(r, eps=0.0).item() == pytest.approx(mean / sd)
    assert rewards.sharpe_ratio(r, eps=0.0, bars_per_year=252).item() == pytest.approx(mean / sd * math.sqrt(252))
    # gradient ascent on the Sharpe raises it
    x = r.clone().requires_grad_(True)
    rewards.sharpe_ratio(x).backward()
    assert rewards.sharpe_ratio(x.detach() + 1e-3 * x.grad).item() > rewards.sharpe_ratio(r).item()


def test_smooth_abs_and_turnover_cost() -> None:
    x = torch.tensor([-0.5, 0.0, 0.25], dtype=torch.float64, requires_grad=True)
    y = rewards.smooth_abs(x, eps=1e-9)
    np.testing.assert_allclose(y.detach().numpy(), [0.5, 0.0, 0.25], atol=1e-8)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [-1.0, 0.0, 1.0], atol=1e-6)  # finite (0) at 0
    w = torch.tensor([[0.6, 0.4]], dtype=torch.float64)
    before = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    cost = rewards.turnover_cost(w, before, torch.tensor([0.001, 0.002], dtype=torch.float64), eps=1e-12)
    assert cost.item() == pytest.approx(0.1 * 0.001 + 0.1 * 0.002)


def test_variance_penalty_known_answer() -> None:
    r = torch.tensor([0.02, -0.02, 0.02, -0.02], dtype=torch.float64)
    assert rewards.variance_penalty(r).item() == pytest.approx(4 * 0.02**2)
    assert rewards.variance_penalty(torch.full((5,), 0.01, dtype=torch.float64)).item() == pytest.approx(0.0)


def test_max_drawdown_matches_numpy_and_is_differentiable() -> None:
    r = np.array([0.1, -0.2, 0.05, -0.1, 0.3])
    x = torch.tensor(r, requires_grad=True)
    dd = rewards.max_drawdown(x)
    # peak 1.1, trough 1.1 * 0.8 * 1.05 * 0.9 = 0.8316 -> 1 - 0.756
    assert dd.item() == pytest.approx(1 - 0.8 * 1.05 * 0.9)
    assert dd.item() == pytest.approx(np_max_drawdown(r))
    dd.backward()
    assert x.grad[1] < 0 and x.grad[2] < 0 and x.grad[3] < 0  # better bars between peak and trough shrink it
    assert abs(x.grad[0]) < 1e-12  # bars up to the peak scale peak and trough alike
    assert x.grad[4] == 0  # the recovery after the trough does not matter
    assert rewards.max_drawdown(torch.tensor([0.01, 0.02])).item() == 0.0


def test_financing_cost_and_portfolio_reward() -> None:
    fin = torch.tensor([[0.001, 0.002, -0.0005]])
    assert rewards.financing_cost(fin).item() == pytest.approx(0.0025)
    r = torch.tensor([0.1, -0.2, 0.1], dtype=torch.float64)
    base = rewards.log_wealth(r)
    pen = rewards.portfolio_reward(r, risk_aversion=2.0, drawdown_lambda=0.5)
    assert pen.item() == pytest.approx(base.item() - 2.0 * rewards.variance_penalty(r).item() - 0.5 * 0.2)
    assert rewards.portfolio_reward(r, objective="sharpe").item() == pytest.approx(rewards.sharpe_ratio(r).item())
    with pytest.raises(ValueError, match="unknown objective"):
        rewards.portfolio_reward(r, objective="nope")


def test_portfolio_reward_annual_scales() -> None:
    """Known answers: annualised log growth, annualised Sharpe, annualised variance, DD fraction."""
    r = torch.tensor([0.01, -0.02, 0.03, 0.0], dtype=torch.float64)
    bpy, t = 252.0, 4
    logs = [math.log1p(x) for x in (0.01, -0.02, 0.03, 0.0)]
    mean = sum((0.01, -0.02, 0.03, 0.0)) / t
    var = sum((x - mean) ** 2 for x in (0.01, -0.02, 0.03, 0.0)) / t  # population variance
    growth = sum(logs) * bpy / t
    assert rewards.portfolio_reward(r, bars_per_year=bpy).item() == pytest.approx(growth)
    sharpe = mean / math.sqrt(var + 1e-8) * math.sqrt(bpy)
    assert rewards.portfolio_reward(r, objective="sharpe", bars_per_year=bpy).item() == pytest.approx(sharpe)
    assert rewards.variance_penalty(r, bpy).item() == pytest.approx(var * bpy)
    dd = 1.0 - (1.01 * 0.98) / 1.01  # peak after bar 0, trough after bar 1
    pen = rewards.portfolio_reward(r, risk_aversion=3.0, drawdown_lambda=0.5, bars_per_year=bpy)
    assert pen.item() == pytest.approx(growth - 3.0 * var * bpy - 0.5 * dd)
    # the annual scale does not depend on the horizon: a path repeated twice has the same reward
    rr = torch.cat([r, r])
    for objective in ("log_wealth", "sharpe"):
        a = rewards.portfolio_reward(r, objective=objective, risk_aversion=1.0, bars_per_year=bpy).item()
        b = rewards.portfolio_reward(rr, objective=objective, risk_aversion=1.0, bars_per_year=bpy).item()
        assert a == pytest.approx(b, rel=1e-6)
