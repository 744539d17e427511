"""The engine's accounting, timing and look-ahead guard, checked against independent implementations."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mqc.core.backtest.engine import resolve_bounds, run_backtest
from mqc.core.data.panel import Panel
from mqc.core.errors import DataError
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import bar_years, simulate


def ledger_equity(close, weights, fees, dt, cfg: MarketConfig) -> list[float]:
    """A plain cash ledger, bar by bar: trade to target values at close t, pay fees and financing
    from cash, let the positions grow to close t+1. Returns equity after each bar. NaN = no order."""
    n_bars, n_assets = len(close), len(close[0])
    cash, pos = 1.0, [0.0] * n_assets
    out = []
    for t in range(n_bars):
        equity = cash + sum(pos)
        cost = 0.0
        for a in range(n_assets):
            target = weights[t][a]
            if target != target:  # NaN: hold the position
                continue
            trade = target * equity - pos[a]
            cost += abs(trade) * fees[a]
            cash -= trade
            pos[a] = target * equity
        held = [p / equity for p in pos]
        long_ = sum(x for x in held if x > 0)
        short_ = -sum(x for x in held if x < 0)
        rate = (
            max(long_ - 1.0, 0.0) * cfg.financing_rate
            + short_ * cfg.borrow_rate
            - max(1.0 - long_, 0.0) * cfg.cash_rate
        )
        cash -= cost + equity * rate * dt[t]
        nxt = close[t + 1] if t + 1 < n_bars else close[t]
        for a in range(n_assets):
            pos[a] *= nxt[a] / close[t][a]
        out.append(cash + sum(pos))
    return out


@pytest.fixture
def panel(synth_panel) -> Panel:
    return synth_panel(n_assets=3, n_bars=240, seed=7)


def _held_years(panel: Panel) -> list[float]:
    """Bar lengths in years as a backtest holds them: the segment's last bar is not held."""
    dt = bar_years(panel.timestamps)
    dt[-1] = 0.0
    return dt.tolist()


def _random_weights(rng, shape, lo=-0.4, hi=0.6):
    return rng.uniform(lo, hi, size=shape)


LEVERED = MarketConfig(
    equity_fee_bps=3.0,
    slippage_bps=4.0,
    financing_rate=0.06,
    borrow_rate=0.03,
    cash_rate=0.02,
    allow_short=True,
    max_gross_leverage=3.0,
    max_overnight_leverage=3.0,
)


def test_equity_matches_plain_python_ledger(panel):
    rng = np.random.default_rng(0)
    w = _random_weights(rng, (len(panel), panel.n_assets))
    w[::7] *= 1.6  # some bars borrow (long gross > 1), some sit mostly in cash
    res = run_backtest(panel, w, LEVERED)
    fees = [LEVERED.one_way_bps("equity") / 1e4] * panel.n_assets
    ref = ledger_equity(panel.close.tolist(), w.tolist(), fees, _held_years(panel), LEVERED)
    np.testing.assert_allclose(res.equity, ref, rtol=1e-12)
    assert res.metrics["total_return"] == pytest.approx(ref[-1] - 1.0, rel=1e-10)


def test_holds_nan_targets_like_the_ledger(panel):
    rng = np.random.default_rng(1)
    w = _random_weights(rng, (len(panel), panel.n_assets), 0.0, 0.5)
    w[10:40] = np.nan  # whole rows without orders
    w[60:120, 1] = np.nan  # one asset held while the others trade
    res = run_backtest(panel, w, LEVERED)
    fees = [LEVERED.one_way_bps("equity") / 1e4] * panel.n_assets
    ref = ledger_equity(panel.close.tolist(), w.tolist(), fees, _held_years(panel), LEVERED)
    np.testing.assert_allclose(res.equity, ref, rtol=1e-12)
    assert np.abs(res.trades[10:40]).max() < 1e-15
    assert np.abs(res.trades[60:120, 1]).max() < 1e-15
    assert np.abs(res.trades[60:120, 0]).max() > 1e-3


def test_matches_vectorbt_from_orders(panel):
    vbt = pytest.importorskip("vectorbt")
    import pandas as pd

    rng = np.random.default_rng(2)
    w = rng.uniform(0.0, 0.3, size=(len(panel), panel.n_assets))  # gross <= 0.9: cash always covers fees
    cfg = MarketConfig(equity_fee_bps=5.0, slippage_bps=3.0, financing_rate=0.0)
    res = run_backtest(panel, w, cfg)
    idx = pd.DatetimeIndex(panel.timestamps)
    pf = vbt.Portfolio.from_orders(
        pd.DataFrame(panel.close, index=idx),
        size=pd.DataFrame(w, index=idx),
        size_type="targetpercent",
        fees=cfg.one_way_bps("equity") / 1e4,
        init_cash=1.0,
        cash_sharing=True,
        group_by=True,
        call_seq="auto",
        freq="1D",
    )
    value = pf.value().to_numpy()
    # vectorbt values the book at close t after that bar's fees; mqc's equity[t] is after the hold
    pre_trade = np.concatenate([[1.0], res.equity[:-1]])
    np.testing.assert_allclose(pre_trade * (1.0 - res.costs), value, rtol=1e-9)


