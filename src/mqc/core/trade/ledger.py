"""The trading ledger: one SQLite file per trading account, crash-safe by construction.

- WAL journal, ``synchronous=FULL`` (a committed order or fill event survives a power cut), every
  write in ``BEGIN IMMEDIATE`` (one writer; no lost update between a read and its write).
- ``events`` is append-only (triggers refuse UPDATE and DELETE): decisions with their inputs, order
  intents, acks, fills, risk rejections, equity per bar, outages, starts and stops. Positions and
  cash are *derived* from it (the ``fill`` and ``cash`` events), never stored as a running number.
- ``orders`` holds one row per client order id (``UNIQUE``): its intent is committed before the
  order is sent, so a crash can never send an order the ledger does not know.
- Fills carry the broker's fill id in ``dedup`` (``UNIQUE``): reconciling twice records a fill once.
- A bar writes in a handful of transactions (reconcile; decision with its mark and intents; acks and fills;
  equity), each a batch (``executemany`` over one constant statement, which sqlite3 keeps prepared),
  not one transaction per order.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii
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
CREATE INDEX IF NOT EXISTS orders_bar ON orders(bar);
CREATE INDEX IF NOT EXISTS orders_open ON orders(status)
    WHERE status NOT IN ('filled', 'cancelled', 'rejected', 'expired');
"""
_EVENT_COLS = ("at", "bar", "kind", "client_order_id", "symbol", "qty", "price", "fee", "cash", "dedup", "data")
_INSERT_EVENT = f"INSERT OR IGNORE INTO events({','.join(_EVENT_COLS)}) VALUES({','.join('?' * len(_EVENT_COLS))})"
_SET_STATUS = (
    "UPDATE orders SET status=?, broker_order_id=COALESCE(?, broker_order_id), updated=? WHERE client_order_id=?"
)


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
        self._cash = (0, 0.0)  # (last event seq summed, sum of cash up to it): ``cash`` reads only newer events
        self._marks = _Marks()  # the ``mark`` events read so far, summed up (``marks_summary`` reads only newer ones)

    @classmethod
    def open(cls, path: str | Path, *, create: bool = True, durable: bool = True) -> Ledger:
        """Open (or create) the ledger at ``path``; refuse a file that is not a healthy mqc ledger.

        Raises:
            LedgerError: not an SQLite file, failed integrity check, other schema version.
            ArtifactNotFound-like LedgerError: missing and ``create`` is False.

        ``durable=False`` (replays: no real order) commits with ``synchronous=OFF``: every commit is
        still atomic and a killed process (SIGKILL) loses nothing it committed (WAL; the OS holds the
        writes), but an OS crash or a power cut during the replay may corrupt the file (``open``
        then refuses it, naming it): run the replay again.
        """
        p = Path(path)
        if not p.exists() and not create:
            raise LedgerError(f"no trading ledger at {p}", hint="start trading first: mqc trade --paper --once")
        p.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(p, isolation_level=None, timeout=30.0, cached_statements=256)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
            if not durable:  # fewer checkpoints (a page rewritten by many commits is copied once): WAL up to ~40 MB
                conn.execute("PRAGMA wal_autocheckpoint=10000")
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
            self.conn.execute("COMMIT")
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            self._cash = (0, 0.0)  # rolled-back event numbers are handed out again: sum afresh
            self._marks = _Marks()
            raise

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
        vals = _event_row(now_utc(), kind, fields)
        if conn is not None:
            return conn.execute(_INSERT_EVENT, vals).rowcount == 1
        with self.transaction() as c:
            return c.execute(_INSERT_EVENT, vals).rowcount == 1

    def record_many(self, conn: sqlite3.Connection, events: list[tuple[str, dict[str, Any]]]) -> None:
        """Append ``(kind, fields)`` events in order, in ``conn``'s transaction (one ``executemany``)."""
        if not events:
            return
        at = now_utc()
        conn.executemany(_INSERT_EVENT, [_event_row(at, kind, f) for kind, f in events])

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

    def count_events(self, kind: str, bar: str) -> int:
        """How many ``kind`` events ``bar`` has (through the ``events_kind_bar`` index)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM events WHERE kind=? AND bar=?", (kind, bar)).fetchone()[0])

    def first_decision(self, strategy: str) -> str | None:
        """The bar of ``strategy``'s first decision in this ledger (None: it decided nothing yet)."""
        row = self.conn.execute(
            "SELECT bar FROM events WHERE kind='decision' AND json_extract(data, '$.strategy')=? ORDER BY seq LIMIT 1",
            (strategy,),
        ).fetchone()
        return None if row is None else row[0]

    # -- orders -----------------------------------------------------------------------------------
    def add_intents(self, conn: sqlite3.Connection, orders: list[dict[str, Any]]) -> None:
        """Record orders as ``pending`` (inside the decision's transaction: before anything is sent)."""
        t = now_utc()
        conn.executemany(
            "INSERT INTO orders VALUES(?,?,?,?,?,?,?,?,'pending',NULL,?,?)",
            [
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
                )
                for o in orders
            ],
        )
        self.record_many(
            conn,
            [
                (
                    "order_intent",
                    {
                        "bar": o["bar"],
                        "client_order_id": o["client_order_id"],
                        "symbol": o["symbol"],
                        "qty": o["qty"],
                        "data": o,
                    },
                )
                for o in orders
            ],
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
        self.set_statuses(conn, [(cid, status, broker_order_id, reason)])
        return None

    def set_statuses(
        self,
        conn: sqlite3.Connection,
        changes: list[tuple[str, str, str | None, str]],
        events: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> None:
        """``set_status`` for many ``(client id, status, broker order id, reason)`` in ``conn``'s transaction.

        ``events``: what to append instead of the status events alone (e.g. fills, each order's
        before its status event, as ``loop.apply_states`` lists them)."""
        if changes:
            t = now_utc()
            conn.executemany(_SET_STATUS, [(status, boid, t, cid) for cid, status, boid, _ in changes])
        self.record_many(conn, [status_event(*ch) for ch in changes] if events is None else events)

    def statuses(self, cids: list[str]) -> dict[str, str]:
        """The status of each known client order id among ``cids`` (one query per 500 ids)."""
        out: dict[str, str] = {}
        for i in range(0, len(cids), 500):
            part = cids[i : i + 500]
            sql = f"SELECT client_order_id, status FROM orders WHERE client_order_id IN ({','.join('?' * len(part))})"
            out.update(self.conn.execute(sql, part).fetchall())
        return out

    def status_of(self, cid: str) -> str | None:
        row = self.conn.execute("SELECT status FROM orders WHERE client_order_id=?", (cid,)).fetchone()
        return None if row is None else row[0]

    def count_orders(self, bar: str) -> int:
        """How many orders ``bar`` has (through the ``orders_bar`` index, no row read)."""
        return int(self.conn.execute("SELECT COUNT(*) FROM orders WHERE bar=?", (bar,)).fetchone()[0])

    def orders(self, *, bar: str | None = None, open_only: bool = False) -> list[OrderRow]:
        # the open orders through the partial index ``orders_open`` (its literal condition), a bar's
        # through ``orders_bar``: neither reads the whole table, which grows by ~30 orders a bar
        index = "INDEXED BY orders_open" if open_only and bar is None else ""
        sql, args = (
            "SELECT client_order_id, bar, symbol, side, qty, target_weight, order_type, limit_price, status, "
            f"broker_order_id FROM orders {index} WHERE 1=1",
            [],
        )
        if bar is not None:
            sql, args = sql + " AND bar=?", [bar]
        if open_only:
            sql += " AND status NOT IN (" + ",".join(f"'{s}'" for s in FINAL) + ")"
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
        kind, fields = fill_event(cid, symbol, qty, price, fee, fill_id, bar)
        return self.record(kind, conn=conn, **fields)

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
        """Deposits, fills, fees and financing: the sum of every event's cash.

        The sum of the events up to the last one summed before is kept (events are append-only), so a
        bar reads only the events written since (a replay's ledger grows by ~100 events a bar)."""
        seq, total = self._cash
        row = self.conn.execute(
            "SELECT COALESCE(SUM(cash), 0.0), MAX(seq) FROM events WHERE seq > ? AND cash IS NOT NULL", (seq,)
        ).fetchone()
        if row[1] is None:
            return total
        total += float(row[0])
        self._cash = (int(row[1]), total)  # reset by a rollback in ``transaction`` (its events are undone)
        return total

    def marks_summary(self, day: str) -> tuple[float, float] | None:
        """Over the ``mark`` events (equity at each bar's close, before trading): the peak equity and
        ``day``'s start (the last mark, in ledger order, of an earlier day; else the first mark). None
        without marks. Reads only the marks written since the last call (a year of bars has 8,760)."""
        m = self._marks
        rows = self.conn.execute(
            "SELECT seq, bar, data FROM events WHERE kind='mark' AND seq > ? ORDER BY seq", (m.seq,)
        ).fetchall()
        for seq, bar, data in rows:
            equity = json.loads(data)["equity"]  # as written (SQLite's own number parsing may round otherwise)
            m.seq = seq
            m.first = equity if m.first is None else m.first
            m.peak = equity if m.peak is None else max(m.peak, equity)
            m.last[(bar or "")[:10]] = (seq, equity)
        if m.first is None:
            return None
        earlier = [v for d, v in m.last.items() if d < day]
        return float(m.peak), float(max(earlier)[1] if earlier else m.first)

    def last_prices(self) -> dict[str, float]:
        """Each symbol's last close the loop saw (from the latest ``equity`` event)."""
        ev = self.conn.execute("SELECT data FROM events WHERE kind='equity' ORDER BY seq DESC LIMIT 1").fetchone()
        return json.loads(ev[0]).get("prices", {}) if ev and ev[0] else {}

    def equity_curve(self) -> list[dict[str, Any]]:
        """One row per decided bar: ``bar``, ``pre`` (equity at the close, before trading), ``post``."""
        return [dict(e["data"], bar=e["bar"]) for e in self.events("equity")]


_JSON = json.JSONEncoder(default=str)  # one encoder (``json.dumps`` with ``default=`` builds one a call)
_FIELDS = frozenset(_EVENT_COLS[3:]) | {"bar"}  # what ``fields`` may name (``at`` and ``kind`` are given)


def _event_row(at: str, kind: str, fields: dict[str, Any]) -> tuple:
    """One ``events`` row (``_EVENT_COLS`` order) from a kind and its fields (``data`` JSON-encoded).

    Raises:
        KeyError: a field that is not an event column."""
    if not _FIELDS.issuperset(fields):
        raise KeyError(f"not an event column: {sorted(set(fields) - _FIELDS)}")
    g = fields.get
    data = g("data")
    if data is not None and not isinstance(data, _Encoded):
        data = _JSON.encode(data)
    return (
        at,
        g("bar"),
        kind,
        g("client_order_id"),
        g("symbol"),
        g("qty"),
        g("price"),
        g("fee"),
        g("cash"),
        g("dedup"),
        data,
    )


def fill_event(
    cid: str, symbol: str, qty: float, price: float, fee: float, fill_id: str, bar: str | None
) -> tuple[str, dict[str, Any]]:
    """The ``fill`` event of a broker fill (``record`` / ``record_many`` it)."""
    fields = {"bar": bar, "client_order_id": cid, "symbol": symbol, "qty": qty, "price": price, "fee": fee}
    return "fill", {**fields, "cash": -qty * price - fee, "dedup": f"fill:{fill_id}"}


@dataclass
class _Marks:
    seq: int = 0  # the last mark read
    first: float | None = None
    peak: float | None = None
    last: dict[str, tuple[int, float]] = field(default_factory=dict)  # day -> (seq, equity) of its last mark


class _Encoded(str):
    """An event's ``data`` already JSON-encoded (written as it is)."""


def _json_str(v: str | None) -> str:
    return "null" if v is None else encode_basestring_ascii(v)


def status_event(cid: str, status: str, broker_order_id: str | None, reason: str) -> tuple[str, dict[str, Any]]:
    """The ``order_<status>`` event of a status change (its data the JSON of ``{"broker_order_id", "reason"}``,
    composed directly: a bar writes ~60 of them)."""
    data = None
    if reason or broker_order_id:
        data = _Encoded(f'{{"broker_order_id": {_json_str(broker_order_id)}, "reason": {_json_str(reason)}}}')
    return f"order_{status}", {"client_order_id": cid, "data": data}
