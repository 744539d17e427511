"""The trading loop: one bar = reconcile, decide, check risk, record the intent, send, record.

Every step is idempotent and keyed by the bar, so a loop killed at any point and restarted does
the rest of that bar and nothing twice:

1. ``bar_done`` in the ledger: the bar is finished, skip it.
2. the broker observes the bar (the paper broker marks its book); open orders of the ledger are
   looked up at the broker by client id: fills it missed are recorded (once: fill ids are unique),
   intents of an older bar that never reached the broker expire (never sent late).
3. the decision is made once: its targets, inputs and order intents are committed in one
   transaction *before* anything is sent; a restart re-sends the same intents under the same ids.
4. orders go to the broker (retries with backoff on an outage; after that the bar is skipped and
   the event recorded), acks and fills are recorded, then the bar's equity and ``bar_done``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.errors import BrokerError
from mqc.core.trade.broker import BarView, Broker, Order, OrderState, client_order_id
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import Decider
from mqc.core.trade.ledger import Ledger, fill_event, status_event
from mqc.core.trade.risk import check_orders, kill_reason


def _noop(_: str) -> None:
    return None


# Called at named points of a bar ("intent", "sent", "fill", "done"); tests replace it to kill the
# process there. Production code never sets it.
crash_point: Callable[[str], None] = _noop


def bar_label(ns: int) -> str:
    """The ledger's name of a bar: its UTC timestamp, ISO 8601 to the second."""
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")) + "Z"


@dataclass
class BarOutcome:
    bar: str
    status: str  # done, skipped (finished before), outage, stale, killed
    orders: int = 0
    rejected: int = 0
    equity: float = float("nan")
    message: str = ""


@dataclass
class TradeSession:
    """What one loop trades with. ``account``: the name in every client order id."""

    ledger: Ledger
    broker: Broker
    decider: Decider
    config: TradeConfig
    account: str
    sleep: Callable[[float], None] = time.sleep
    stats: dict[str, list[float]] = field(default_factory=lambda: {"decide_s": []})

    def client_id(self, bar: str, symbol: str, leg: str = "rebalance") -> str:
        return client_order_id(f"{self.account}|{self.decider.name}", bar, symbol, leg)


def _retry(session: TradeSession, what: str, call: Callable[[], Any]) -> Any:
    """``call()``, retried ``config.retries`` times with exponential backoff on a retryable BrokerError."""
    delay = 0.5
    for attempt in range(session.config.retries + 1):
        try:
            return call()
        except BrokerError as exc:
            if not exc.retryable or attempt == session.config.retries:
                raise
            session.ledger.record("broker_retry", data={"what": what, "attempt": attempt + 1, "error": str(exc)})
            session.sleep(delay)
            delay = min(delay * 2, 30.0)
    raise AssertionError("unreachable")  # pragma: no cover


def apply_state(ledger: Ledger, state: OrderState, bar: str | None, conn: Any = None) -> None:
    """Record what the broker says about an order: new fills (once each), then its status
    (in ``conn``'s transaction, else in one of its own)."""
    apply_states(ledger, [(state, bar)], conn)


def apply_states(
    ledger: Ledger, states: list[tuple[OrderState, str | None]], conn: Any = None, have: dict[str, str] | None = None
) -> None:
    """``apply_state`` for many ``(state, bar)`` in one transaction: events in the same order (each
    order's fills, then its status), written with one ``executemany``. ``have``: the ledger's status of
    each order, when the caller read it already."""
    if conn is None:
        with ledger.transaction() as c:
            return apply_states(ledger, states, c, have)
    have = dict(have) if have is not None else ledger.statuses([s.client_order_id for s, _ in states])
    events, changes = [], []
    done: dict[str, tuple[float, float]] = {}  # orders reporting running totals: (qty, notional) recorded so far
    for state, bar in states:
        for f in state.fills:
            qty, price = f.qty, f.price
            if f.cumulative:  # the order's running total: record the part not recorded yet
                got, notional = done.get(f.client_order_id) or ledger.filled(f.client_order_id)
                qty = f.qty - got
                if abs(qty) <= 1e-9 * max(1.0, abs(f.qty)):
                    continue
                price = (f.qty * f.price - notional) / qty
                done[f.client_order_id] = (f.qty, f.qty * f.price)
            events.append(fill_event(f.client_order_id, f.symbol, qty, price, f.fee, f.fill_id, bar))
        if have.get(state.client_order_id) != state.status:
            change = (state.client_order_id, state.status, state.broker_order_id, state.reason)
            changes.append(change)
            events.append(status_event(*change))
            have[state.client_order_id] = state.status
    ledger.set_statuses(conn, changes, events)
    return None


