"""A fake Alpaca REST server on 127.0.0.1 for the adapter's tests (started and stopped by them).

Two modes. ``instant`` (default): every order fills at once at ``price`` and the account is fixed
(the adapter's error-path tests). ``instant=False``: an exchange as Alpaca's paper API behaves for
the order types mqc sends: orders are ``accepted`` and rest; ``bar(symbol, o, h, l, c)`` trades one
bar against them (``opg`` and ``day`` market orders at the open, limit and stop orders when the bar
reaches their price, ``cls`` at the close; ``partial`` fills part of the next fill first), and with
``day_end`` the unfilled ``day``/``opg``/``cls`` orders expire; cash and positions follow the fills.

Endpoints: ``GET /v2/account``, ``/v2/clock``, ``/v2/positions``, ``/v2/assets/{symbol}``,
``/v2/orders?status=open|closed|all&limit=N&symbols=A,B``, ``/v2/orders/{id}``,
``/v2/orders:by_client_order_id?client_order_id=``; ``POST /v2/orders`` (422 for a reused client
order id, a missing ``limit_price``/``stop_price``, a bad ``type``/``time_in_force``, qty <= 0;
403 for too little buying power); ``DELETE /v2/orders/{id}`` (204; 422 when it is no longer
cancelable; 404 unknown).

Market data (same server, as tests point the data URL at it): ``GET /v2/stocks/bars`` and
``/v1beta3/crypto/us/bars`` with ``symbols``, ``timeframe``, ``start``/``end`` (RFC 3339, inclusive),
``limit`` (1..10000, counted over all symbols), ``sort``, ``page_token``; stocks also ``adjustment``
and ``feed``. Answers ``{"bars": {symbol: [{t, o, h, l, c, v, n, vw}]}, "next_page_token": ...}``
in pages of at most ``page_size`` bars (the server may cut a page below ``limit``); a symbol it does
not know is absent from ``bars``; a malformed symbol or parameter is a 400/422. With ``now`` (a
clock in seconds) only bars started by then are served, the one still forming with partial values
(open, high, low, close all at its open, no volume): a bar is forming until ``t + bar size``, a
stock's day until its 16:00 New York close. Bars are set with ``fake.bars[symbol] = [alpaca_bar(...)]``.
"""

from __future__ import annotations

import base64
import calendar
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

OPEN = ("new", "accepted", "pending_new", "partially_filled")
TYPES = ("market", "limit", "stop", "stop_limit")
TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
BAR_SECONDS = {"1Min": 60, "5Min": 300, "15Min": 900, "30Min": 1800, "1Hour": 3600, "4Hour": 14_400, "1Day": 86_400}
STOCK_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
CRYPTO_SYMBOL = re.compile(r"^[A-Z0-9]{2,10}/[A-Z]{3,4}$")


def alpaca_bar(ts_s: float, o: float, h: float, lo: float, c: float, v: float) -> dict:
    """One bar as Alpaca writes it: ``t`` its start in UTC (RFC 3339, ``Z``), trade count, VWAP."""
    t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts_s))
    return {"t": t, "o": o, "h": h, "l": lo, "c": c, "v": v, "n": 17, "vw": round((h + lo + c) / 3, 6)}


