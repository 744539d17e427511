"""The ledger's guarantees: append-only events, unique client ids, fills once, refusal of bad files."""

from __future__ import annotations

import sqlite3

import pytest

from mqc.core.errors import LedgerError
from mqc.core.trade.broker import client_order_id
from mqc.core.trade.ledger import Ledger


def _intent(cid="mqc-a-1", bar="2024-01-02T00:00:00Z"):
    return {"client_order_id": cid, "bar": bar, "symbol": "A", "side": "buy", "qty": 2.0, "order_type": "moc"}


def test_pragmas_and_append_only(tmp_path):
    led = Ledger.open(tmp_path / "l.db")
    assert led.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert led.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    led.record("deposit", cash=100.0)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        led.conn.execute("UPDATE events SET cash = 1e9")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        led.conn.execute("DELETE FROM events")
    assert led.cash() == 100.0
    replay = Ledger.open(tmp_path / "r.db", durable=False).conn  # a replay: no fsync, still WAL (atomic commits)
    assert replay.execute("PRAGMA synchronous").fetchone()[0] == 0
    assert replay.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_client_order_id_is_unique_and_fills_count_once(tmp_path):
    led = Ledger.open(tmp_path / "l.db")
    with led.transaction() as c:
        led.add_intents(c, [_intent()])
    with pytest.raises(sqlite3.IntegrityError), led.transaction() as c:
        led.add_intents(c, [_intent()])
    assert len(led.orders()) == 1 and led.orders()[0].status == "pending"
    assert led.record_fill("mqc-a-1", "A", 2.0, 10.0, 0.1, "f1", None)
    assert not led.record_fill("mqc-a-1", "A", 2.0, 10.0, 0.1, "f1", None)  # reconciled twice: once
    assert led.positions() == {"A": 2.0}
    assert led.cash() == pytest.approx(-20.1)


def test_positions_and_cash_derive_from_events(tmp_path):
    led = Ledger.open(tmp_path / "l.db")
    led.record("deposit", cash=1000.0)
    led.record_fill("x", "A", 3.0, 10.0, 0.5, "f1", None)
    led.record_fill("y", "A", -1.0, 12.0, 0.5, "f2", None)
    led.record_fill("z", "B", -2.0, 5.0, 0.0, "f3", None)
    assert led.positions() == {"A": 2.0, "B": -2.0}
    assert led.cash() == pytest.approx(1000 - 30.5 + 11.5 + 10.0)


def test_corrupt_or_foreign_ledgers_are_refused(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 512)
    with pytest.raises(LedgerError, match="not a usable trading ledger"):
        Ledger.open(bad)
    with pytest.raises(LedgerError, match="no trading ledger"):
        Ledger.open(tmp_path / "missing.db", create=False)
    led = Ledger.open(tmp_path / "l.db")
    led.bind(broker="paper")
    with pytest.raises(LedgerError, match="for broker 'paper'"):
        led.bind(broker="alpaca")


def test_client_order_ids_are_deterministic_and_distinct():
    a = client_order_id("acct", "2024-01-02T00:00:00Z", "AAPL")
    assert a == client_order_id("acct", "2024-01-02T00:00:00Z", "AAPL")
    others = {
        client_order_id("acct", "2024-01-03T00:00:00Z", "AAPL"),
        client_order_id("acct", "2024-01-02T00:00:00Z", "MSFT"),
        client_order_id("acct", "2024-01-02T00:00:00Z", "AAPL", "flatten"),
        client_order_id("other", "2024-01-02T00:00:00Z", "AAPL"),
    }
    assert a not in others and len(others) == 4 and len(a) <= 48


def test_cash_is_summed_from_new_events_only_and_a_rollback_is_undone(tmp_path):
    led = Ledger.open(tmp_path / "l.db")
    led.record("deposit", cash=1000.0)
    led.record_fill("x", "A", 3.0, 10.0, 0.5, "f1", None)
    assert led.cash() == pytest.approx(969.5)
    with pytest.raises(RuntimeError), led.transaction() as c:
        led.record("cash", conn=c, cash=-500.0)
        assert led.cash() == pytest.approx(469.5)  # inside the transaction: its own event counts
        raise RuntimeError("rolled back")
    assert led.cash() == pytest.approx(969.5)
    led.record("cash", conn=None, cash=7.0)  # takes the rolled-back event's number again
    full = led.conn.execute("SELECT SUM(cash) FROM events").fetchone()[0]
    assert led.cash() == pytest.approx(full) == pytest.approx(976.5)
    assert Ledger.open(tmp_path / "l.db").cash() == pytest.approx(976.5)


def test_open_and_per_bar_order_lookups_read_an_index_not_the_table(tmp_path):
    """A replay's ledger grows by ~30 orders a bar; the loop asks for the open orders and a bar's orders
    every bar, so neither may read the whole table."""
    led = Ledger.open(tmp_path / "l.db")
    with led.transaction() as c:
        led.add_intents(c, [_intent(f"id-{i}", f"2024-01-{1 + i % 28:02d}T00:00:00Z") for i in range(50)])
    sql: list[str] = []
    led.conn.set_trace_callback(sql.append)
    assert len(led.orders(open_only=True)) == 50
    assert len(led.orders(bar="2024-01-02T00:00:00Z")) == 2
    led.conn.set_trace_callback(None)
    for q in sql:
        plan = " ".join(r[-1] for r in led.conn.execute("EXPLAIN QUERY PLAN " + q).fetchall())
        assert "INDEX" in plan and "SCAN orders" not in plan.replace("SCAN orders USING INDEX", ""), (q, plan)
