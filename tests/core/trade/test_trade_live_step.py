"""A live bar of an order strategy is a stateful step that decides what the backtest decides at that bar:
``mqc backtest --strategy S --start ANCHOR`` (forecasts, the fit of its re-fit schedule, the orders)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mqc.core.backtest.order_runner import place_orders
from mqc.core.data.config import DataConfig
from mqc.core.data.panel import Panel
from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.config import MarketConfig
from mqc.core.market.orders import Orders
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, replay

SYMS = ("SYN0", "SYN1", "SYN2")
MARKET = MarketConfig(allow_short=True)
ANCHOR = 150


@pytest.fixture
def catalog(synth) -> None:
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=3, n_bars=230, seed=11, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")


def _ns(panel: Panel, t: int) -> int:
    return int(np.asarray(panel.timestamps).astype("datetime64[ns]").astype(np.int64)[t])


def _equal(a: Orders, b: Orders, rtol: float = 0.0) -> bool:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if rtol and x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=rtol, atol=0.0, equal_nan=True):
                return False
        elif not np.array_equal(x, y, equal_nan=True):
            return False
    return True


def _live_vs_backtest(decider, panel: Panel, rtol: float = 0.0) -> int:
    """Decide every bar from ANCHOR on a growing history (one decider, as the live loop); compare each
    bar with the backtest from ANCHOR. Returns the number of orders placed."""
    ref, _, _ = place_orders(decider.spec, decider.forecast, panel, MARKET, decider.order_cfg, ANCHOR, len(panel))
    decider.anchor = _ns(panel, ANCHOR)
    for t in range(ANCHOR, len(panel)):
        placed = decider.decide_orders(panel.slice(0, t + 1))
        assert _equal(placed, ref.at(t), rtol), f"bar {t}"
    return int((ref.kind[ANCHOR:] != 0).sum())


@pytest.mark.parametrize(
    ("strategy", "flags"),
    [
        ("maxdiff", {}),
        ("maxdiff", {"fit_window": 30, "refit_every": 7}),  # re-fits at ANCHOR, ANCHOR + 7, ...: kept in between
        ("maxdiff-always-on", {"fit_window": 25}),  # one fit at ANCHOR, kept for good
        ("simple", {"fit_window": 20, "refit_every": 5}),
        ("buy-hold", {}),  # its orders depend on the bars since ANCHOR (one buy at the first)
    ],
)
def test_live_step_equals_the_backtest_at_every_bar(catalog, strategy, flags):
    d = order_decider(strategy, SYMS, "1d", MARKET, only="naive", order_flags=flags)
    assert _live_vs_backtest(d, load_history(d, DataConfig())) > 0


def test_per_symbol_models_and_a_window_model(catalog):
    """Symbols on their own forecasters (one model built per group); ewma-vol reads a 251-bar window.
    Its batched numpy reductions round differently for another batch of origins: equal to 1e-12."""
    d = order_decider("maxdiff", SYMS, "1d", MARKET, only="naive", order_flags={"fit_window": 20, "refit_every": 9})
    d.forecast = {"SYN0": ForecastConfig(model="naive"), "SYN1": ForecastConfig(model="ewma-vol"), "SYN2": d.forecast}
    assert _live_vs_backtest(d, load_history(d, DataConfig()), rtol=1e-12) > 0


def test_a_live_bar_forecasts_its_own_origin_only(catalog):
    """After the first bar, each bar forecasts one origin per symbol (not the history again)."""
    d = order_decider("maxdiff", SYMS, "1d", MARKET, only="naive")
    panel = load_history(d, DataConfig())
    d.decide_orders(panel.slice(0, ANCHOR))
    model = d._step.groups[0].model
    seen: list[int] = []
    real = model.predict_arrays

    def counting(x, *args, **kwargs):
        seen.append(len(x))
        return real(x, *args, **kwargs)

    model.predict_arrays = counting
    for t in range(ANCHOR, ANCHOR + 10):
        d.decide_orders(panel.slice(0, t + 1))
    assert seen == [len(SYMS)] * 10


def test_a_revised_bar_is_not_trusted(catalog):
    """A kept bar that changes (a backfill) drops what was computed from it: the decision is the
    backtest's on the revised bars."""
    flags = {"fit_window": 30, "refit_every": 50}
    d = order_decider("maxdiff", SYMS, "1d", MARKET, only="naive", order_flags=flags)
    panel = load_history(d, DataConfig())
    d.anchor = _ns(panel, ANCHOR)
    t = ANCHOR + 20
    for k in range(ANCHOR, t):
        d.decide_orders(panel.slice(0, k + 1))
    values = panel.values.copy()
    values[ANCHOR - 5, :, 1:4] *= 1.03  # a bar the anchor's fit read, and one the last forecasts' context holds
    values[t - 1, :, 1:4] *= 0.97
    revised = dataclasses.replace(panel, values=values)
    ref, _, _ = place_orders(d.spec, d.forecast, revised, MARKET, d.order_cfg, ANCHOR, t + 1)
    assert _equal(d.decide_orders(revised.slice(0, t + 1)), ref.at(t))
    stale, _, _ = place_orders(d.spec, d.forecast, panel, MARKET, d.order_cfg, ANCHOR, t + 1)
    assert not _equal(ref.at(t), stale.at(t))  # the revision matters


def test_bar_by_bar_replay_with_a_restart_equals_the_batch_replay(catalog, tmp_path):
    """``replay(batch=False)`` decides every bar with the live step; killed half-way (a new process: a
    new decider) it resumes on the re-fit schedule of the ledger's first decision. Equity and fills equal
    the batch replay (= ``mqc backtest --strategy --start``) exactly."""
    flags = {"fit_window": 30, "refit_every": 7}
    start, mid, end = "2015-06-01", "2015-07-10", "2015-08-18"

    def run(name: str, batch: bool, until: str = end):
        d = order_decider("maxdiff", SYMS, "1d", MARKET, only="naive", order_flags=flags)
        cfg = TradeConfig(capital=100_000.0)
        path = tmp_path / name / "ledger.db"
        session = open_session(cfg, d, path, open_broker(cfg, path, MARKET, decider=d))
        return session, replay(session, load_history(d, DataConfig()), start, until, batch=batch)

    s_batch, batch = run("batch", True)
    run("live", False, mid)
    s_live, live = run("live", False)
    assert len(live.equity) == len(batch.equity) > 60
    np.testing.assert_array_equal(live.equity, batch.equity)
    fills = [(f["client_order_id"], f["qty"], f["price"]) for f in s_live.ledger.events("fill")]
    assert fills == [(f["client_order_id"], f["qty"], f["price"]) for f in s_batch.ledger.events("fill")]
    fits = [e["data"]["inputs"]["fit"] for e in s_live.ledger.events("decision")]
    assert len({str(f["params"]) for f in fits}) > 1  # it did re-fit on the way
