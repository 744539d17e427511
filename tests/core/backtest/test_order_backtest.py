"""Order strategies end to end: causality, the oracle's intrabar gap, forecasts cache, bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mqc.core.backtest.config import BacktestConfig, OrderBacktestConfig
from mqc.core.backtest.order_fit import walk_forward
from mqc.core.backtest.order_runner import run_order_backtest
from mqc.core.data.config import DataConfig
from mqc.core.data.panel import Panel
from mqc.core.errors import ConfigError, DataError
from mqc.core.forecast.bar_forecasts import BarForecasts, next_bar_forecasts
from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import long_only_mask
from mqc.core.market.ledger import simulate_orders
from mqc.core.policy.strategy import order_strategy, order_strategy_names

QUICK = BacktestConfig(bootstrap_samples=50, plots=False)


def _perturbed(panel: Panel, t: int, seed: int = 1) -> Panel:
    v = panel.values.copy()
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0, 0.05, (len(panel) - t - 1, panel.n_assets)))[..., None]
    v[t + 1 :, :, :4] *= scale
    v[t + 1 :, :, 4] *= 3.0
    return dataclasses.replace(panel, values=v)


@pytest.mark.parametrize("model", ["ewma-vol", "naive"])
def test_orders_and_fitted_parameters_ignore_later_bars(synth_panel, model):
    panel = synth_panel(n_assets=2, n_bars=260, seed=4)
    t, lo = 200, 150
    cfg = OrderBacktestConfig(refit_every=15, fit_window=60, grid_points=3)
    spec = order_strategy("maxdiff")
    mkt = MarketConfig(allow_short=True)
    out = []
    for p in (panel, _perturbed(panel, t)):
        fc = next_bar_forecasts(p, ForecastConfig(model=model, window=30), cache=False)
        fit = walk_forward(spec, p.values, p.timestamps, fc, p.symbols, p.asset_classes, mkt, cfg, lo, len(p))
        orders = spec.place(p.close, fc, fit.params, long_only_mask(p.asset_classes, mkt), start=lo)
        out.append((fc, fit, orders))
    (fa, pa, oa), (fb, pb, ob) = out
    for name in ("high", "low"):
        np.testing.assert_array_equal(fa.field(name)[: t + 1], fb.field(name)[: t + 1])
    for k in pa.params:
        np.testing.assert_array_equal(pa.params[k][: t + 1], pb.params[k][: t + 1])
    for f in ("kind", "side", "price", "size"):
        np.testing.assert_array_equal(getattr(oa, f)[: t + 1], getattr(ob, f)[: t + 1])
    assert not np.array_equal(oa.price[t + 2 :], ob.price[t + 2 :])  # the perturbation did reach later bars
    # each fit used bars before the ones it trades
    for f in pa.fits:
        assert f["fit_range"][1] <= int(np.searchsorted(panel.timestamps, np.datetime64(f["applies_to"][0])))


def _oracle(panel: Panel) -> BarForecasts:
    """Knows the next bar: the moves of bar t+1's high and low from close t (not causal: a yardstick)."""
    c = panel.close
    h, lo = np.full(c.shape, np.nan), np.full(c.shape, np.nan)
    h[:-1] = panel.values[1:, :, 1] / c[:-1] - 1
    lo[:-1] = panel.values[1:, :, 2] / c[:-1] - 1
    return BarForecasts("oracle", h, lo, np.full(c.shape, np.nan), 0)


def test_oracle_makes_money_optimistic_and_measurably_less_conservative(synth_panel):
    panel = synth_panel(n_assets=3, n_bars=300, seed=2)
    spec = order_strategy("maxdiff")
    mkt = MarketConfig(allow_short=True)
    orders = spec.place(panel.close, _oracle(panel), None, long_only_mask(panel.asset_classes, mkt))
    growth = {}
    for rule in ("optimistic", "conservative"):
        res = simulate_orders(panel.values, panel.timestamps, orders, panel.asset_classes, mkt, intrabar=rule)
        growth[rule] = float(np.prod(1 + res.net_returns) - 1)
        if rule == "conservative":
            assert res.decided.mean() > 0.5  # the oracle's entry and exit sit exactly on the low and high
    assert growth["optimistic"] > 1.0  # buying every low and selling every high: a fortune
    assert growth["conservative"] < growth["optimistic"] - 0.5


def test_report_has_fill_stats_intrabar_comparison_and_fill_rows(synth_panel, tmp_path):
    panel = synth_panel(n_assets=2, n_bars=400, seed=5)
    ocfg = OrderBacktestConfig(refit_every=40, fit_window=100, grid_points=3)
    rep = run_order_backtest(
        "maxdiff",
        ForecastConfig(model="naive"),
        DataConfig(),
        QUICK,
        ocfg,
        MarketConfig(),
        panel=panel,
        out_dir=tmp_path / "r",
    )
    o = rep.orders
    assert o["fills"]["fills"] > 0 and 0 < o["fills"]["fill_rate"] <= 1
    assert set(o["intrabar_comparison"]) >= {"conservative", "optimistic"}
    assert o["fit"]["fits"] and o["fit"]["fits"][0]["fit_range"][1] == rep.segment["start_bar"]
    lines = (tmp_path / "r" / "trades.jsonl").read_text().splitlines()
    fills = [line for line in lines if '"type": "fill"' in line]
    assert len(fills) == o["fills"]["fills"] == len(rep.fills)
    assert "benchmarks" in rep.to_dict() and rep.significance


