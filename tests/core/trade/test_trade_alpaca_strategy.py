"""``mqc trade --strategy maxdiff --only naive --broker alpaca`` against the fake Alpaca on 127.0.0.1:
limit orders with a time in force, client order ids per (run, bar, symbol, leg), unfilled one-bar
orders cancelled when their bar ends, fills read back from the orders' ``filled_qty`` /
``filled_avg_price``; the ledger's orders and fills are what the server did."""

from __future__ import annotations

import numpy as np
import pytest
from fake_alpaca import FakeAlpaca

from mqc.core.data.config import DataConfig
from mqc.core.market.config import MarketConfig
from mqc.core.trade import loop
from mqc.core.trade.alpaca import AlpacaBroker
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.loop import trade_bar
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.runner import load_history, open_session

SYMS = ("SYN0", "SYN1")
STATUS = {"accepted": "new", "new": "new", "canceled": "cancelled"}


@pytest.fixture
def catalog(synth) -> None:
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=200, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")


@pytest.fixture
def alpaca(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s3cr3t")
    with FakeAlpaca("PKTESTKEY", "s3cr3t", instant=False) as fake:
        yield fake, AlpacaBroker.from_environment(base_url=fake.url, timeout_s=0.3)


def _run(tmp_path, alpaca, bars=8, hooks=None, day_end=True):
    """Trade the last ``bars`` bars: the fake exchange trades bar t against the resting orders, then the
    loop runs bar t (reconcile, decide, send). ``hooks[i]`` runs before the loop's i-th bar.
    ``day_end=False``: Alpaca's day does not end with the bar (bars shorter than a day)."""
    fake, broker = alpaca
    decider = order_decider("maxdiff", SYMS, "1d", MarketConfig(), only="naive")
    cfg = TradeConfig(broker="alpaca", retries=1, price_band=0.5)
    session = open_session(cfg, decider, tmp_path / "ledger.db", broker)
    session.sleep = lambda s: None
    panel = load_history(decider, DataConfig())
    n = len(panel)
    for i, t in enumerate(range(n - bars, n)):
        for a, s in enumerate(SYMS):
            o, h, lo, c = (float(x) for x in panel.values[t, a, :4])
            fake.bar(s, o, h, lo, c, day_end=day_end)
        (hooks or {}).get(i, lambda: None)()
        out = trade_bar(session, panel.slice(0, t + 1))
        assert out.status in ("done", "outage"), out
    return session, fake


@pytest.mark.parametrize("day_end", [False, True])
def test_ledger_orders_and_fills_are_what_the_server_did(tmp_path, alpaca, catalog, day_end):
    """``day_end=False``: the loop cancels one-bar orders left unfilled; True: Alpaca expires them."""
    fake = alpaca[0]
    session, _ = _run(tmp_path, alpaca, hooks={3: lambda: setattr(fake, "partial", 0.4)}, day_end=day_end)
    ledger = session.ledger
    ours = {r.client_order_id: r for r in ledger.orders()}
    assert ours and set(ours) == set(fake.orders)  # every order went out once, under its id; nothing else
    assert not ledger.events("order_rejected")  # none refused (e.g. shares already held for another order)
    assert min(ledger.positions().values(), default=0.0) >= 0  # long-only: two exits never sold a share twice
    kinds = set()
    for cid, doc in fake.orders.items():
        r = ours[cid]
        kinds.add((doc["type"], doc["time_in_force"]))
        assert (doc["symbol"], doc["side"]) == (r.symbol, r.side)
        assert float(doc["qty"]) == pytest.approx(r.qty, abs=1e-6)
        if doc["type"] == "limit":
            assert float(doc["limit_price"]) == pytest.approx(r.limit_price, abs=1e-4)
        # the last bar's orders are still open; the rest ended as the server says
        assert r.status == STATUS.get(doc["status"], doc["status"]), (r, doc)
        got_qty, got_notional = ledger.filled(cid)
        filled = float(doc["filled_qty"]) * (1 if doc["side"] == "buy" else -1)
        assert got_qty == pytest.approx(filled, abs=1e-9)
        if filled:
            assert got_notional / got_qty == pytest.approx(float(doc["filled_avg_price"]), rel=1e-12)
    assert ("limit", "day") in kinds  # maxdiff's entries and exits: one-bar limit orders, sent as day orders
    # one-bar orders left unfilled at the end of their bar were cancelled by the loop (never left to rest)
    last_bar = max(r.bar for r in ours.values())
    assert all(d["status"] != "accepted" for c, d in fake.orders.items() if ours[c].bar != last_bar)
    ended = {d["status"] for c, d in fake.orders.items() if ours[c].bar != last_bar}
    assert ("canceled" in ended and "expired" not in ended) if not day_end else "expired" in ended
    # one fill in the ledger per execution at the server; the partly filled order kept its part only
    assert len(fake.executions) == len(ledger.events("fill")) > 0
    assert any(0 < abs(ledger.filled(c)[0]) < float(d["qty"]) - 1e-6 for c, d in fake.orders.items())
    # positions and cash: the ledger's equal the server's
    assert ledger.positions() == pytest.approx({s: q for s, q in fake.positions.items() if abs(q) > 1e-12})
    assert ledger.cash() == pytest.approx(fake.cash, rel=1e-12)


def test_weight_orders_in_units_share_the_position_they_close():
    """maxdiff's bar: an entry buy to 0.5, an exit limit sell to 0 and a close order to 0. Holding 10 shares,
    the exits together sell 10 (the limit takes them; the close order has none left); flat, they sell none."""
    from mqc.core.trade.loop import _in_units

    rows = [
        dict(symbol="A", side="buy", qty=0.0, order_type="limit", target_weight=0.5, limit_price=95.0, slot=0),
        dict(symbol="A", side="sell", qty=0.0, order_type="limit", target_weight=0.0, limit_price=105.0, slot=1),
        dict(symbol="A", side="either", qty=0.0, order_type="moc", target_weight=0.0, limit_price=None, slot=2),
    ]
    held = _in_units(rows, {"A": 10.0}, {"A": 100.0}, 10_000.0)
    assert [(r["slot"], r["side"], r["qty"]) for r in held] == [
        (0, "buy", pytest.approx(50 / 0.95 - 10)),
        (1, "sell", 10.0),
    ]
    flat = _in_units(rows, {}, {"A": 100.0}, 10_000.0)
    assert [(r["slot"], r["side"], r["qty"]) for r in flat] == [(0, "buy", pytest.approx(5000 / 95))]


def test_a_partial_fill_then_the_rest_are_two_fills(tmp_path, alpaca, catalog):
    """Alpaca reports an order's running total (filled_qty at filled_avg_price): the ledger records
    each increment once, at its own price, however often the order is looked up."""
    from mqc.core.trade.broker import Order
    from mqc.core.trade.ledger import Ledger
    from mqc.core.trade.loop import apply_state

    fake, broker = alpaca
    ledger = Ledger.open(tmp_path / "l.db")
    o = Order("mqc-syn0-gtc", "2015-01-02T00:00:00Z", "SYN0", "buy", 10.0, "limit", None, 50.0, tif="gtc")
    with ledger.transaction() as c:
        ledger.add_intents(c, [vars(o)])
    assert broker.submit([o])[0].status == "new"
    fake.partial = 0.25
    fake.bar("SYN0", 49.0, 51.0, 48.0, 50.5, day_end=False)  # 2.5 at 49
    for _ in range(2):
        apply_state(ledger, broker.order(o.client_order_id), o.bar)
    fake.bar("SYN0", 50.0, 52.0, 49.5, 51.0)  # the other 7.5 at 50 (a GTC order survives the day)
    for _ in range(2):
        apply_state(ledger, broker.order(o.client_order_id), o.bar)
    fills = ledger.events("fill")
    assert [(f["qty"], f["price"]) for f in fills] == [(2.5, 49.0), (pytest.approx(7.5), pytest.approx(50.0))]
    assert ledger.status_of(o.client_order_id) == "filled" and ledger.positions() == {"SYN0": 10.0}
    assert fake.orders[o.client_order_id]["time_in_force"] == "gtc"


def test_a_duplicate_id_and_a_timeout_are_looked_up_never_resent_under_a_new_id(tmp_path, alpaca, catalog):
    fake = alpaca[0]
    crashed = []

    def crash(point):  # the process dies after sending bar 3's orders, before their acks are recorded
        if point == "sent" and len(crashed) == 0 and fake.orders:
            crashed.append(point)
            raise RuntimeError("killed")

    fake.faults.append(("POST", "/v2/orders", "slow"))  # the first order times out (placed nonetheless)
    loop.crash_point = crash
    try:
        with pytest.raises(RuntimeError, match="killed"):
            _run(tmp_path, alpaca, bars=3)
    finally:
        loop.crash_point = loop._noop
    posts, placed = fake.posts, dict(fake.orders)
    assert placed
    # restart: the bar's intents are sent again under the same ids: 422 for each, looked up, recorded
    session, _ = _run(tmp_path, alpaca, bars=3)
    assert fake.posts > posts  # they were sent again...
    assert {c: d["id"] for c, d in fake.orders.items() if c in placed} == {c: d["id"] for c, d in placed.items()}
    ids = [d["client_order_id"] for d in fake.orders.values()]
    assert len(ids) == len(set(ids))  # ...and never placed twice, nor under a new id
    assert set(ids) == {r.client_order_id for r in session.ledger.orders()}
    assert not [r for r in session.ledger.orders() if r.status in ("pending", "rejected")]


def test_client_ids_are_per_run_bar_symbol_and_leg(tmp_path, alpaca, catalog):
    from mqc.core.trade.broker import Order

    fake, broker = alpaca  # an open mqc order of another ledger on the account: recorded, left alone
    broker.submit([Order("mqc-syn1-other", "2015-01-02T00:00:00Z", "SYN1", "buy", 1.0, "limit", None, 1.0, "gtc")])
    session, fake = _run(tmp_path, alpaca, bars=3)
    foreign = session.ledger.events("foreign_order")
    assert [e["client_order_id"] for e in foreign] == ["mqc-syn1-other"]
    assert fake.orders["mqc-syn1-other"]["status"] == "accepted"
    assert "mqc-syn1-other" not in {r.client_order_id for r in session.ledger.orders()}
    rows = session.ledger.orders()
    intents = {e["client_order_id"]: e["data"] for e in session.ledger.events("order_intent")}
    keys = {(r.bar, r.symbol, intents[r.client_order_id]["slot"]) for r in rows}
    assert len(keys) == len(rows)
    for r in rows:
        slot = intents[r.client_order_id]["slot"]
        assert r.client_order_id == session.client_id(r.bar, r.symbol, f"slot{slot}")
    assert all(len(c) <= 128 for c in fake.orders)
    assert {r.client_order_id for r in rows} == set(fake.orders) - {"mqc-syn1-other"}
    assert np.isfinite([r.qty for r in rows]).all() and min(r.qty for r in rows) > 0