def _intent_fields(ledger: Ledger, rows: list[Any]) -> dict[str, dict[str, Any]]:
    """The order intents (tif, slot, ...) of ``rows``, by client id."""
    out: dict[str, dict[str, Any]] = {}
    for b in {r.bar for r in rows}:
        out.update({e["client_order_id"]: e["data"] for e in ledger.events("order_intent", bar=b)})
    return out


def reconcile(session: TradeSession, bar: str) -> dict[str, int]:
    """Bring the ledger's open orders up to date with the broker (see the module docstring), in one
    transaction (a crash before its commit leaves the ledger as it was; the next start does it again).

    At a real broker (no order book of mqc's own) an order good for one bar (tif ``bar``) that is
    still open after its bar is cancelled here, as the paper broker expires it."""
    rows = session.ledger.orders(open_only=True)
    own_book = session.broker.name == "paper"
    many = getattr(session.broker, "orders_by_id", None)  # one look-up for all (the paper broker)
    found: dict[str, Any] = {}
    if rows and many is not None:
        found = _retry(session, "lookup", lambda: many([r.client_order_id for r in rows]))
    elif rows:
        look = session.broker.order
        found = {r.client_order_id: _retry(session, "lookup", lambda r=r: look(r.client_order_id)) for r in rows}
    intents = {} if own_book or not rows else _intent_fields(session.ledger, rows)
    updates, expired = [], []
    for row in rows:
        state = found.get(row.client_order_id)
        tif = intents.get(row.client_order_id, {}).get("tif", "bar")
        if state is not None and state.status in ("new", "partially_filled") and not own_book:
            if tif == "bar" and row.bar != bar:  # its bar is over: unfilled, it ends here
                state = _retry(session, "cancel", lambda row=row: session.broker.cancel(row.client_order_id)) or state
        if state is not None:
            updates.append((state, row.bar))
        elif row.bar != bar:  # never reached the broker, and its bar is gone: never send it late
            expired.append((row.client_order_id, "expired", None, "not sent before its bar ended"))
    counts = {"updated": len(updates), "expired": len(expired)}
    if rows:
        with session.ledger.transaction() as c:
            apply_states(session.ledger, updates, c, {r.client_order_id: r.status for r in rows})
            session.ledger.set_statuses(c, expired)
            if any(counts.values()):
                session.ledger.record("reconcile", conn=c, bar=bar, data=counts)
    listing = getattr(session.broker, "open_orders", None)
    if listing is not None:  # a real broker: open mqc orders this ledger never made (another loop on the account?)
        known = {r.client_order_id for r in rows}
        for st in _retry(session, "open orders", listing):
            if st.client_order_id.startswith("mqc-") and st.client_order_id not in known:
                if session.ledger.status_of(st.client_order_id) is None:
                    session.ledger.record(
                        "foreign_order",
                        bar=bar,
                        client_order_id=st.client_order_id,
                        dedup=f"foreign:{st.client_order_id}",
                        data={"status": st.status, "note": "open at the broker, not in this ledger: left alone"},
                    )
    return counts


def _orders_for(
    session: TradeSession, bar: str, targets: np.ndarray, close: dict[str, float], stale: frozenset[str]
) -> list[Order]:
    acct = session.broker.account()
    orders = []
    for sym, w in zip(session.decider.symbols, targets, strict=True):
        if not np.isfinite(w) or sym in stale:
            continue
        held = acct.positions.get(sym, 0.0)
        if w == 0.0 and held == 0.0:
            continue  # flat and staying flat: nothing to send
        qty = (w * acct.equity - held * close[sym]) / close[sym]
        orders.append(
            Order(session.client_id(bar, sym), bar, sym, "buy" if qty >= 0 else "sell", abs(qty), "moc", float(w))
        )
    return orders


