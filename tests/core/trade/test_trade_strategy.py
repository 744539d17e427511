"""``mqc trade --strategy``: the replay of an order strategy equals ``mqc backtest --strategy`` on the same bars."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.backtest.config import BacktestConfig, OrderBacktestConfig
from mqc.core.backtest.order_runner import run_order_backtest
from mqc.core.data.config import DataConfig
from mqc.core.errors import ConfigError
from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.config import MarketConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, replay

START, END = "2015-06-01", "2015-09-30"
SYMS = ("SYN0", "SYN1")


@pytest.fixture
def catalog(synth) -> None:
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=300, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")


def _replay(tmp_path, strategy="maxdiff", name="ledger", batch=True, **limits):
    market = MarketConfig(allow_short=True)
    decider = order_decider(strategy, SYMS, "1d", market, only="naive")
    cfg = TradeConfig(capital=250_000.0, **limits)
    path = tmp_path / name / "ledger.db"
    session = open_session(cfg, decider, path, open_broker(cfg, path, market, decider=decider))
    return session, replay(session, load_history(decider, DataConfig()), START, END, batch=batch)


@pytest.mark.parametrize("strategy", ["maxdiff", "maxdiff-always-on", "buy-hold"])
def test_replay_equals_the_order_backtest(catalog, tmp_path, strategy):
    report = run_order_backtest(
        strategy,
        ForecastConfig(model="naive"),
        DataConfig(symbols=SYMS, timeframe="1d"),
        BacktestConfig(split="all", start=START, end=END, bootstrap_samples=20, plots=False),
        # the numpy engine: the loop the paper broker runs bar by bar (the compiled kernel equals it to 1e-12,
        # summing cash over symbols in another order: tests/core/market/test_order_kernel.py)
        OrderBacktestConfig(strategy=strategy, engine="numpy"),
        MarketConfig(allow_short=True),
        write=False,
    )
    session, res = _replay(tmp_path, strategy)
    bt = report.result
    assert len(res.equity) == len(bt.timestamps) > 50
    np.testing.assert_array_equal(res.equity, 250_000.0 * bt.equity)  # equality, not closeness
    # the same fills: bar, symbol, units (of a 1.0 book) and price
    fills = session.ledger.events("fill")
    assert len(fills) == len(report.fills) > 0
    ours = sorted((f["symbol"], round(f["qty"] / 250_000.0, 12), f["price"]) for f in fills)
    theirs = sorted((r["symbol"], round(r["quantity"], 12), r["price"]) for r in report.fills)
    assert ours == theirs
    # every order the backtest placed in the segment (bar by bar) is an order intent of the loop
    placed = int(report.orders["fills"]["orders"])
    intents = session.ledger.events("order_intent")
    assert len(intents) >= placed > 0
    # positions and cash derived from the ledger's events agree with the broker's equity
    last = session.ledger.last_prices()
    value = session.ledger.cash() + sum(q * last[s] for s, q in session.ledger.positions().items())
    assert abs(value - res.equity[-1]) < 1e-6 * res.equity[-1]


def test_a_symbol_without_a_selection_record_names_the_command(catalog):
    with pytest.raises(ConfigError) as err:
        order_decider("maxdiff", SYMS, "1d", MarketConfig())
    assert "SYN0" in str(err.value) and "mqc forecast select" in err.value.hint and "--by pnl" in err.value.hint


def test_risk_limits_reject_strategy_orders_before_they_are_sent(catalog, tmp_path):
    """A limit price outside the band is recorded as rejected with its reason, never sent or filled."""
    session, res = _replay(tmp_path, price_band=0.001)
    rejects = session.ledger.events("risk_reject")
    assert rejects and all("price_band" in e["data"]["reason"] for e in rejects)
    rejected_ids = {e["client_order_id"] for e in rejects}
    assert not rejected_ids & {r.client_order_id for r in session.ledger.orders()}
    assert {e["data"]["order"]["order_type"] for e in rejects} == {"limit"}  # market orders have no price
    assert res.equity.size > 50
    assert not {f["client_order_id"] for f in session.ledger.events("fill")} & rejected_ids


def test_each_symbol_trades_the_model_selected_for_its_bar_size(catalog):
    """Without --only, hyperparams/best/<SYMBOL>.<tf>.json names each symbol's forecaster; a record
    for another bar size does not count."""
    from mqc.core.forecast import hyperparams as hp

    hp.save(hp.Hyperparams("SYN0", "ewma-vol", {"model": "ewma-vol", "timeframe": "1d"}), hp.BEST, None)
    hp.save(hp.Hyperparams("SYN1", "naive", {"model": "naive", "timeframe": "1d"}), hp.BEST, None)
    d = order_decider("maxdiff", SYMS, "1d", MarketConfig())
    assert d.models() == {"SYN0": "ewma-vol", "SYN1": "naive"}
    placed = d.decide_orders(load_history(d, DataConfig()))  # one live bar, each symbol on its own model
    assert placed.shape[0] == 2 and (placed.kind != 0).any()
    assert order_decider("maxdiff", SYMS, "1d", MarketConfig(), only="naive").models() == {
        "SYN0": "naive",
        "SYN1": "naive",
    }
    with pytest.raises(ConfigError, match="1h"):
        order_decider("maxdiff", SYMS, "1h", MarketConfig())


def test_open_orders_of_the_last_bar_rest_and_cancel(catalog, tmp_path):
    """The orders placed at the last replayed bar rest at the paper broker (they would fill on the
    next bar); cancelling one takes it off the book, and the next bar does not fill it."""
    session, _ = _replay(tmp_path)
    open_ = session.ledger.orders(open_only=True)
    assert open_ and {r.bar for r in open_} == {max(r.bar for r in session.ledger.orders())}
    state = session.broker.cancel(open_[0].client_order_id)
    assert state.status == "cancelled"
    book = session.broker._get("ob")
    assert open_[0].client_order_id not in book["pslots"].values()


@pytest.mark.parametrize("n_symbols", [1, 2])
def test_a_bar_commits_a_few_transactions_whatever_its_order_count(synth, tmp_path, n_symbols):
    """A bar's ledger writes are batched: reconcile, the bar's mark, the decision with its intents, the acks
    and fills, the equity. Five commits a bar with 3 orders or with 6 (not one or more per order)."""
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=300, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")
    market = MarketConfig(allow_short=True)
    decider = order_decider("maxdiff", SYMS[:n_symbols], "1d", market, only="naive")
    cfg = TradeConfig()
    path = tmp_path / "ledger.db"
    session = open_session(cfg, decider, path, open_broker(cfg, path, market, decider=decider))
    begins: list[str] = []
    session.ledger.conn.set_trace_callback(lambda q: begins.append(q) if q.startswith("BEGIN") else None)
    res = replay(session, load_history(decider, DataConfig()), "2015-06-01", "2015-06-30")
    orders_per_bar = len(session.ledger.orders()) / len(res.outcomes)
    assert orders_per_bar >= 2.5 * n_symbols  # maxdiff: an entry, an exit and a close order a symbol most bars
    assert len(begins) <= 5 * len(res.outcomes) + 1
