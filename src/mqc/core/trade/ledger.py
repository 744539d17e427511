"""The trading ledger: one SQLite file per trading account, crash-safe by construction.

- WAL journal, ``synchronous=FULL`` (a committed order or fill event survives a power cut), every
  write in ``BEGIN IMMEDIATE`` (one writer; no lost update between a read and its write).
- ``events`` is append-only (triggers refuse UPDATE and DELETE): decisions with their inputs, order
  intents, acks, fills, risk rejections, equity per bar, outages, starts and stops. Positions and
  cash are *derived* from it (the ``fill`` and ``cash`` events), never stored as a running number.
- ``orders`` holds one row per client order id (``UNIQUE``): its intent is committed before the
  order is sent, so a crash can never send an order the ledger does not know.
- Fills carry the broker's fill id in ``dedup`` (``UNIQUE``): reconciling twice records a fill once.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mqc.core.errors import LedgerError

SCHEMA_VERSION = 1
FINAL = ("filled", "cancelled", "rejected", "expired")  # order states that change no more

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events(
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    bar TEXT,
    kind TEXT NOT NULL,
    client_order_id TEXT,
    symbol TEXT,
    qty REAL,
    price REAL,
    fee REAL,
    cash REAL,
    dedup TEXT UNIQUE,
    data TEXT
);
CREATE INDEX IF NOT EXISTS events_kind_bar ON events(kind, bar);
CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
CREATE TABLE IF NOT EXISTS orders(
    client_order_id TEXT NOT NULL UNIQUE,
    bar TEXT NOT NULL,
    symbol TEXT NOT NULL,
    side TEXT NOT NULL,
    qty REAL NOT NULL,
    target_weight REAL,
    order_type TEXT NOT NULL,
    limit_price REAL,
    status TEXT NOT NULL,
    broker_order_id TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
"""


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class OrderRow:
    """One order as the ledger knows it."""

    client_order_id: str
    bar: str
    symbol: str
    side: str
    qty: float
    target_weight: float | None
    order_type: str
    limit_price: float | None
    status: str
    broker_order_id: str | None


