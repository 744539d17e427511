"""The loop on the Alpaca adapter (fake server on 127.0.0.1): same loop, other broker."""

from __future__ import annotations

import pytest
from fake_alpaca import FakeAlpaca

from mqc.core.data.config import DataConfig
from mqc.core.errors import DataError
from mqc.core.trade.alpaca import AlpacaBroker
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import checkpoint_decider
from mqc.core.trade.loop import trade_bar
from mqc.core.trade.runner import load_history, open_session


@pytest.fixture
def alpaca(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "PKTESTKEY7Q2")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s3cr3t-Xq9-never-on-disk")
    with FakeAlpaca("PKTESTKEY7Q2", "s3cr3t-Xq9-never-on-disk") as fake:
        yield fake, AlpacaBroker.from_environment(base_url=fake.url, timeout_s=0.3)


def test_orders_go_out_once_under_their_client_ids(tiny_run, tmp_path, alpaca):
    fake, broker = alpaca
    d = checkpoint_decider(tiny_run)
    cfg = TradeConfig(broker="alpaca", retries=1)
    session = open_session(cfg, d, tmp_path / "ledger.db", broker)
    session.sleep = lambda s: None
    panel = load_history(d, DataConfig())
    out = trade_bar(session, panel.slice(0, len(panel) - 1))
    assert out.status == "done"
    sent = {o.client_order_id for o in session.ledger.orders()}
    assert sent == set(fake.orders) and len(sent) == out.orders >= 1
    assert len(session.ledger.events("fill")) == len(sent)
    posts = fake.posts
    assert trade_bar(session, panel.slice(0, len(panel) - 1)).status == "skipped"
    assert fake.posts == posts
    # an outage on the next bar: retried, recorded, skipped; its intents expire instead of going out late
    fake.faults += [("POST", "/v2/orders", 503)] * 4
    out = trade_bar(session, panel)
    assert out.status == "outage" and session.ledger.events("outage")
    pending = [o for o in session.ledger.orders() if o.status == "pending"]
    assert pending
    fake.faults.clear()
    later = panel.slice(0, len(panel))
    later.timestamps[-1] += 86_400 * 10**9  # (a stand-in for the next bar)
    trade_bar(session, later)
    assert all(session.ledger.status_of(o.client_order_id) == "expired" for o in pending)
    assert not {o.client_order_id for o in pending} & set(fake.orders)
    for f in tmp_path.glob("ledger.db*"):  # the database and its WAL: keys never written
        assert b"s3cr3t-Xq9" not in f.read_bytes() and b"PKTESTKEY7Q2" not in f.read_bytes()


def test_a_symbol_the_broker_does_not_know(tiny_run, tmp_path, alpaca):
    fake, broker = alpaca
    fake.tradable = {"SYN0"}
    with pytest.raises(DataError, match="cannot trade SYN1"):
        open_session(TradeConfig(broker="alpaca"), checkpoint_decider(tiny_run), tmp_path / "l.db", broker)
    assert fake.orders == {}
