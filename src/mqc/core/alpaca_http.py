"""The one HTTP client mqc has for Alpaca (trading API and market-data API), and its keys.

Plain ``urllib`` with an explicit timeout per request and no retries of its own (callers decide:
the broker looks an order up by its client id, a bar download goes through ``mqc data fetch``'s
backoff). Keys come from the environment (``APCA_API_KEY_ID``, ``APCA_API_SECRET_KEY``) or the OS
keyring (service ``mqc-alpaca``); they are sent as headers only and never logged, printed, stored
or put in an error message.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mqc.core.errors import BrokerError

KEY_VARS = "APCA_API_KEY_ID and APCA_API_SECRET_KEY"


def alpaca_keys() -> tuple[str, str]:
    """(key id, secret) from the environment, else the OS keyring.

    Raises:
        BrokerError: neither source has both.
    """
    key, secret = os.environ.get("APCA_API_KEY_ID"), os.environ.get("APCA_API_SECRET_KEY")
    if not (key and secret):
        try:
            import keyring

            key = key or keyring.get_password("mqc-alpaca", "key_id")
            secret = secret or keyring.get_password("mqc-alpaca", "secret_key")
        except Exception:  # keyring absent or no backend: the environment is the only source
            pass
    if not (key and secret):
        raise BrokerError(
            f"no Alpaca keys: set {KEY_VARS} (or store them in the OS keyring)",
            hint="export APCA_API_KEY_ID=... APCA_API_SECRET_KEY=...  (never in a profile)",
        )
    return key, secret


class AlpacaHTTP:
    """JSON over HTTP to one Alpaca base URL with the key headers and a timeout (see the module docstring).

    Errors are ``BrokerError`` with ``status`` (the HTTP code; 0: no answer) and ``retryable``
    (429, 5xx, a timeout or a refused connection).
    """

    def __init__(self, base_url: str, key: str, secret: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret, "Content-Type": "application/json"}
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never show the keys
        return f"AlpacaHTTP({self.base_url!r})"

    def request(
        self, method: str, path: str, body: dict[str, Any] | None = None, query: dict[str, Any] | None = None
    ) -> Any:
        """``method path`` (``query`` url-encoded onto it); the decoded JSON answer (None when empty)."""
        if query:
            path = f"{path}?{urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})}"
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")[:200]
            retryable = exc.code == 429 or exc.code >= 500
            err = BrokerError(f"alpaca {method} {path}: HTTP {exc.code} {text}", retryable=retryable)
            err.status = exc.code  # type: ignore[attr-defined]
            raise err from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            err = BrokerError(f"alpaca {method} {path}: no answer ({exc})", retryable=True)
            err.status = 0  # type: ignore[attr-defined]
            raise err from None
        return json.loads(raw) if raw else None
