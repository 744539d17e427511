"""What a bar writes: the decision references its orders (no second copy of them), the paper broker
keeps its state in memory without missing another connection's commit or keeping a failed write."""

from __future__ import annotations

import pytest

from mqc.core.data.config import DataConfig
from mqc.core.errors import BrokerError
from mqc.core.market.config import MarketConfig
from mqc.core.trade.broker import BarView
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.paper import PaperBroker
from mqc.core.trade.runner import load_history, open_broker, open_session, replay

SYMS = ("SYN0", "SYN1")


@pytest.fixture
def catalog(synth) -> None:
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=120, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")


@pytest.fixture
def session(catalog, tmp_path):
    return _replayed(tmp_path)


def _replayed(tmp_path, on_bar=None):
    market = MarketConfig(allow_short=True)
    decider = order_decider("maxdiff", SYMS, "1d", market, only="naive")
    cfg = TradeConfig(capital=100_000.0, price_band=0.01)  # some limit orders rejected: both kinds referenced
    path = tmp_path / "l" / "ledger.db"
    s = open_session(cfg, decider, path, open_broker(cfg, path, market, decider=decider, durable=False), durable=False)
    panel = load_history(decider, DataConfig())
    replay(s, panel, str(panel.timestamps[-30])[:10], None, on_bar=on_bar and (lambda out: on_bar(s, out)))
    return s


def test_a_decision_references_its_orders_by_client_id(session):
    """The decision lists its orders' client ids; each is an intent or a risk rejection with the details."""
    ledger = session.ledger
    intents = {e["client_order_id"]: e for e in ledger.events("order_intent")}
    rejects = {e["client_order_id"]: e for e in ledger.events("risk_reject")}
    assert intents and rejects
    n = 0
    for d in ledger.events("decision"):
        assert "orders" not in d["data"]  # no second copy of the orders
        for cid in d["data"]["order_ids"]:
            ev = intents.get(cid) or rejects[cid]
            assert ev["bar"] == d["bar"]
            n += 1
    assert n == len(intents) + len(rejects)
    assert all(e["data"]["client_order_id"] == cid for cid, e in intents.items())  # intents keep every field


def test_settle_writes_nothing(session):
    """Settling a bar changes which equity the broker reports, not its file (no book written again)."""
    broker = session.broker
    state = broker.conn.execute("SELECT key, value FROM state ORDER BY key").fetchall()
    broker.settle()
    assert broker.conn.execute("SELECT key, value FROM state ORDER BY key").fetchall() == state


def test_the_kept_state_follows_other_connections_and_drops_failed_writes(session):
    broker = session.broker
    before = broker.account()
    other = PaperBroker(broker.path, broker.market, 0.0, order_symbols=SYMS)  # another process on the file
    ob = other._get("ob")
    ob["cash"] += 0.5
    other._put_many({"ob": ob})
    assert broker.account().equity != before.equity  # another connection committed: read from the file
    seen = broker.account()
    with pytest.raises(BrokerError, match="no OHLCV"):  # fails after the state was changed in memory
        broker.observe(BarView(ob["ts"] + 1, None, {}, frozenset(), {}, {}))
    assert broker._get("ob")["ts"] == ob["ts"] and broker.account() == seen
    other.close()


def test_the_order_states_kept_in_memory_are_the_files(catalog, tmp_path):
    """Every bar, what the paper broker answers for the ledger's orders from memory equals what a
    broker opened afresh on its file reads (status, broker id, every fill in order)."""
    seen = []

    def check(s, out):
        cids = [r[0] for r in s.ledger.conn.execute("SELECT client_order_id FROM orders").fetchall()]
        kept = [cid for cid in cids if cid in s.broker._states]
        ours = s.broker.orders_by_id(cids)  # before another connection opens the file
        fresh = PaperBroker(s.broker.path, s.broker.market, 0.0, order_symbols=SYMS)
        assert ours == fresh.orders_by_id(cids)
        fresh.close()
        seen.append(len(kept))

    _replayed(tmp_path, on_bar=check)
    assert sum(seen) > 0  # states were answered from memory


def test_a_book_settled_by_an_older_mqc_still_reports_the_settled_equity(session):
    """A paper broker file written before ``settled`` was a key kept the flag in the book: still read."""
    broker = session.broker
    broker.settle()
    settled = broker.account()
    ob = broker._get("ob")
    older = PaperBroker(broker.path, broker.market, 0.0, order_symbols=SYMS)
    older._put_many({"ob": {**ob, "settled": True}})
    assert PaperBroker(broker.path, broker.market, 0.0, order_symbols=SYMS).account() == settled


def test_a_bar_commits_four_times_to_the_ledger_and_twice_to_the_paper_broker(catalog, tmp_path):
    """Reconcile; mark, decision and intents; acks and fills; equity and bar_done. At the paper broker:
    the bar's fills, then its booked orders (the settle writes nothing)."""
    begins = {"ledger": 0, "broker": 0}

    def count(s, out):
        if not begins["ledger"] and not begins["broker"]:  # from the second bar on: every bar's writes
            s.ledger.conn.set_trace_callback(lambda q: q == "BEGIN IMMEDIATE" and _add(begins, "ledger"))
            s.broker.conn.set_trace_callback(lambda q: q == "BEGIN IMMEDIATE" and _add(begins, "broker"))
        seen.append(out.status)

    seen: list[str] = []
    _replayed(tmp_path, on_bar=count)
    bars = len(seen) - 1
    assert bars > 10 and set(seen) == {"done"}
    assert begins == {"ledger": 4 * bars, "broker": 2 * bars}


def _add(counts: dict[str, int], key: str) -> None:
    counts[key] += 1