def _placed_orders(
    session: TradeSession, bar: str, history: Any, close: dict[str, float], equity: float
) -> list[Order]:
    """An order strategy's orders at this bar's close, one per used slot (leg ``slot<k>``)."""
    from mqc.core.trade.order_decide import order_list

    if getattr(session.decider, "anchor", 0) is None:  # re-fits counted from the strategy's first decided bar
        first = session.ledger.first_decision(session.decider.name) or bar
        session.decider.anchor = int(np.datetime64(first.rstrip("Z"), "ns").astype(np.int64))  # type: ignore[attr-defined]
    placed = session.decider.decide_orders(history)  # type: ignore[attr-defined]
    rows = order_list(placed, session.decider.symbols, close, equity)
    if session.broker.name != "paper":  # a real broker trades units: size weight orders from the positions now
        rows = _in_units(rows, session.broker.account().positions, close, equity)
    # orders are placed at a forward-filled bar too, as in the backtest: nothing fills on a bar without a real price
    return [Order(session.client_id(bar, r["symbol"], f"slot{r['slot']}"), bar, **r) for r in rows]


def _in_units(rows: list[dict], held: dict[str, float], close: dict[str, float], equity: float) -> list[dict]:
    """Weight-sized orders as the units that take each position to its target weight at the order's
    price (the limit / stop price, else the last close): a buy only buys, a sell only sells, ``either``
    trades whichever way. Orders that reduce a position share it: together they never close more
    than is held (a broker refuses shares held for another open order); an order with nothing left
    to trade is dropped."""
    free = dict(held)  # per symbol: the position not yet committed to an earlier order of this bar
    out = []
    for r in rows:
        w, sym = r["target_weight"], r["symbol"]
        if w is None:
            out.append(r)
            continue
        price = r["limit_price"] or close[sym]
        pos = held.get(sym, 0.0)
        delta = w * equity / price - pos
        side = r["side"] if r["side"] != "either" else ("buy" if delta > 0 else "sell")
        qty = max(delta, 0.0) if side == "buy" else max(-delta, 0.0)
        reduces = (side == "sell" and pos > 0) or (side == "buy" and pos < 0)
        if reduces:
            qty = min(qty, abs(free.get(sym, 0.0)))
            free[sym] = free.get(sym, 0.0) + (qty if side == "buy" else -qty)
        if qty > 1e-6:
            out.append({**r, "side": side, "qty": qty})
    return out


