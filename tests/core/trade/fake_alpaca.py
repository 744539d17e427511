"""A fake Alpaca REST server on 127.0.0.1 for the adapter's tests (started and stopped by them)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakeAlpaca:
    """The endpoints the adapter uses. ``faults``: queue of (method, path-prefix, action) where action
    is an HTTP code to answer, or "slow" (answer after the client's timeout, having placed the order)."""

    def __init__(self, key: str = "KEY", secret: str = "SECRET") -> None:
        self.key, self.secret = key, secret
        self.orders: dict[str, dict] = {}
        self.tradable = {"AAPL", "MSFT", "SYN0", "SYN1"}
        self.posts = 0
        self.faults: list[tuple[str, str, object]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code, doc):
                body = json.dumps(doc).encode()
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
                if u.path == "/v2/account":
                    return self._send(200, {"cash": "1000.0", "equity": "1500.0", "status": "ACTIVE"})
                if u.path == "/v2/clock":
                    return self._send(200, {"is_open": True, "next_open": "2024-01-02T14:30:00Z"})
                if u.path == "/v2/positions":
                    return self._send(200, [{"symbol": "AAPL", "qty": "3"}])
                if u.path.startswith("/v2/assets/"):
                    sym = u.path.rsplit("/", 1)[1]
                    if sym in fake.tradable:
                        return self._send(200, {"symbol": sym, "tradable": True})
                    return self._send(404, {"message": "asset not found"})
                if u.path == "/v2/orders:by_client_order_id":
                    cid = parse_qs(u.query)["client_order_id"][0]
                    if cid in fake.orders:
                        return self._send(200, fake.orders[cid])
                    return self._send(404, {"message": "order not found"})
                self._send(404, {"message": "no route"})

            def do_POST(self):
                if not self._auth():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fault = self._fault("POST")
                if isinstance(fault, int) and fault != 200:
                    return self._send(fault, {"message": "fault"})
                fake.posts += 1
                cid = body["client_order_id"]
                if cid in fake.orders:
                    return self._send(422, {"message": "client_order_id must be unique"})
                doc = {
                    "id": str(uuid.uuid4()),
                    "client_order_id": cid,
                    "symbol": body["symbol"],
                    "side": body["side"],
                    "qty": body["qty"],
                    "status": "filled",
                    "filled_qty": body["qty"],
                    "filled_avg_price": "100.0",
                }
                fake.orders[cid] = doc
                if fault == "slow":
                    time.sleep(0.6)
                self._send(200, doc)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
