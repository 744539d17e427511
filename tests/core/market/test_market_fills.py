"""The one-bar ``step`` of the execution rules equals the vectorised engine and the torch rollout."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mqc.core.backtest.engine import execute
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import leverage_cap, step
from mqc.core.market.simulator import fee_rates
from mqc.core.train.rollout import rollout

CLASSES = ("equity", "crypto", "equity", "equity", "crypto", "equity", "equity", "equity", "crypto", "equity")
MARKETS = [
    MarketConfig(equity_fee_bps=3.0, crypto_fee_bps=12.0, slippage_bps=2.0, financing_rate=0.07, cash_rate=0.02),
    MarketConfig(
        allow_short=True,
        max_gross_leverage=2.0,
        max_overnight_leverage=1.5,
        borrow_rate=0.03,
        financing_rate=0.05,
    ),
    MarketConfig(allow_short=True, crypto_long_only=False, max_gross_leverage=3.0, max_overnight_leverage=1.0),
]


def _paths(seed: int, T: int = 160, A: int = len(CLASSES)):
    rng = np.random.default_rng(seed)
    targets = rng.normal(0.05, 0.35, (T, A))
    targets[rng.random((T, A)) < 0.2] = np.nan  # held assets: the drifted weight stays
    targets[rng.random(T) < 0.3] = rng.normal(0.05, 0.35, A)  # some rows trade every asset
    returns = rng.normal(0.0, 0.02, (T, A))
    dt = np.full(T, 1 / 252)
    dt[-1] = 0.0
    overnight = rng.random(T) < 0.5
    return targets, returns, dt, overnight


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_step_bar_by_bar_equals_the_vectorised_engine(seed: int) -> None:
    cfg = MARKETS[seed]
    targets, returns, dt, overnight = _paths(seed)
    fees = fee_rates(CLASSES, cfg)
    executed, sim = execute(targets, returns, fees, dt, overnight, CLASSES, cfg)
    book = np.zeros(len(CLASSES))
    for t in range(len(targets)):
        f = step(book, targets[t], np.isnan(targets[t]), returns[t], fees, dt[t], bool(overnight[t]), CLASSES, cfg)
        np.testing.assert_allclose(f.weights, executed[t], rtol=0, atol=1e-12)
        np.testing.assert_allclose(f.net_return, sim.net_returns[t], rtol=0, atol=1e-12)
        np.testing.assert_allclose(f.costs, sim.costs[t], rtol=0, atol=1e-12)
        np.testing.assert_allclose(f.bar.financing, sim.financing[t], rtol=0, atol=1e-12)
        book = f.book
    held = np.isnan(targets)
    assert (
        held.any()
        and (
            np.abs(executed).sum(1)
            <= np.maximum(leverage_cap(cfg, overnight), np.abs(np.where(held, executed, 0)).sum(1)) + 1e-12
        ).all()
    )


@pytest.mark.parametrize("exact", [True, False])
def test_torch_step_equals_numpy_step(exact: bool) -> None:
    cfg = MARKETS[1]
    targets, returns, dt, overnight = _paths(4, T=60)
    fees = fee_rates(CLASSES, cfg)
    book_np = np.zeros(len(CLASSES))
    book_t = torch.zeros(len(CLASSES), dtype=torch.float64)
    for t in range(len(targets)):
        hold = np.isnan(targets[t])
        a = step(book_np, targets[t], hold, returns[t], fees, dt[t], bool(overnight[t]), CLASSES, cfg, exact=exact)
        b = step(
            book_t,
            torch.as_tensor(targets[t]),
            torch.as_tensor(hold),
            torch.as_tensor(returns[t]),
            fees,
            dt[t],
            bool(overnight[t]),
            CLASSES,
            cfg,
            exact=exact,
        )
        np.testing.assert_allclose(b.weights.numpy(), a.weights, rtol=0, atol=1e-12)
        np.testing.assert_allclose(float(b.net_return), float(a.net_return), rtol=0, atol=1e-12)
        book_np, book_t = a.book, b.book


def test_torch_step_bar_by_bar_equals_the_training_rollout() -> None:
    """The rollout (vectorised constraint, one-pass drift) fills a window as ``step(exact=False)``."""
    cfg = MARKETS[1]
    rng = np.random.default_rng(7)
    b, H, A = 3, 24, len(CLASSES)
    targets = torch.as_tensor(rng.normal(0.05, 0.4, (2, b, H, A)))
    returns = torch.as_tensor(rng.normal(0.0, 0.02, (2, b, H, A)))
    filled = torch.as_tensor(rng.random((b, H, A)) < 0.25)
    dt = torch.full((b, H), 1 / 252, dtype=torch.float64)
    overnight = rng.random((b, H)) < 0.5
    fees = fee_rates(CLASSES, cfg)
    w, sim = rollout(targets, returns, filled, torch.as_tensor(fees), dt, cfg, CLASSES, overnight)
    hold = filled.expand(targets.shape)
    # The window starts holding its first (traded) position; held assets start from cash.
    book = torch.where(hold[..., 0, :], torch.zeros_like(w[..., 0, :]), w[..., 0, :])
    for t in range(H):
        f = step(
            book,
            targets[..., t, :],
            hold[..., t, :],
            returns[..., t, :],
            fees,
            dt[:, t],
            overnight[:, t],
            CLASSES,
            cfg,
            exact=False,
        )
        torch.testing.assert_close(f.weights, w[..., t, :], rtol=0, atol=1e-12)
        torch.testing.assert_close(f.net_return, sim.net_returns[..., t], rtol=0, atol=1e-12)
        torch.testing.assert_close(f.costs, sim.costs[..., t], rtol=0, atol=1e-12)
        book = f.book
    assert bool(filled.any())


def _same_bits(a, b) -> None:
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(np.signbit(a), np.signbit(b))


@pytest.mark.parametrize("market", [*MARKETS, MarketConfig(), MarketConfig(max_gross_leverage=2.0)])
@pytest.mark.parametrize("shape", [(64, len(CLASSES)), (len(CLASSES),)])
@pytest.mark.parametrize("engine", ["auto", "numpy"])  # auto: a batch runs the compiled step where numba is
def test_step_without_held_assets_is_the_general_fill_and_simulate_bit_for_bit(market, shape, engine) -> None:
    """``step`` skips the held assets' bookkeeping when nothing is held (``hold`` None or all False) and,
    long only, reuses the fill's gross as the long exposure: both must equal the general rule
    (``fill`` with its held-gross room, then ``simulate`` on the one bar) bit for bit, sign of zero
    included, on rows at and just over the cap (softmax rows), shorts, all-zero and NaN rows."""
    from mqc.core.market.fills import fill
    from mqc.core.market.simulator import drifted_weights, simulate

    rng = np.random.default_rng(7)
    fees = fee_rates(CLASSES, market)
    for trial in range(40):
        logits = rng.uniform(-5, 5, shape)
        z = np.exp(logits - logits.max(-1, keepdims=True))
        targets = [z / z.sum(-1, keepdims=True), rng.normal(0.05, 0.5, shape) * rng.choice([0.2, 1.0, 4.0])][trial % 2]
        if len(shape) == 2:
            targets[0] = 0.0
            targets[1] = -np.abs(targets[1])
            if trial % 5 == 0:
                targets[2, 3] = np.nan  # traded (not held): NaN flows through as the general rule has it
        book = rng.normal(0.05, 0.3, shape)
        returns = rng.normal(0.0, 0.02, shape)
        dt = rng.uniform(0, 0.01, shape[:-1]) if len(shape) == 2 else 0.004
        overnight = rng.random(shape[:-1]) < 0.5 if len(shape) == 2 else bool(trial % 3)
        w_ref = fill(targets, np.zeros(shape, dtype=bool), book, CLASSES, market, overnight)
        dt_col = np.asarray(dt, dtype=np.float64)[..., None]
        sim = simulate(w_ref[..., None, :], returns[..., None, :], fees, dt_col, market, prev_weights=book)
        for hold in (None, np.zeros(shape, dtype=bool)):
            got = step(book, targets, hold, returns, fees, dt, overnight, CLASSES, market, engine=engine)
            _same_bits(got.weights, w_ref)
            for name, value in vars(got.bar).items():
                _same_bits(value, getattr(sim, name)[..., 0])
            _same_bits(got.book, drifted_weights(w_ref, returns, sim.net_returns[..., 0]))
