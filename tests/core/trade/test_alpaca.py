"""The Alpaca adapter against a fake Alpaca on 127.0.0.1 (started and stopped here): orders by
client id, 422 on a reused id, 429 / 5xx / timeouts, lookups instead of resubmits, keys never shown."""

from __future__ import annotations

import pytest
from fake_alpaca import FakeAlpaca

from mqc.core.errors import BrokerError
from mqc.core.trade.alpaca import AlpacaBroker
from mqc.core.trade.broker import Order


@pytest.fixture
def fake():
    with FakeAlpaca() as f:
        yield f


def _broker(fake, monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "KEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "SECRET")
    return AlpacaBroker.from_environment(base_url=fake.url, timeout_s=0.3)


def _order(cid="mqc-aapl-1"):
    return Order(cid, "2024-01-02T00:00:00Z", "AAPL", "buy", 2.0, "moc", 0.5)


def test_account_positions_assets(fake, monkeypatch):
    b = _broker(fake, monkeypatch)
    acct = b.account()
    assert (acct.cash, acct.equity, acct.positions) == (1000.0, 1500.0, {"AAPL": 3.0})
    assert b.unknown_symbols(["AAPL", "NOPE"]) == ["NOPE"]
    assert b.clock()["is_open"] is True
    assert "SECRET" not in repr(b) and "KEY" not in repr(b)


def test_order_filled_and_reused_id_is_looked_up_not_placed_again(fake, monkeypatch):
    b = _broker(fake, monkeypatch)
    first = b.submit([_order()])[0]
    assert first.status == "filled" and first.fills[0].qty == 2.0
    again = b.submit([_order()])[0]  # 422 from the server: the existing order is returned
    assert again.broker_order_id == first.broker_order_id
    assert len(fake.orders) == 1


def test_timeout_after_the_order_was_placed_finds_it_by_client_id(fake, monkeypatch):
    b = _broker(fake, monkeypatch)
    fake.faults.append(("POST", "/v2/orders", "slow"))
    state = b.submit([_order("mqc-aapl-slow")])[0]
    assert state.status == "filled"
    assert fake.posts == 1 and len(fake.orders) == 1  # never resubmitted


def test_rate_limit_and_5xx_are_retryable_and_nothing_is_placed(fake, monkeypatch):
    b = _broker(fake, monkeypatch)
    for code in (429, 503):
        fake.faults.append(("POST", "/v2/orders", code))
        with pytest.raises(BrokerError) as err:
            b.submit([_order(f"mqc-aapl-{code}")])
        assert err.value.retryable
    assert fake.orders == {}


def test_missing_keys(monkeypatch):
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(BrokerError, match="no Alpaca keys"):
        AlpacaBroker.from_environment()


def test_server_down_is_a_retryable_outage(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", "KEY")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "SECRET")
    with FakeAlpaca() as f:
        url = f.url
    b = AlpacaBroker.from_environment(base_url=url, timeout_s=0.3)
    with pytest.raises(BrokerError) as err:
        b.account()
    assert err.value.retryable