def trade_bar(
    session: TradeSession, history: Any, next_ts: int | None = None, *, now_ns: int | None = None
) -> BarOutcome:
    """Run one bar (the last of ``history``): see the module docstring.

    Args:
        history: Panel of the decider's symbols, bars <= t.
        next_ts: the next bar's expected timestamp (ns), for the overnight leverage cap.
        now_ns: the clock (default: the bar's own time, as in a replay); for the stale-data guard.
    """
    ledger, broker, cfg = session.ledger, session.broker, session.config
    ts = int(np.asarray(history.timestamps)[-1].astype("datetime64[ns]").astype(np.int64))
    bar = bar_label(ts)
    if ledger.has_event("bar_done", bar):
        done = ledger.events("decision", bar=bar)
        by = done[-1]["data"].get("strategy") if done else None
        other = by is not None and by != session.decider.name
        return BarOutcome(bar, "skipped", message=f"decided before by {by} (this ledger's account)" if other else "")
    kills = ledger.events("kill")
    if kills and kills[-1]["seq"] > max([e["seq"] for e in ledger.events("resume")], default=0):
        return BarOutcome(bar, "killed", message=kills[-1]["data"]["reason"])
    syms = session.decider.symbols
    close = {s: float(history.close[-1, a]) for a, s in enumerate(syms)}
    stale = frozenset(s for a, s in enumerate(syms) if bool(history.filled[-1, a]))
    classes = dict(zip(syms, history.asset_classes, strict=True))
    ohlcv = {s: tuple(float(v) for v in history.values[-1, a]) for a, s in enumerate(syms)}
    view = BarView(ts, next_ts, close, stale, classes, ohlcv)
    try:
        _retry(session, "observe", lambda: broker.observe(view))
        reconcile(session, bar)
        pre = _retry(session, "account", broker.account)
    except BrokerError as exc:
        ledger.record("outage", bar=bar, data={"error": str(exc), "retryable": exc.retryable})
        if not exc.retryable:
            raise
        return BarOutcome(bar, "outage", message=str(exc))
    mark = {"bar": bar, "dedup": f"mark:{bar}", "data": {"equity": pre.equity, "cash": pre.cash, "prices": close}}
    # the bar's mark goes with the bar's next write (the decision's transaction most bars): the kill
    # switches' answer is the same with or without it (its equity is never below itself; it is no
    # earlier day's), and a bar decided before has it already (``dedup``: not recorded twice)
    why = kill_reason(ledger, cfg, pre.equity, bar)
    if why:
        ledger.record("mark", **mark)
        flatten(session, history, reason=why)
        ledger.record("kill", bar=bar, data={"reason": why})
        return BarOutcome(bar, "killed", message=why)
    tf_ns = 0
    if now_ns is not None and len(history) > 1:  # a live clock (a replay's is the bar's own time)
        tf_ns = int(np.median(np.diff(np.asarray(history.timestamps).astype(np.int64))))
    if now_ns is not None and tf_ns and now_ns - ts > (cfg.stale_bars + 1) * tf_ns:
        ledger.record("mark", **mark)
        ledger.record("stale", bar=bar, data={"age_s": (now_ns - ts) / 1e9})
        return BarOutcome(
            bar,
            "stale",
            message=f"the last bar ({bar}) is too old to trade on: update the bars "
            "(mqc data fetch, or mqc trade --fetch yfinance|ccxt|alpaca) or trade history (--replay START:END)",
        )
    to_send: list[Order] | None = None
    if not ledger.has_event("decision", bar):
        t0 = time.perf_counter()
        placed = None
        if hasattr(session.decider, "decide_orders"):  # an order strategy: its orders, no target weights
            placed = _placed_orders(session, bar, history, close, pre.equity)
            targets = np.full(len(syms), np.nan)
            orders = placed
        else:
            targets = np.asarray(session.decider.decide(history), dtype=np.float64)
            orders = _orders_for(session, bar, targets, close, stale)
        session.stats["decide_s"].append(time.perf_counter() - t0)
        accepted, rejected = check_orders(orders, cfg, pre.equity, close)
        with ledger.transaction() as c:
            ledger.record("mark", conn=c, **mark)
            ledger.record(
                "decision",
                conn=c,
                bar=bar,
                dedup=f"decision:{bar}",
                data={
                    "strategy": session.decider.name,
                    "inputs": session.decider.inputs(),
                    "targets": dict(
                        zip(syms, [None if not np.isfinite(x) else float(x) for x in targets], strict=True)
                    ),
                    "prices": close,
                    # the placed orders by client id: each is an ``order_intent`` or a ``risk_reject`` event
                    **({"order_ids": [o.client_order_id for o in placed]} if placed is not None else {}),
                },
            )
            ledger.add_intents(c, [vars(o) for o in accepted])
            ledger.record_many(c, [_reject_event(bar, o, reason) for o, reason in rejected])
        crash_point("intent")
        to_send = accepted  # just committed, all pending (unless the bar holds other intents, below)
    else:
        ledger.record("mark", **mark)  # a restart: recorded with the decision before (then ignored)
    if to_send is None or ledger.count_orders(bar) != len(to_send):
        to_send = _pending(ledger, bar)  # a restart: the intents committed before the crash
    if to_send and broker.name != "paper":
        _replace_slots(session, to_send)
    if to_send:
        pending_ids = [o.client_order_id for o in to_send]  # all pending in the ledger (either branch above)
        try:
            states = _retry(session, "submit", lambda: broker.submit(to_send))
        except BrokerError as exc:
            ledger.record("outage", bar=bar, data={"error": str(exc), "retryable": exc.retryable})
            if exc.retryable:
                return BarOutcome(bar, "outage", message=str(exc))
            for o in to_send:
                ledger.set_status(o.client_order_id, "rejected", reason=str(exc))
            states = []
        crash_point("sent")
        with ledger.transaction() as c:  # the bar's acks and fills: all recorded, or none
            apply_states(ledger, [(s, bar) for s in states], c, dict.fromkeys(pending_ids, "pending"))
            if len(states) > 1:
                crash_point("fill")  # killed with the bar's fills written, not committed
    settle = getattr(broker, "settle", None)
    if settle is not None:
        settle()  # the paper broker's order book: equity after this bar's close auction
    post = broker.account()
    crash_point("done")
    with ledger.transaction() as c:
        _adjust_cash(ledger, post.cash, bar, c)
        ledger.record(
            "equity",
            conn=c,
            bar=bar,
            dedup=f"equity:{bar}",
            data={"pre": pre.equity, "post": post.equity, "prices": close},
        )
        ledger.record("bar_done", conn=c, bar=bar, dedup=f"done:{bar}")
    n_rej = ledger.count_events("risk_reject", bar)
    return BarOutcome(bar, "done", orders=ledger.count_orders(bar), rejected=n_rej, equity=post.equity)