def test_engine_agrees_with_simulate_without_nan(panel):
    rng = np.random.default_rng(3)
    w = rng.uniform(0.0, 0.3, size=(len(panel), panel.n_assets))
    cfg = MarketConfig()
    res = run_backtest(panel, w, cfg)
    from mqc.core.market.simulator import fee_rates, simple_returns

    sim = simulate(
        w,
        simple_returns(panel.close),
        fee_rates(panel.asset_classes, cfg),
        bar_years(panel.timestamps),
        cfg,
        exact=True,
    )
    np.testing.assert_allclose(res.net_returns, sim.net_returns, rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.abs(res.trades).sum(axis=1), res.turnover, atol=1e-14)


def test_constraints_are_applied(panel):
    w = np.full((len(panel), panel.n_assets), 0.8)
    w[:, 0] = -0.5
    res = run_backtest(panel, w, MarketConfig())  # long only, gross cap 1
    assert (res.weights >= 0).all()
    assert res.gross_leverage.max() <= 1.0 + 1e-12


def test_filled_bars_are_not_traded(panel):
    filled = panel.filled.copy()
    filled[50:60, 2] = True
    stale = dataclasses.replace(panel, filled=filled)
    w = np.tile([0.3, 0.3, 0.3], (len(panel), 1))
    w[50:] = [0.1, 0.1, 0.6]
    res = run_backtest(stale, w, MarketConfig())
    assert np.abs(res.trades[50:60, 2]).max() < 1e-15
    assert np.abs(res.trades[50, :2]).max() > 0.1
    assert abs(res.trades[60, 2]) > 0.2  # traded once a real bar is back


def test_lookahead_guard_engine(synth_panel):
    base = synth_panel(n_assets=3, n_bars=300, seed=11)
    k = 180
    w = np.random.default_rng(4).uniform(0.0, 0.3, size=(300, 3))
    res = run_backtest(base, w, MarketConfig())
    # perturb every bar after k and append 50 more bars
    values = base.values.copy()
    values[k + 1 :] *= np.random.default_rng(5).uniform(0.8, 1.2, size=(300 - k - 1, 3, 1))
    extra = np.repeat(values[-1:], 50, axis=0)
    ts = np.concatenate([base.timestamps, base.timestamps[-1] + np.arange(1, 51) * np.timedelta64(1, "D")])
    longer = Panel(
        ts, base.symbols, np.concatenate([values, extra]), np.zeros((350, 3), bool), base.timeframe, base.asset_classes
    )
    w2 = np.concatenate([w, np.full((50, 3), 0.2)])
    w2[k + 1 : 300] = 0.05
    res2 = run_backtest(longer, w2, MarketConfig(), bars_per_year=res.bars_per_year)
    np.testing.assert_array_equal(res.weights[: k + 1], res2.weights[: k + 1])
    np.testing.assert_array_equal(res.equity[:k], res2.equity[:k])
    assert not np.allclose(res.equity[k:], res2.equity[k:300])  # the perturbation did change the future


def test_start_end_and_bad_inputs(panel):
    w = np.full((len(panel), panel.n_assets), 0.2)
    res = run_backtest(panel, w, MarketConfig(), start=40, end=100)
    assert len(res) == 60 and res.turnover[0] == pytest.approx(0.6)  # the range starts from cash
    lo, hi = resolve_bounds(panel.timestamps, str(panel.timestamps[10])[:10], str(panel.timestamps[20])[:10])
    assert (lo, hi) == (10, 21)
    with pytest.raises(DataError, match="shape"):
        run_backtest(panel, w[:-1], MarketConfig())
    bad = w.copy()
    bad[3, 1] = np.inf
    with pytest.raises(DataError, match="infinite"):
        run_backtest(panel, bad, MarketConfig())
    with pytest.raises(DataError, match="no bars"):
        run_backtest(panel, w, MarketConfig(), start="2100-01-01")


def test_last_bar_has_no_holding_period(panel):
    """The segment's last bar earns nothing: no financing, no cash interest, not a year fraction."""
    cfg = dataclasses.replace(MarketConfig(), cash_rate=0.05)
    res = run_backtest(panel, np.full((len(panel), panel.n_assets), 0.2), cfg)
    assert res.financing[-1] == 0.0 and res.financing[-2] < 0.0  # cash earns on held bars only
    n = len(res)
    growth = float(np.prod(1.0 + res.net_returns))
    years = (n - 1) / res.bars_per_year
    assert res.metrics["annual_return"] == pytest.approx(growth ** (1.0 / years) - 1.0, rel=1e-12)
