"""Alpaca (REST v2) behind the Broker protocol, over plain HTTP with explicit timeouts.

Why not alpaca-py's client: it sets no timeout and retries POSTs on 429/504 by itself, which can
place an order twice. Here a request is sent once (``core/alpaca_http.py``, the one Alpaca HTTP client, shared with
``mqc data fetch --provider alpaca``); on a timeout, a 5xx or a 422 for a reused
client order id the order is looked up by that id (``GET /v2/orders:by_client_order_id``) and never
resubmitted under a new id. Keys come from the environment (``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``) or the OS keyring (service ``mqc-alpaca``); they are sent as headers only
and never logged, printed or stored. The paper endpoint is used unless ``live``.
"""

from __future__ import annotations

import math
from typing import Any

from mqc.core.alpaca_http import AlpacaHTTP
from mqc.core.alpaca_http import alpaca_keys as _keys
from mqc.core.errors import BrokerError
from mqc.core.trade.broker import Account, BarView, BrokerFill, Order, OrderState

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
_STATUS = {
    "new": "new",
    "accepted": "new",
    "pending_new": "new",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "canceled": "cancelled",
    "cancelled": "cancelled",
    "rejected": "rejected",
    "expired": "expired",
    "done_for_day": "expired",
}

# mqc order type -> (Alpaca type, time in force; None: from the order's own tif)
_TYPES = {
    "moc": ("market", "cls"),
    "moo": ("market", "opg"),
    "market": ("market", "day"),
    "limit": ("limit", None),
    "stop": ("stop", None),
}


class AlpacaBroker:
    """Alpaca REST adapter (see the module docstring). ``base_url`` is for tests (a local fake)."""

    name = "alpaca"

    def __init__(self, base_url: str, key: str, secret: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_label = "alpaca-live" if base_url == LIVE_URL else "alpaca-paper"
        self._http = AlpacaHTTP(base_url, key, secret, timeout_s=timeout_s)

    @property
    def timeout_s(self) -> float:
        """Seconds one request may take."""
        return self._http.timeout_s

    def __repr__(self) -> str:  # never show the keys
        return f"AlpacaBroker({self.base_url!r})"

    @classmethod
    def from_environment(
        cls, *, live: bool = False, timeout_s: float = 10.0, base_url: str | None = None
    ) -> AlpacaBroker:
        key, secret = _keys()
        return cls(base_url or (LIVE_URL if live else PAPER_URL), key, secret, timeout_s=timeout_s)

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._http.request(method, path, body)

    # -- Broker -----------------------------------------------------------------------------------
    def observe(self, bar: BarView) -> None:
        return None  # the broker marks its own book

    def account(self) -> Account:
        acct = self._request("GET", "/v2/account")
        pos = {p["symbol"]: float(p["qty"]) for p in self._request("GET", "/v2/positions")}
        return Account(cash=float(acct["cash"]), equity=float(acct["equity"]), positions=pos)

    def clock(self) -> dict[str, Any]:
        return self._request("GET", "/v2/clock")

    def unknown_symbols(self, symbols: list[str]) -> list[str]:
        bad = []
        for s in symbols:
            try:
                asset = self._request("GET", f"/v2/assets/{s}")
            except BrokerError as exc:
                if getattr(exc, "status", None) == 404:
                    bad.append(s)
                    continue
                raise
            if not asset.get("tradable", False):
                bad.append(s)
        return bad

    def _state(self, doc: dict[str, Any]) -> OrderState:
        """An order document as an ``OrderState``; its fill is Alpaca's running total (``filled_qty``
        at ``filled_avg_price``): the ledger records the part it has not seen (``cumulative``)."""
        qty = float(doc.get("filled_qty") or 0.0)
        fills: tuple[BrokerFill, ...] = ()
        if qty:
            sign = 1.0 if doc["side"] == "buy" else -1.0
            fills = (
                BrokerFill(
                    f"{doc['id']}-{doc['filled_qty']}",  # one id per running total the server reported
                    doc["client_order_id"],
                    doc["symbol"],
                    sign * qty,
                    float(doc.get("filled_avg_price") or 0.0),
                    cumulative=True,
                ),
            )
        return OrderState(doc["client_order_id"], _STATUS.get(doc["status"], doc["status"]), doc["id"], fills)

    def open_orders(self) -> list[OrderState]:
        """Every order open at Alpaca (``GET /v2/orders?status=open``), newest first."""
        return [self._state(d) for d in self._request("GET", "/v2/orders?status=open&limit=500&direction=desc")]

    def order(self, client_order_id: str) -> OrderState | None:
        try:
            doc = self._request("GET", f"/v2/orders:by_client_order_id?client_order_id={client_order_id}")
        except BrokerError as exc:
            if getattr(exc, "status", None) == 404:
                return None
            raise
        return self._state(doc)

    def submit(self, orders: list[Order]) -> list[OrderState]:
        return [self._submit_one(o) for o in orders]

    def _submit_one(self, o: Order) -> OrderState:
        if o.order_type not in _TYPES or o.side not in ("buy", "sell"):
            return OrderState(o.client_order_id, "rejected", reason=f"alpaca: no {o.order_type} {o.side} orders")
        kind, tif = _TYPES[o.order_type]
        body: dict[str, Any] = {
            "symbol": o.symbol,
            # Alpaca takes 9 decimals; rounded down, so an order never asks for more than the position
            "qty": f"{math.floor(o.qty * 1e9) / 1e9:.9f}",
            "side": o.side,
            "type": kind,
            # a one-bar order goes out as a day order; the loop cancels it when its bar ends unfilled
            "time_in_force": tif or ("gtc" if o.tif == "gtc" else "day"),
            "client_order_id": o.client_order_id,
        }
        if kind in ("limit", "stop"):
            if o.limit_price is None:
                return OrderState(o.client_order_id, "rejected", reason=f"alpaca: a {kind} order needs a price")
            body["limit_price" if kind == "limit" else "stop_price"] = f"{o.limit_price:.4f}"
        try:
            return self._state(self._request("POST", "/v2/orders", body))
        except BrokerError as exc:
            status = getattr(exc, "status", None)
            if status == 422 or exc.retryable:
                # maybe placed after all (timeout, 5xx) or placed before (422 reused id): look it up
                try:
                    found = self.order(o.client_order_id)
                except BrokerError:
                    found = None
                if found is not None:
                    return found
                if status == 422:
                    return OrderState(o.client_order_id, "rejected", reason=str(exc))
            if exc.retryable:
                raise
            return OrderState(o.client_order_id, "rejected", reason=str(exc))

    def cancel(self, client_order_id: str) -> OrderState | None:
        state = self.order(client_order_id)
        if state is None or state.status in ("filled", "cancelled", "rejected", "expired"):
            return state
        try:
            self._request("DELETE", f"/v2/orders/{state.broker_order_id}")
        except BrokerError as exc:
            if getattr(exc, "status", None) != 422:  # 422: filled or closed meanwhile (its state says which)
                raise
        return self.order(client_order_id)