def _epoch(text: str) -> float:
    return float(calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S")))


class FakeAlpaca:
    """The endpoints the adapter uses. ``faults``: queue of (method, path-prefix, action) where action
    is an HTTP code to answer, or "slow" (answer after the client's timeout, having placed the order)."""

    def __init__(self, key: str = "KEY", secret: str = "SECRET", *, instant: bool = True, cash: float = 100_000.0):
        self.key, self.secret = key, secret
        self.instant = instant
        self.orders: dict[str, dict] = {}  # client order id -> order document
        self.tradable = {"AAPL", "MSFT", "SYN0", "SYN1"}
        self.posts = 0
        self.faults: list[tuple[str, str, object]] = []
        self.cash = cash
        self.positions: dict[str, float] = {}
        self.last: dict[str, float] = {}
        self.partial: float | None = None  # fraction of the next fill, then None
        self.executions: list[dict] = []  # every fill the fake made: order id, qty (signed), price
        self.bars: dict[str, list[dict]] = {}  # market data: symbol -> bars (alpaca_bar), ascending
        self.page_size = 10_000
        self.now: float | None = None  # the data clock (seconds); None: every bar is closed
        self.data_requests: list[dict] = []  # the query of each bars request (no headers)
        self.lock = threading.RLock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code, doc=None):
                body = b"" if doc is None else json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, method):
                for i, (m, p, action) in enumerate(fake.faults):
                    if m == method and self.path.startswith(p):
                        fake.faults.pop(i)
                        return action
                return None

            def _auth(self):
                if (
                    self.headers.get("APCA-API-KEY-ID") != fake.key
                    or self.headers.get("APCA-API-SECRET-KEY") != fake.secret
                ):
                    self._send(401, {"message": "unauthorized"})
                    return False
                return True

            def do_GET(self):
                if not self._auth():
                    return
                fault = self._fault("GET")
                if isinstance(fault, int):
                    return self._send(fault, {"message": "fault"})
                u = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(u.query).items()}
                with fake.lock:
                    if u.path == "/v2/account":
                        return self._send(200, fake.account_doc())
                    if u.path == "/v2/clock":
                        return self._send(200, {"is_open": True, "next_open": "2024-01-02T14:30:00Z"})
                    if u.path == "/v2/positions":
                        return self._send(200, fake.positions_doc())
                    if u.path.startswith("/v2/assets/"):
                        sym = u.path.rsplit("/", 1)[1]
                        if sym in fake.tradable:
                            return self._send(200, {"symbol": sym, "tradable": True, "fractionable": True})
                        return self._send(404, {"message": "asset not found"})
                    if u.path == "/v2/orders:by_client_order_id":
                        cid = q["client_order_id"]
                        if cid in fake.orders:
                            return self._send(200, fake.orders[cid])
                        return self._send(404, {"message": "order not found"})
                    if u.path == "/v2/orders":
                        return self._send(200, fake.list_orders(q))
                    if u.path.startswith("/v2/orders/"):
                        doc = fake.by_id(u.path.rsplit("/", 1)[1])
                        return self._send(200, doc) if doc else self._send(404, {"message": "order not found"})
                    if u.path in ("/v2/stocks/bars", "/v1beta3/crypto/us/bars"):
                        fake.data_requests.append(dict(q))
                        return self._send(*fake.bars_page(q, crypto=u.path.startswith("/v1beta3")))
                self._send(404, {"message": "no route"})

            def do_POST(self):
                if not self._auth():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fault = self._fault("POST")
                if isinstance(fault, int) and fault != 200:
                    return self._send(fault, {"message": "fault"})
                with fake.lock:
                    fake.posts += 1
                    code, doc = fake.place(body)
                if fault == "slow":
                    time.sleep(0.6)
                self._send(code, doc)

            def do_DELETE(self):
                if not self._auth():
                    return
                fault = self._fault("DELETE")
                if isinstance(fault, int):
                    return self._send(fault, {"message": "fault"})
                u = urlparse(self.path)
                with fake.lock:
                    doc = fake.by_id(u.path.rsplit("/", 1)[1]) if u.path.startswith("/v2/orders/") else None
                    if doc is None:
                        return self._send(404, {"message": "order not found"})
                    if doc["status"] not in OPEN:
                        return self._send(422, {"message": f"order is not cancelable (status {doc['status']})"})
                    doc["status"], doc["canceled_at"] = "canceled", _now()
                self._send(204)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # -- market data -------------------------------------------------------------------------------
    def bars_page(self, q: dict, *, crypto: bool) -> tuple[int, dict]:
        symbols = [s for s in q.get("symbols", "").split(",") if s]
        if not symbols:
            return 400, {"message": "symbols is required"}
        for s in symbols:
            if not (CRYPTO_SYMBOL if crypto else STOCK_SYMBOL).match(s):
                return 400, {"code": 40010001, "message": f"invalid symbol: {s}"}
        tf = q.get("timeframe")
        if tf not in BAR_SECONDS:
            return 400, {"code": 40010001, "message": f"invalid timeframe: {tf}"}
        limit = int(q.get("limit", 1000))
        if not 1 <= limit <= 10_000:
            return 422, {"code": 42210000, "message": "invalid limit: must be between 1 and 10000"}
        if not crypto and q.get("adjustment", "raw") not in ("raw", "split", "dividend", "all"):
            return 400, {"message": f"invalid adjustment: {q['adjustment']}"}
        if not crypto and q.get("feed", "sip") not in ("iex", "sip", "otc"):
            return 400, {"message": f"invalid feed: {q['feed']}"}
        try:
            lo = _epoch(q["start"]) if "start" in q else 0.0
            hi = _epoch(q["end"]) if "end" in q else float("inf")
        except ValueError:
            return 400, {"message": "invalid start or end: expected RFC 3339"}
        secs = BAR_SECONDS[tf]
        served = []  # (symbol, bar) over all symbols, in order: the pages cut this list
        for s in symbols:
            for b in self.bars.get(s, []):
                t = _epoch(b["t"])
                if not lo <= t <= hi or (self.now is not None and t > self.now):
                    continue
                end = t + secs if crypto or secs < 86_400 else t + 16 * 3600  # a stock's day: the 16:00 close
                if self.now is not None and self.now < end:  # still forming: what is known so far
                    b = {**b, "h": b["o"], "l": b["o"], "c": b["o"], "v": 0.0, "n": 0, "vw": b["o"]}
                served.append((s, b))
        offset = int(base64.b64decode(q["page_token"]).decode()) if q.get("page_token") else 0
        size = min(limit, self.page_size)
        page, rest = served[offset : offset + size], served[offset + size :]
        out: dict[str, list] = {}
        for s, b in page:
            out.setdefault(s, []).append(b)
        token = base64.b64encode(str(offset + size).encode()).decode() if rest else None
        return 200, {"bars": out, "next_page_token": token}

    # -- the exchange ------------------------------------------------------------------------------
    def account_doc(self) -> dict:
        if self.instant:
            return {"cash": "1000.0", "equity": "1500.0", "status": "ACTIVE"}
        equity = self.cash + sum(q * self.last.get(s, 0.0) for s, q in self.positions.items())
        return {"cash": str(self.cash), "equity": str(equity), "buying_power": str(equity), "status": "ACTIVE"}

    def positions_doc(self) -> list[dict]:
        if self.instant:
            return [{"symbol": "AAPL", "qty": "3"}]
        return [
            {"symbol": s, "qty": str(q), "side": "long" if q > 0 else "short", "current_price": str(self.last.get(s))}
            for s, q in sorted(self.positions.items())
            if q
        ]

    def by_id(self, oid: str) -> dict | None:
        return next((d for d in self.orders.values() if d["id"] == oid), None)

    def list_orders(self, q: dict) -> list[dict]:
        status = q.get("status", "open")
        docs = list(self.orders.values())
        if status == "open":
            docs = [d for d in docs if d["status"] in OPEN]
        elif status == "closed":
            docs = [d for d in docs if d["status"] not in OPEN]
        if "symbols" in q:
            docs = [d for d in docs if d["symbol"] in q["symbols"].split(",")]
        docs.sort(key=lambda d: d["submitted_at"], reverse=q.get("direction", "desc") == "desc")
        return docs[: int(q.get("limit", 50))]

    def place(self, body: dict) -> tuple[int, dict]:
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if cid in self.orders:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        if len(cid) > 128:
            return 422, {"message": "client_order_id is too long (max 128)"}
        if body.get("symbol") not in self.tradable:
            return 422, {"message": f"asset {body.get('symbol')} not found"}
        kind, tif = body.get("type"), body.get("time_in_force")
        if kind not in TYPES:
            return 422, {"message": f"invalid order type {kind!r}"}
        if tif not in TIFS:
            return 422, {"message": f"invalid time_in_force {tif!r}"}
        if kind in ("limit", "stop_limit") and not body.get("limit_price"):
            return 422, {"message": "limit_price is required"}
        if kind in ("stop", "stop_limit") and not body.get("stop_price"):
            return 422, {"message": "stop_price is required"}
        qty = float(body.get("qty") or 0)
        if qty <= 0:
            return 422, {"message": "qty must be > 0"}
        doc = {
            "id": str(uuid.uuid4()),
            "client_order_id": cid,
            "symbol": body["symbol"],
            "side": body["side"],
            "qty": body["qty"],
            "type": kind,
            "order_type": kind,
            "time_in_force": tif,
            "limit_price": body.get("limit_price"),
            "stop_price": body.get("stop_price"),
            "status": "accepted",
            "filled_qty": "0",
            "filled_avg_price": None,
            "submitted_at": f"{_now()}.{len(self.orders):06d}",
        }
        if not self.instant and body["side"] == "sell" and self.positions.get(body["symbol"], 0.0) > 0:
            held = sum(
                float(d["qty"]) - float(d["filled_qty"])
                for d in self.orders.values()
                if d["symbol"] == body["symbol"] and d["side"] == "sell" and d["status"] in OPEN
            )
            available = self.positions[body["symbol"]] - held
            if qty > available + 1e-9:  # Alpaca: shares held for other open orders cannot be sold again
                return 403, {
                    "code": 40310000,
                    "message": f"insufficient qty available for order (available: {available})",
                }
        if self.instant:  # the error-path tests' fake: filled at once
            doc.update(status="filled", filled_qty=body["qty"], filled_avg_price="100.0")
        elif body["side"] == "buy":
            price = float(body.get("limit_price") or self.last.get(body["symbol"], 0.0))
            if qty * price > self.account_doc_equity():
                return 403, {"code": 40310000, "message": "insufficient buying power"}
        self.orders[cid] = doc
        return 200, doc

    def account_doc_equity(self) -> float:
        return float(self.account_doc()["equity"])

    def _fill(self, doc: dict, price: float) -> None:
        qty, done = float(doc["qty"]), float(doc["filled_qty"])
        total_text = f"{done + (qty - done) * (self.partial if self.partial is not None else 1.0):.9f}"
        self.partial = None
        total = float(total_text)
        part = total - done
        avg = ((float(doc["filled_avg_price"] or 0.0) * done) + price * part) / total
        doc.update(filled_qty=total_text, filled_avg_price=str(avg))
        doc["status"] = "filled" if abs(total - qty) < 1e-9 else "partially_filled"
        sign = 1.0 if doc["side"] == "buy" else -1.0
        self.positions[doc["symbol"]] = self.positions.get(doc["symbol"], 0.0) + sign * part
        self.cash -= sign * part * price
        self.executions.append({"order": doc["id"], "qty": sign * part, "price": price})

    def bar(self, symbol: str, o: float, h: float, lo: float, c: float, *, day_end: bool = True) -> None:
        """Trade one bar of ``symbol`` against its open orders (in the order they came), then (``day_end``)
        expire the unfilled day orders."""
        with self.lock:
            for doc in sorted(self.orders.values(), key=lambda d: d["submitted_at"]):
                if doc["symbol"] != symbol or doc["status"] not in OPEN:
                    continue
                buy, kind, tif = doc["side"] == "buy", doc["type"], doc["time_in_force"]
                lim = float(doc["limit_price"]) if doc["limit_price"] else None
                stop = float(doc["stop_price"]) if doc["stop_price"] else None
                if kind == "market":
                    self._fill(doc, c if tif == "cls" else o)
                elif kind == "limit" and (lo <= lim if buy else h >= lim):
                    self._fill(doc, min(o, lim) if buy else max(o, lim))
                elif kind == "stop" and (h >= stop if buy else lo <= stop):
                    self._fill(doc, max(o, stop) if buy else min(o, stop))
            self.last[symbol] = c
            if day_end:
                for doc in self.orders.values():
                    if doc["symbol"] == symbol and doc["status"] in OPEN and doc["time_in_force"] != "gtc":
                        doc["status"] = "expired"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
