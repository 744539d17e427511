"""The market equations: torch == numpy on random paths, and hand-computed known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import constrain_weights
from mqc.core.market.simulator import (
    bar_years,
    fee_rates,
    overnight_mask,
    simple_returns,
    simulate,
)
from mqc.core.metrics import compute_metrics

FIELDS = (
    "net_returns",
    "gross_returns",
    "costs",
    "financing",
    "turnover",
    "gross_leverage",
    "long_exposure",
    "short_exposure",
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_equals_numpy_on_random_paths(seed: int) -> None:
    rng = np.random.default_rng(seed)
    classes = ("equity", "crypto", "equity", "cash", "crypto")
    cfg = MarketConfig(
        equity_fee_bps=3.0,
        crypto_fee_bps=12.0,
        cash_fee_bps=0.5,
        slippage_bps=2.0,
        financing_rate=0.07,
        borrow_rate=0.03,
        cash_rate=0.02,
        max_gross_leverage=2.5,
        max_overnight_leverage=1.5,
        allow_short=True,
    )
    raw = rng.normal(0.0, 0.8, size=(4, 60, len(classes)))  # shorts and gross up to ~3x before caps
    rets = rng.normal(0.0, 0.02, size=raw.shape)
    ts = np.datetime64("2024-01-01T00:00") + np.cumsum(rng.integers(1, 30, size=60)).astype("timedelta64[h]")
    over = overnight_mask(ts)
    dt = bar_years(ts)
    fees = fee_rates(classes, cfg)
    prev = rng.normal(0.0, 0.3, size=(4, len(classes)))
    w_np = constrain_weights(raw, classes, cfg, over)
    w_t = constrain_weights(torch.tensor(raw), classes, cfg, over)
    np.testing.assert_allclose(w_t.numpy(), w_np, atol=1e-12)
    assert (w_np[..., [1, 4]] >= 0).all(), "crypto stays long-only"
    cap = np.where(over, 1.5, 2.5)
    assert (np.abs(w_np).sum(-1) <= cap + 1e-12).all()
    assert (w_np < 0).any() and (np.abs(w_np).sum(-1) > 1.2).any(), "the path really has shorts and leverage"
    a = simulate(w_np, rets, fees, dt, cfg, prev_weights=prev)
    b = simulate(w_t, torch.tensor(rets), fees, dt, cfg, prev_weights=torch.tensor(prev))
    for name in FIELDS:
        np.testing.assert_allclose(getattr(b, name).numpy(), getattr(a, name), atol=1e-6, err_msg=name)
    np.testing.assert_allclose(b.equity().numpy(), a.equity(), rtol=1e-6)
    # float32 (the training dtype) stays close too
    c = simulate(w_t.float(), torch.tensor(rets).float(), fees, dt, cfg, prev_weights=torch.tensor(prev).float())
    np.testing.assert_allclose(c.net_returns.numpy(), a.net_returns, atol=1e-5)


def test_three_bar_known_answer() -> None:
    cfg = MarketConfig(equity_fee_bps=10.0, slippage_bps=0.0, financing_rate=0.0)
    w = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    r = np.array([[0.1, 0.0], [0.0, -0.1], [0.05, 0.0]])
    sim = simulate(w, r, fee_rates(("equity", "equity"), cfg), np.full(3, 1 / 252), cfg)
    # bar 0: buy from cash; bar 1: drift to (0.55, 0.5)/1.05, rebalance back; bar 2: drift to (0.5, 0.45)/0.95
    t1 = abs(0.5 - 0.55 / 1.05) + abs(0.5 - 0.5 / 1.05)
    t2 = abs(1.0 - 0.5 / 0.95) + abs(0.0 - 0.45 / 0.95)
    np.testing.assert_allclose(sim.turnover, [1.0, t1, t2], atol=1e-12)
    np.testing.assert_allclose(sim.costs, [0.001, t1 * 0.001, t2 * 0.001], atol=1e-12)
    expected = np.array([0.05 - 0.001, -0.05 - t1 * 0.001, 0.05 - t2 * 0.001])
    np.testing.assert_allclose(sim.net_returns, expected, atol=1e-12)
    np.testing.assert_allclose(sim.equity()[-1], np.prod(1 + expected), rtol=1e-12)


def test_wealth_compounds_rather_than_sums() -> None:
    cfg = MarketConfig(equity_fee_bps=0.0, slippage_bps=0.0, financing_rate=0.0)
    w = np.ones((2, 1))
    r = np.array([[0.5], [-0.5]])
    sim = simulate(w, r, fee_rates(("equity",), cfg), np.full(2, 1 / 252), cfg)
    assert sim.equity()[-1] == pytest.approx(0.75)  # summing would say 1.0
    assert compute_metrics(sim.net_returns, 252)["total_return"] == pytest.approx(-0.25)


def test_costs_use_drift_adjusted_turnover() -> None:
    cfg = MarketConfig(equity_fee_bps=10.0, slippage_bps=0.0, financing_rate=0.0)
    r = np.array([[0.2, -0.1], [0.0, 0.0], [0.0, 0.0]])
    # buy and hold: after bar 0 the target equals the drifted weights, so nothing trades
    hold = np.array([[0.5, 0.5], [0.6 / 1.05, 0.45 / 1.05], [0.6 / 1.05, 0.45 / 1.05]])
    sim = simulate(hold, r, fee_rates(("equity", "equity"), cfg), np.full(3, 1 / 252), cfg)
    np.testing.assert_allclose(sim.turnover[1:], 0.0, atol=1e-12)
    # constant 50/50 targets must trade back after the drift
    fixed = simulate(np.full((3, 2), 0.5), r, fee_rates(("equity", "equity"), cfg), np.full(3, 1 / 252), cfg)
    assert fixed.turnover[1] == pytest.approx(abs(0.5 - 0.6 / 1.05) + abs(0.5 - 0.45 / 1.05))


def test_financing_borrow_and_cash_scale_with_bar_length() -> None:
    cfg = MarketConfig(
        equity_fee_bps=0.0,
        slippage_bps=0.0,
        financing_rate=0.10,
        borrow_rate=0.04,
        cash_rate=0.02,
        max_gross_leverage=3.0,
        max_overnight_leverage=3.0,
        allow_short=True,
    )
    ts = np.array(["2024-01-01", "2024-01-02", "2024-01-05"], dtype="datetime64[ns]")
    dt = bar_years(ts)
    np.testing.assert_allclose(dt * 365.25, [1.0, 3.0, 2.0])  # the last bar repeats the median gap
    w = np.array([[1.5, 0.0], [0.5, -0.5], [0.2, 0.0]])
    sim = simulate(w, np.zeros((3, 2)), np.zeros(2), dt, cfg)
    np.testing.assert_allclose(
        sim.financing, [0.5 * 0.10 * dt[0], 0.5 * 0.04 * dt[1] - 0.5 * 0.02 * dt[1], -0.8 * 0.02 * dt[2]]
    )


def test_constraints_shorts_crypto_and_overnight_caps() -> None:
    w = np.array([[-0.5, 0.8, 1.2]])
    classes = ("equity", "crypto", "equity")
    np.testing.assert_allclose(
        constrain_weights(w, classes, MarketConfig(max_overnight_leverage=1.0, max_gross_leverage=2.0)),
        [[0.0, 0.4, 0.6]],
    )
    ls = MarketConfig(allow_short=True, max_gross_leverage=2.5, max_overnight_leverage=1.25)
    intraday = constrain_weights(np.array([[-0.5, -0.8, 1.2]]), classes, ls, np.array([False]))
    np.testing.assert_allclose(intraday, [[-0.5, 0.0, 1.2]])  # crypto clipped, gross 1.7 < 2.5
    overnight = constrain_weights(np.array([[-0.5, -0.8, 1.2]]), classes, ls, np.array([True]))
    np.testing.assert_allclose(np.abs(overnight).sum(), 1.25)


def test_simple_returns_and_overnight_mask() -> None:
    np.testing.assert_allclose(simple_returns(np.array([[100.0], [110.0], [99.0]]))[:, 0], [0.1, -0.1, 0.0])
    ts = np.array(["2024-01-01T14:00", "2024-01-01T15:00", "2024-01-02T14:00"], dtype="datetime64[ns]")
    assert overnight_mask(ts).tolist() == [False, True, True]
    assert math.isclose(fee_rates(("cash",), MarketConfig(cash_fee_bps=1.0))[0], 1e-4)