class Ledger:
    """An open ledger file (see the module docstring). Use ``Ledger.open``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, durable: bool = True) -> Ledger:
        """Open (or create) the ledger at ``path``; refuse a file that is not a healthy mqc ledger.

        Raises:
            LedgerError: not an SQLite file, failed integrity check, other schema version.
            ArtifactNotFound-like LedgerError: missing and ``create`` is False.

        ``durable=False`` (replays: no real order) commits with ``synchronous=NORMAL``: still atomic
        and intact after a killed process (WAL), but the last commits may be lost on a power cut.
        """
        p = Path(path)
        if not p.exists() and not create:
            raise LedgerError(f"no trading ledger at {p}", hint="start trading first: mqc trade --paper --once")
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(p, isolation_level=None, timeout=30.0)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            ok = conn.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(ok)
            conn.executescript(_SCHEMA)
            version = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(
                f"{p}: not a usable trading ledger ({exc}); refusing to trade on it",
                hint=f"move {p} aside (it is the record of past orders) and restore it from a backup",
            ) from exc
        ledger = cls(p, conn)
        if version is None:
            with ledger.transaction():
                conn.execute("INSERT OR IGNORE INTO meta VALUES('schema', ?)", (str(SCHEMA_VERSION),))
                conn.execute("INSERT OR IGNORE INTO meta VALUES('created', ?)", (now_utc(),))
        elif version[0] != str(SCHEMA_VERSION):
            raise LedgerError(f"{p}: ledger schema {version[0]}, this mqc reads {SCHEMA_VERSION}")
        return ledger

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rolled back on any error)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # -- meta -------------------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def bind(self, **values: str) -> None:
        """Store ``values`` on first use; refuse a ledger bound to other values (another broker/account).

        Raises:
            LedgerError: the ledger was created for something else.
        """
        with self.transaction() as c:
            for key, value in values.items():
                have = self.meta(key)
                if have is None:
                    c.execute("INSERT INTO meta VALUES(?, ?)", (key, value))
                elif have != value:
                    raise LedgerError(
                        f"{self.path}: this ledger is for {key} {have!r}, not {value!r}",
                        hint="pass another --ledger (one ledger per account and strategy)",
                    )

    # -- events -----------------------------------------------------------------------------------
    def record(self, kind: str, *, conn: sqlite3.Connection | None = None, **fields: Any) -> bool:
        """Append one event; inside ``transaction()`` pass its ``conn``. Returns False when an event
        with the same ``dedup`` key exists already (a fill recorded before)."""
        data = fields.pop("data", None)
        cols = ["at", "kind", *fields, "data"]
        vals = [now_utc(), kind, *fields.values(), None if data is None else json.dumps(data, default=str)]
        sql = f"INSERT OR IGNORE INTO events({','.join(cols)}) VALUES({','.join('?' * len(cols))})"
        if conn is not None:
            return conn.execute(sql, vals).rowcount == 1
        with self.transaction() as c:
            return c.execute(sql, vals).rowcount == 1

    def events(self, kind: str | None = None, bar: str | None = None) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM events WHERE 1=1", []
        if kind is not None:
            sql, args = sql + " AND kind=?", [*args, kind]
        if bar is not None:
            sql, args = sql + " AND bar=?", [*args, bar]
        cur = self.conn.execute(sql + " ORDER BY seq", args)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            ev = dict(zip(names, row, strict=True))
            ev["data"] = json.loads(ev["data"]) if ev["data"] else None
            out.append(ev)
        return out

    def has_event(self, kind: str, bar: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM events WHERE kind=? AND bar=? LIMIT 1", (kind, bar)).fetchone() is not None
        )

    # -- orders -----------------------------------------------------------------------------------
    def add_intents(self, conn: sqlite3.Connection, orders: list[dict[str, Any]]) -> None:
        """Record orders as ``pending`` (inside the decision's transaction: before anything is sent)."""
        t = now_utc()
        for o in orders:
            conn.execute(
                "INSERT INTO orders VALUES(?,?,?,?,?,?,?,?,'pending',NULL,?,?)",
                (
                    o["client_order_id"],
                    o["bar"],
                    o["symbol"],
                    o["side"],
                    o["qty"],
                    o.get("target_weight"),
                    o["order_type"],
                    o.get("limit_price"),
                    t,
                    t,
                ),
            )
            self.record(
                "order_intent",
                conn=conn,
                bar=o["bar"],
                client_order_id=o["client_order_id"],
                symbol=o["symbol"],
                qty=o["qty"],
                data=o,
            )

    def set_status(
        self,
        cid: str,
        status: str,
        broker_order_id: str | None = None,
        *,
        reason: str = "",
        conn: sqlite3.Connection | None = None,
    ) -> None:
        """Move an order to ``status`` and record it as an event (in ``conn``'s transaction, else its own)."""
        if conn is None:
            with self.transaction() as c:
                return self.set_status(cid, status, broker_order_id, reason=reason, conn=c)
        conn.execute(
            "UPDATE orders SET status=?, broker_order_id=COALESCE(?, broker_order_id), updated=? "
            "WHERE client_order_id=?",
            (status, broker_order_id, now_utc(), cid),
        )
        data = {"broker_order_id": broker_order_id, "reason": reason} if reason or broker_order_id else None
        self.record(f"order_{status}", conn=conn, client_order_id=cid, data=data)
        return None

    def status_of(self, cid: str) -> str | None:
        row = self.conn.execute("SELECT status FROM orders WHERE client_order_id=?", (cid,)).fetchone()
        return None if row is None else row[0]

    def orders(self, *, bar: str | None = None, open_only: bool = False) -> list[OrderRow]:
        sql, args = (
            "SELECT client_order_id, bar, symbol, side, qty, target_weight, order_type, limit_price, status, "
            "broker_order_id FROM orders WHERE 1=1",
            [],
        )
        if bar is not None:
            sql, args = sql + " AND bar=?", [bar]
        if open_only:
            sql += f" AND status NOT IN ({','.join('?' * len(FINAL))})"
            args = [*args, *FINAL]
        return [OrderRow(*r) for r in self.conn.execute(sql + " ORDER BY rowid", args).fetchall()]

    def record_fill(
        self,
        cid: str,
        symbol: str,
        qty: float,
        price: float,
        fee: float,
        fill_id: str,
        bar: str | None,
        conn: sqlite3.Connection | None = None,
    ) -> bool:
        """A fill (signed ``qty``) and its cash (``-qty*price - fee``), once per broker fill id."""
        return self.record(
            "fill",
            conn=conn,
            bar=bar,
            client_order_id=cid,
            symbol=symbol,
            qty=qty,
            price=price,
            fee=fee,
            cash=-qty * price - fee,
            dedup=f"fill:{fill_id}",
        )

    # -- derived state ----------------------------------------------------------------------------
    def positions(self) -> dict[str, float]:
        """Shares per symbol: the sum of the fills (zero positions left out)."""
        rows = self.conn.execute(
            "SELECT symbol, SUM(qty) FROM events WHERE kind='fill' GROUP BY symbol ORDER BY symbol"
        )
        return {s: q for s, q in rows.fetchall() if abs(q) > 1e-12}

    def filled(self, cid: str) -> tuple[float, float]:
        """The recorded fills of one order: signed quantity and signed notional (sum of qty x price)."""
        row = self.conn.execute(
            "SELECT COALESCE(SUM(qty), 0.0), COALESCE(SUM(qty * price), 0.0) FROM events "
            "WHERE kind='fill' AND client_order_id=?",
            (cid,),
        ).fetchone()
        return float(row[0]), float(row[1])

    def cash(self) -> float:
        """Deposits, fills, fees and financing: the sum of every event's cash."""
        row = self.conn.execute("SELECT COALESCE(SUM(cash), 0.0) FROM events WHERE cash IS NOT NULL").fetchone()
        return float(row[0])

    def last_prices(self) -> dict[str, float]:
        """Each symbol's last close the loop saw (from the latest ``equity`` event)."""
        ev = self.conn.execute("SELECT data FROM events WHERE kind='equity' ORDER BY seq DESC LIMIT 1").fetchone()
        return json.loads(ev[0]).get("prices", {}) if ev and ev[0] else {}

    def equity_curve(self) -> list[dict[str, Any]]:
        """One row per decided bar: ``bar``, ``pre`` (equity at the close, before trading), ``post``."""
        return [dict(e["data"], bar=e["bar"]) for e in self.events("equity")]