def _replace_slots(session: TradeSession, to_send: list[Order]) -> None:
    """A new order in a (symbol, slot) replaces an older one resting there (a DAY / GTC order at a
    real broker): cancel it first, as the paper broker's book does."""
    ledger = session.ledger
    slots = {(o.symbol, o.slot) for o in to_send if o.order_type in ("limit", "stop", "moo", "moc")}
    older = [r for r in ledger.orders(open_only=True) if r.bar != to_send[0].bar and r.status != "pending"]
    intents = _intent_fields(ledger, older) if older and slots else {}
    for r in older:
        if (r.symbol, intents.get(r.client_order_id, {}).get("slot", 0)) in slots:
            state = _retry(session, "cancel", lambda r=r: session.broker.cancel(r.client_order_id))
            if state is not None:
                apply_state(ledger, state, r.bar)


def _reject_event(bar: str, o: Order, reason: str) -> tuple[str, dict[str, Any]]:
    fields = {"bar": bar, "client_order_id": o.client_order_id, "symbol": o.symbol, "qty": o.qty}
    return "risk_reject", {**fields, "data": {"reason": reason, "order": vars(o)}}


def _pending(ledger: Ledger, bar: str) -> list[Order]:
    """The bar's intents that never reached the broker, as they were recorded."""
    pending = [r for r in ledger.orders(bar=bar) if r.status == "pending"]
    intents = {e["client_order_id"]: e["data"] for e in ledger.events("order_intent", bar=bar)}
    return [
        Order(
            r.client_order_id,
            r.bar,
            r.symbol,
            r.side,
            r.qty,
            r.order_type,
            r.target_weight,
            r.limit_price,
            **{k: intents[r.client_order_id][k] for k in ("tif", "slot") if k in intents.get(r.client_order_id, {})},
        )
        for r in pending
    ]


def _adjust_cash(ledger: Ledger, broker_cash: float, bar: str, conn: Any) -> None:
    """Book the difference between the broker's cash and the ledger's (financing, interest) as an event."""
    diff = broker_cash - ledger.cash()
    if abs(diff) > 1e-9 * max(1.0, abs(broker_cash)):
        why = {"reason": "broker cash (financing, interest, rounding)"}
        ledger.record("cash", conn=conn, bar=bar, cash=diff, data=why)


def flatten(session: TradeSession, history: Any, *, reason: str = "flatten") -> list[OrderState]:
    """Send orders taking every position to 0 at the last bar of ``history`` (intents first)."""
    ts = int(np.asarray(history.timestamps)[-1].astype("datetime64[ns]").astype(np.int64))
    return flatten_account(session.ledger, session.broker, bar_label(ts), session.client_id, reason=reason)


def flatten_account(
    ledger: Ledger, broker: Broker, bar: str, client_id: Callable[..., str], *, reason: str = "flatten"
) -> list[OrderState]:
    """Orders (leg ``flatten``) closing every position the broker reports, recorded before they are sent."""
    acct = broker.account()
    known = {r.client_order_id for r in ledger.orders(bar=bar)}
    orders = [
        Order(client_id(bar, s, "flatten"), bar, s, "sell" if q > 0 else "buy", abs(q), "moc", 0.0)
        for s, q in sorted(acct.positions.items())
        if q
    ]
    orders = [o for o in orders if o.client_order_id not in known]
    if not orders:
        return []
    with ledger.transaction() as c:
        ledger.record("flatten", conn=c, bar=bar, data={"reason": reason})
        ledger.add_intents(c, [vars(o) for o in orders])
    states = broker.submit(orders)
    for s in states:
        apply_state(ledger, s, bar)
    return states