def test_buy_hold_known_answer(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=200, seed=8)
    mkt = MarketConfig(financing_rate=0.0)
    cfg = dataclasses.replace(QUICK, split="all")
    rep = run_order_backtest(
        "buy-hold", ForecastConfig(model="naive"), DataConfig(), cfg, None, mkt, panel=panel, write=False
    )
    # one market-on-open order per symbol placed at bar 0: half the equity each at bar 1's open
    units = 0.5 / panel.open[1]
    cash = 1.0 - (units * panel.open[1]).sum() - (units * panel.open[1] * 3e-4).sum()  # 1 + 2 bps each way
    book = cash + (units * panel.close).sum(1)
    eq = np.cumprod(1 + rep.result.net_returns)
    np.testing.assert_allclose(eq[1:-1], book[2:], rtol=1e-12)
    assert rep.orders["fills"]["fills"] == 2


def test_every_registered_strategy_runs(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=200, seed=9)
    assert set(order_strategy_names()) >= {
        "maxdiff",
        "maxdiff-always-on",
        "simple",
        "highlow",
        "takeprofit",
        "buy-hold",
    }
    for name in order_strategy_names():
        rep = run_order_backtest(
            name,
            ForecastConfig(model="drift", window=20),
            DataConfig(),
            QUICK,
            None,
            MarketConfig(),
            panel=panel,
            write=False,
        )
        assert np.isfinite(rep.result.net_returns).all()


def test_forecasts_are_cached_and_reused(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=120, seed=3)
    cfg = ForecastConfig(model="ewma-vol", window=20)
    a = next_bar_forecasts(panel, cfg)
    b = next_bar_forecasts(panel, cfg)
    assert not a.from_cache and b.from_cache and b.cache_path == a.cache_path
    np.testing.assert_array_equal(a.high, b.high)
    c = next_bar_forecasts(_perturbed(panel, 100), cfg)
    assert not c.from_cache  # other data, another key


class _CloseOnly:
    name = "close-only"
    forecast_fields = ("close",)

    def predict_arrays(self, *a, **k):  # pragma: no cover - never reached
        raise AssertionError


def test_a_model_without_high_low_is_one_clear_error(synth_panel):
    panel = synth_panel(n_assets=1, n_bars=80, seed=3)
    with pytest.raises(ConfigError, match="does not forecast the next bar's high and low.*maxdiff"):
        next_bar_forecasts(
            panel,
            ForecastConfig(model="naive"),
            factory=lambda n, c: _CloseOnly(),
            needs=("high", "low"),
            strategy="maxdiff",
            cache=False,
        )


def test_too_little_history_for_the_fit_window(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=200, seed=3)
    with pytest.raises(DataError, match="the fit window needs 500"):
        run_order_backtest(
            "maxdiff",
            ForecastConfig(model="naive"),
            DataConfig(),
            QUICK,
            OrderBacktestConfig(fit_window=500),
            panel=panel,
            write=False,
        )


def test_differential_evolution_fit_runs_and_stays_in_bounds(synth_panel):
    panel = synth_panel(n_assets=1, n_bars=160, seed=3)
    spec = order_strategy("maxdiff-always-on")
    fc = next_bar_forecasts(panel, ForecastConfig(model="naive"), cache=False)
    cfg = OrderBacktestConfig(fit_window=80, fit_method="de", de_maxiter=3)
    fit = walk_forward(
        spec, panel.values, panel.timestamps, fc, panel.symbols, panel.asset_classes, MarketConfig(), cfg, 120, 160
    )
    v = fit.params["entry_offset"][120:]
    assert (v >= -0.02).all() and (v <= 0.02).all() and fit.fits[0]["method"] == "de"


def test_zero_volume_bars_fill_nothing_and_are_reported(synth_panel):
    panel = synth_panel(n_assets=2, n_bars=150, seed=3)
    v = panel.values.copy()
    v[:, 0, 4] = 0.0
    panel = dataclasses.replace(panel, values=v)
    cfg = dataclasses.replace(QUICK, split="all")
    rep = run_order_backtest("buy-hold", ForecastConfig(model="naive"), DataConfig(), cfg, panel=panel, write=False)
    assert rep.orders["fills"]["per_symbol_fills"] == {panel.symbols[0]: 0, panel.symbols[1]: 1}
    assert any("zero volume" in w for w in rep.segment["warnings"])
