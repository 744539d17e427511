"""The paper broker: a local simulated exchange that fills with the one market model.

Market-on-close orders of a bar are filled together at that bar's close by ``fills.step`` (the
same rules, costs from ``MarketConfig``, leverage caps and held-asset handling as ``mqc backtest``);
when the next bar closes the book is marked with ``step`` again (returns, costs, financing), so
its equity is, bar for bar, the backtest's ``cumprod(1 + net)`` times the starting capital.

Its state lives in its own SQLite file (a broker's memory survives the loop's crash, as a real
broker's does): orders by client order id (``UNIQUE``: an id is filled at most once), fills and the
book. A submit is one transaction, so a crash mid-fill leaves either all of a bar's fills or none.

An order strategy's broker (``order_symbols`` given) books every order instead with the order-level
fill model (``ORDER_FILL_MODELS``: ``fills.fill_orders``; limit, stop, market-on-open and -close
orders against the next bar's OHLC): see ``paper_orders``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core.errors import BrokerError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import step
from mqc.core.market.simulator import bar_years, fee_rates, overnight_mask
from mqc.core.trade.broker import Account, BarView, BrokerFill, Order, OrderState

# order type -> fill function for the paper broker. Only ``moc`` (the weight engine's close-to-close
# execution) exists here; the order-level model (limit / stop / market-on-open against the next
# bar's OHLC, issue 13) registers its function under those names.
ORDER_FILL_MODELS: dict[str, Callable[..., Any]] = {}


def _register_order_fills() -> None:
    """The order-level fill model (``fills.fill_orders``) for every order kind of an order strategy."""
    from mqc.core.market.fills import fill_orders
    from mqc.core.trade.paper_orders import KINDS

    for name in KINDS:
        ORDER_FILL_MODELS.setdefault(name, fill_orders)


_register_order_fills()

_SCHEMA = """
CREATE TABLE IF NOT EXISTS orders(client_order_id TEXT NOT NULL UNIQUE, broker_order_id TEXT NOT NULL,
    bar TEXT, symbol TEXT, side TEXT, qty REAL, target_weight REAL, order_type TEXT, status TEXT, reason TEXT);
CREATE TABLE IF NOT EXISTS fills(fill_id TEXT NOT NULL UNIQUE, client_order_id TEXT NOT NULL, symbol TEXT,
    qty REAL, price REAL, fee REAL);
CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fills_order ON fills(client_order_id);
"""


class PaperBroker:
    """Simulated broker (see the module docstring). ``path``: its state file."""

    name = "paper"

    def __init__(
        self,
        path: str | Path,
        market: MarketConfig,
        capital: float,
        *,
        durable: bool = True,
        order_symbols: tuple[str, ...] | None = None,
        fill_cfg: dict[str, Any] | None = None,
    ) -> None:
        self.path = Path(path)
        self.market = market
        self.order_symbols = order_symbols
        self.fill_cfg = fill_cfg or {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._cache: dict[str, Any] = {}  # decoded state values, valid while no other connection commits
        self._states: dict[str, OrderState] = {}  # order-level orders booked or changed lately, as the file has them
        self._version: int | None = None
        self._settled_ts: int | None = None  # the bar ``settle`` was called for (see there)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        if not durable:  # as a replay's ledger (``Ledger.open``): no fsync, fewer checkpoints
            self.conn.execute("PRAGMA wal_autocheckpoint=10000")
        self.conn.executescript(_SCHEMA)
        if self._get("capital") is None:
            self._put_many({"capital": capital, "wealth": 1.0, "book": {}, "bar": None, "close": {}, "trade": None})
        if order_symbols is not None:
            from mqc.core.trade.paper_orders import new_state

            ob = self._get("ob")
            if ob is None:
                self._put_many({"ob": new_state(order_symbols)})
            elif ob["syms"] != list(order_symbols):
                raise BrokerError(
                    f"{self.path}: this paper account trades {', '.join(ob['syms'])}, not {', '.join(order_symbols)}",
                    hint="use another --ledger for other symbols",
                )

    # -- state ------------------------------------------------------------------------------------
    def _get(self, key: str) -> Any:
        """A state value, decoded once: kept in memory until another connection commits to the file
        (``PRAGMA data_version``) or one of this broker's transactions fails (``_writing``)."""
        self._fresh()
        if key in self._cache:
            return self._cache[key]
        row = self.conn.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        value = None if row is None else json.loads(row[0])
        self._cache[key] = value
        return value

    def _put_many(self, values: dict[str, Any], conn: sqlite3.Connection | None = None) -> None:
        if conn is None:
            with self._writing() as c:
                return self._put_many(values, c)
        conn.executemany("INSERT OR REPLACE INTO state VALUES(?, ?)", [(k, json.dumps(v)) for k, v in values.items()])
        self._cache.update(values)
        return None

    def _fresh(self) -> None:
        """Forget what is kept in memory when another connection committed to the file since."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._version:
            self._forget()
            self._version = version

    def _forget(self) -> None:
        self._cache.clear()
        self._states.clear()

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT``; on any error rolled back, and the state kept in memory
        (which the block may have changed) is dropped: the next read is the file's."""
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
            c.execute("COMMIT")
        except BaseException:
            if c.in_transaction:
                c.execute("ROLLBACK")
            self._forget()
            raise

    def close(self) -> None:
        self.conn.close()

    # -- Broker -----------------------------------------------------------------------------------
    def unknown_symbols(self, symbols: list[str]) -> list[str]:
        return []  # the paper broker trades whatever the bars hold

    def observe(self, bar: BarView) -> None:
        """Mark the book from the last bar to ``bar`` (nothing when ``bar`` is not newer)."""
        if self.order_symbols is not None:
            return self._observe_orders(bar)
        last = self._get("bar")
        if last is not None and bar.timestamp <= last["ts"]:
            return
        updates: dict[str, Any] = {
            "bar": {
                "ts": bar.timestamp,
                "next": bar.next_timestamp,
                "stale": sorted(bar.stale),
                "classes": bar.asset_classes,
            },
            "close": bar.close,
            "trade": None,
        }
        if last is not None:
            book, trade, prev_close = self._get("book"), self._get("trade"), self._get("close")
            syms = list(trade["symbols"]) if trade else sorted(book)
            if syms:
                r = np.array([bar.close.get(s, prev_close[s]) / prev_close[s] - 1.0 for s in syms])
                classes = [last["classes"].get(s, "equity") for s in syms]
                stamps = np.array([last["ts"], bar.timestamp], dtype="datetime64[ns]")
                dt = bar_years(stamps)[0]
                b = np.array([book.get(s, 0.0) for s in syms])
                if trade:
                    targets = np.array([np.nan if t is None else t for t in trade["targets"]])
                    overnight = trade["overnight"]
                else:  # nothing traded at the last bar: every position is held and drifts
                    targets, overnight = np.full(len(syms), np.nan), bool(overnight_mask(stamps)[0])
                f = step(
                    b,
                    targets,
                    np.isnan(targets),
                    r,
                    fee_rates(classes, self.market),
                    dt,
                    overnight,
                    classes,
                    self.market,
                )
                updates["wealth"] = self._get("wealth") * (1.0 + float(f.net_return))
                updates["book"] = {s: float(w) for s, w in zip(syms, f.book, strict=True)}
        self._put_many(updates)

    def _bar_fill(self, targets: dict[str, float]) -> tuple[list[str], Any, Any, list[str]]:
        """The bar's fill at its close: (symbols, step result, fee rates, classes)."""
        bar, book = self._get("bar"), self._get("book")
        syms = sorted(set(book) | set(targets))
        classes = [bar["classes"].get(s, "equity") for s in syms]
        t = np.array([targets.get(s, np.nan) for s in syms])
        t[[s in bar["stale"] for s in syms]] = np.nan  # no real price at a forward-filled bar: held
        if bar["next"] is None:
            overnight = True
        else:
            overnight = bool(overnight_mask(np.array([bar["ts"], bar["next"]], dtype="datetime64[ns]"))[0])
        b = np.array([book.get(s, 0.0) for s in syms])
        fees = fee_rates(classes, self.market)
        # returns 0 and dt 0: the fill and its costs only (they do not depend on the next bar)
        f = step(b, t, np.isnan(t), np.zeros(len(syms)), fees, 0.0, overnight, classes, self.market)
        return syms, (f, t, b, overnight), fees, classes

    # -- order-level book (order strategies) ---------------------------------------------------------
    def _observe_orders(self, bar: BarView) -> None:
        from mqc.core.trade import paper_orders

        st, capital = self._get("ob"), self._get("capital")
        if st["ts"] is not None and bar.timestamp <= st["ts"]:
            return
        with self._writing() as c:  # ``observe`` changes ``st`` (the kept state): dropped if this fails
            fills, status = paper_orders.observe(st, bar, self.market, capital, self.fill_cfg)
            c.executemany(
                "INSERT OR IGNORE INTO fills VALUES(?,?,?,?,?,?)",
                [(f.fill_id, f.client_order_id, f.symbol, f.qty, f.price, f.fee) for f in fills],
            )
            c.executemany("UPDATE orders SET status=? WHERE client_order_id=?", [(s, cid) for cid, s in status.items()])
            self._put_many({"ob": st, "close": dict(zip(st["syms"], st["close"], strict=True))}, conn=c)
            self._keep_states(status, fills)

    def _keep_states(self, status: dict[str, str], fills: list[BrokerFill]) -> None:
        """The states of the orders ``observe`` changed, from the kept ones (an order not kept is read
        from the file when asked for); orders that had ended before are let go (read once by the loop)."""
        new: dict[str, list[BrokerFill]] = {}
        for f in fills:
            new.setdefault(f.client_order_id, []).append(f)
        kept = {cid: st for cid, st in self._states.items() if st.status in ("new", "partially_filled")}
        for cid, status_now in status.items():
            old = kept.pop(cid, None)
            if old is not None:
                kept[cid] = OrderState(cid, status_now, old.broker_order_id, old.fills + tuple(new.get(cid, ())))
        self._states = kept

    def settle(self) -> None:
        """The bar's orders are in: report equity after its close auction (order strategies).

        Kept in memory, not written: it changes no money, only which of the bar's two equities
        ``account`` reports, and the loop settles a bar again after a restart before it reads the
        equity after it (a restarted loop's equity before trading is then the uninterrupted run's)."""
        if self.order_symbols is not None:
            self._settled_ts = self._get("ob")["ts"]

    def _settled(self, st: dict[str, Any]) -> bool:
        """Whether the book's bar is settled (``st["settled"]``: a file an older mqc settled in the book)."""
        return st["ts"] is not None and (self._settled_ts == st["ts"] or bool(st.get("settled")))

    def _book_orders(self, orders: list[Order]) -> dict[str, OrderState]:
        """Rest an order strategy's orders until the next bar (one transaction)."""
        from mqc.core.trade import paper_orders

        st = self._get("ob")
        if st["ts"] is None:
            raise BrokerError("the paper broker has seen no bar yet")
        for o in orders:
            if ORDER_FILL_MODELS.get(o.order_type) is None:
                raise BrokerError(f"{o.order_type} orders: no fill model for them in the paper broker")
        out = {}
        with self._writing() as c:
            paper_orders.place(st, orders)
            first = self._count(c)
            rows = []
            for k, o in enumerate(orders):
                boid = f"paper-{first + k + 1}"
                rows.append((o.client_order_id, boid, o.bar, o.symbol, o.side, o.qty, o.target_weight, o.order_type))
                out[o.client_order_id] = OrderState(o.client_order_id, "new", boid)
            c.executemany("INSERT INTO orders VALUES(?,?,?,?,?,?,?,?,'new','')", rows)
            self._put_many({"ob": st}, conn=c)
        self._states.update(out)
        return out

    def submit(self, orders: list[Order]) -> list[OrderState]:
        """Fill the bar's market-on-close orders together (one transaction); known ids are not refilled.
        An order strategy's orders rest until the next bar (see ``paper_orders``)."""
        if self.order_symbols is not None:
            known = self.orders_by_id([o.client_order_id for o in orders])
            fresh = [o for o in orders if known[o.client_order_id] is None]
            booked = self._book_orders(fresh) if fresh else {}
            return [known[o.client_order_id] or booked[o.client_order_id] for o in orders]
        states: dict[str, OrderState] = {}
        new: list[Order] = []
        for o in orders:
            have = self.order(o.client_order_id)
            if have is not None:
                states[o.client_order_id] = have
            elif o.order_type != "moc":
                if o.order_type not in ORDER_FILL_MODELS:
                    raise BrokerError(
                        f"the paper broker fills {o.order_type} orders only with the order-level fill model, "
                        "which is not installed",
                        hint="trade market-on-close orders (a checkpoint's target weights)",
                    )
                raise BrokerError(
                    f"{o.order_type} orders: the order-level fill model is not wired into the paper broker yet"
                )
            else:
                new.append(o)
        if new:
            states.update(self._fill(new))
        return [states[o.client_order_id] for o in orders]

    def _fill(self, orders: list[Order]) -> dict[str, OrderState]:
        bar = self._get("bar")
        if bar is None:
            raise BrokerError("the paper broker has seen no bar yet")
        close = self._get("close")
        out: dict[str, OrderState] = {}
        with self._writing() as c:
            prev = self._get("trade")
            if prev is not None:
                # a second batch on the same bar (a flatten after the rebalance): fold the first
                # fill in, then fill again from the post-trade book (its weights of the equity left)
                post = prev["post"]
                book = {s: w / (1.0 + post) for s, w in zip(prev["symbols"], prev["executed"], strict=True)}
                self._put_many({"wealth": self._get("wealth") * (1.0 + post), "book": book, "trade": None}, conn=c)
            targets = {o.symbol: float(o.target_weight) for o in orders if o.target_weight is not None}
            syms, (f, t, b, overnight), fees, _ = self._bar_fill(targets)
            equity = self._get("capital") * self._get("wealth")
            first = self._count(c)
            for k, o in enumerate(orders):
                boid = f"paper-{first + k + 1}"
                if o.symbol not in close or o.target_weight is None:
                    reason = "no price for this symbol" if o.symbol not in close else "no target weight"
                    c.execute(
                        "INSERT INTO orders VALUES(?,?,?,?,?,?,?,?,?,?)",
                        (
                            o.client_order_id,
                            boid,
                            o.bar,
                            o.symbol,
                            o.side,
                            o.qty,
                            o.target_weight,
                            o.order_type,
                            "rejected",
                            reason,
                        ),
                    )
                    out[o.client_order_id] = OrderState(o.client_order_id, "rejected", boid, reason=reason)
                    continue
                a = syms.index(o.symbol)
                dw = float(f.weights[a] - b[a])
                qty = dw * equity / close[o.symbol]
                fill = BrokerFill(
                    f"{boid}-1", o.client_order_id, o.symbol, qty, close[o.symbol], abs(dw) * float(fees[a]) * equity
                )
                status = "filled" if not np.isnan(t[a]) else "expired"  # a stale bar holds the asset
                c.execute(
                    "INSERT INTO orders VALUES(?,?,?,?,?,?,?,?,?,?)",
                    (
                        o.client_order_id,
                        boid,
                        o.bar,
                        o.symbol,
                        o.side,
                        o.qty,
                        o.target_weight,
                        o.order_type,
                        status,
                        "",
                    ),
                )
                fills: tuple[BrokerFill, ...] = ()
                if status == "filled":
                    c.execute(
                        "INSERT INTO fills VALUES(?,?,?,?,?,?)",
                        (fill.fill_id, fill.client_order_id, fill.symbol, fill.qty, fill.price, fill.fee),
                    )
                    fills = (fill,)
                out[o.client_order_id] = OrderState(o.client_order_id, status, boid, fills)
            trade = {
                "symbols": syms,
                "targets": [None if np.isnan(x) else float(x) for x in t],
                "executed": [float(x) for x in f.weights],
                "overnight": overnight,
                "post": float(f.net_return),
            }
            self._put_many({"trade": trade}, conn=c)
        return out

    def _count(self, c: sqlite3.Connection) -> int:
        # orders are never deleted, so the last rowid is their count (COUNT(*) would read every row)
        return int(c.execute("SELECT COALESCE(MAX(rowid), 0) FROM orders").fetchone()[0])

    def orders_by_id(self, client_order_ids: list[str]) -> dict[str, OrderState | None]:
        """``order`` for many client ids at once (two queries per 500 ids)."""
        self._fresh()
        kept = self._states
        out: dict[str, OrderState | None] = {cid: kept.get(cid) for cid in client_order_ids}
        ask = [cid for cid, st in out.items() if st is None]  # the rest from the file
        for i in range(0, len(ask), 500):
            part = ask[i : i + 500]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                "SELECT client_order_id, broker_order_id, status, reason FROM orders "
                f"WHERE client_order_id IN ({marks})",
                part,
            ).fetchall()
            fills: dict[str, list[BrokerFill]] = {}
            if not rows:  # none known (a bar's new orders before they are booked): no fills either
                continue
            for r in self.conn.execute(
                "SELECT fill_id, client_order_id, symbol, qty, price, fee FROM fills "
                f"WHERE client_order_id IN ({marks}) ORDER BY rowid",
                part,
            ).fetchall():
                fills.setdefault(r[1], []).append(BrokerFill(*r))
            for cid, boid, status, reason in rows:
                out[cid] = OrderState(cid, status, boid, tuple(fills.get(cid, ())), reason or "")
        return out

    def order(self, client_order_id: str) -> OrderState | None:
        row = self.conn.execute(
            "SELECT broker_order_id, status, reason FROM orders WHERE client_order_id=?", (client_order_id,)
        ).fetchone()
        if row is None:
            return None
        fills = tuple(
            BrokerFill(*r)
            for r in self.conn.execute(
                "SELECT fill_id, client_order_id, symbol, qty, price, fee FROM fills "
                "WHERE client_order_id=? ORDER BY rowid",
                (client_order_id,),
            ).fetchall()
        )
        return OrderState(client_order_id, row[1], row[0], fills, row[2] or "")

    def cancel(self, client_order_id: str) -> OrderState | None:
        """Market-on-close orders are filled on arrival: nothing open. An order strategy's resting
        order leaves the book and is ``cancelled``."""
        state = self.order(client_order_id)
        if self.order_symbols is None or state is None or state.status not in ("new", "partially_filled"):
            return state
        st = self._get("ob")
        with self._writing() as c:
            for key in ("slots", "pslots"):
                for slot, cid in list(st.get(key, {}).items()):
                    if cid == client_order_id:
                        a, k = map(int, slot.split(","))
                        book = st["resting" if key == "slots" else "placed"]
                        if book is not None:
                            book["kind"][a][k] = 0
                        del st[key][slot]
            c.execute("UPDATE orders SET status='cancelled' WHERE client_order_id=?", (client_order_id,))
            self._put_many({"ob": st}, conn=c)
        self._states.pop(client_order_id, None)
        return self.order(client_order_id)

    def account(self) -> Account:
        """Equity = capital x wealth (after this bar's fills); positions in shares from the fills."""
        if self.order_symbols is not None:
            from mqc.core.trade import paper_orders

            st, cap = self._get("ob"), self._get("capital")
            equity = paper_orders.equity(st, cap, self._settled(st))
            pos = {s: q * cap for s, q in zip(st["syms"], st["pos"], strict=True) if q != 0.0}
            close = dict(zip(st["syms"], st["close"] or [0.0] * len(st["syms"]), strict=True))
            return Account(cash=equity - sum(q * close[s] for s, q in pos.items()), equity=equity, positions=pos)
        wealth = self._get("wealth")
        trade = self._get("trade")
        if trade is not None:
            wealth = wealth * (1.0 + trade["post"])
        equity = self._get("capital") * wealth
        pos: dict[str, float] = {}
        for s, q in self.conn.execute("SELECT symbol, SUM(qty) FROM fills GROUP BY symbol").fetchall():
            if abs(q) > 1e-12:
                pos[s] = q
        close = self._get("close")
        cash = equity - sum(q * close.get(s, 0.0) for s, q in pos.items())
        return Account(cash=cash, equity=equity, positions=pos)
