"""Bars from Alpaca's market-data API for ``mqc data fetch --provider alpaca`` (and ``mqc trade --fetch alpaca``).

Stocks: ``GET {url}/v2/stocks/bars``; crypto (a symbol with a slash, ``BTC/USD``):
``GET {url}/v1beta3/crypto/us/bars``; both paged with ``next_page_token``. Requests go through the
one Alpaca HTTP client (``core/alpaca_http.py``: keys from the environment or the keyring, an
explicit timeout); a 429, a 5xx or no answer is retried by ``fetch.with_retries``' backoff.

Alpaca stamps a bar with its START time in UTC. mqc stores what the other providers store: intraday
bars at their start (as ccxt), daily bars at 00:00 UTC of their date (as yfinance: a stock's New York
date; a crypto bar's UTC date). A bar counts as closed when its own end has passed: intraday and crypto
bars ``start + bar size`` (Alpaca's start, not the re-stamped one: a crypto day that starts at 05:00 UTC
closes at 05:00 UTC the next day), a stock's day at 00:00 UTC after its date, as for yfinance.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from mqc.core.alpaca_http import KEY_VARS, AlpacaHTTP, alpaca_keys
from mqc.core.data.config import FetchConfig
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.errors import BrokerError, DataError
from mqc.core.progress import NULL, Progress

STOCK_BARS = "/v2/stocks/bars"
CRYPTO_BARS = "/v1beta3/crypto/us/bars"
PAGE_LIMIT = 10_000  # Alpaca's maximum bars per page
ADJUSTMENT_TEXT = {
    "raw": "raw (Alpaca adjustment=raw: not adjusted for splits or dividends)",
    "split": "adjusted by the provider (Alpaca adjustment=split: splits)",
    "dividend": "adjusted by the provider (Alpaca adjustment=dividend: dividends)",
    "all": "adjusted by the provider (Alpaca adjustment=all: dividends and splits)",
}
CRYPTO_QUOTES = ("USD", "USDT", "USDC", "BTC")


def is_crypto(symbol: str) -> bool:
    """Alpaca names crypto pairs ``BASE/QUOTE`` (``BTC/USD``); stocks have no slash."""
    return "/" in symbol


def provider_name(stored: str) -> str:
    """Alpaca's name of a catalog symbol not fetched before: ``BTC-USD`` -> ``BTC/USD``; stocks as stored."""
    base, _, quote = stored.rpartition("-")
    return f"{base}/{quote}" if base and quote in CRYPTO_QUOTES else stored


def alpaca_timeframe(label: str) -> str:
    """mqc bar size -> Alpaca's ``timeframe`` (``15m`` -> ``15Min``, ``1h`` -> ``1Hour``, ``1d`` -> ``1Day``).

    Raises:
        DataError: Alpaca has no bars of that size.
    """
    secs = parse_timeframe(label)
    if secs == 86_400:
        return "1Day"
    if secs == 7 * 86_400:
        return "1Week"
    if secs < 86_400 and secs % 3600 == 0:
        return f"{secs // 3600}Hour"
    if secs < 3600 and secs % 60 == 0:
        return f"{secs // 60}Min"
    raise DataError(f"Alpaca has no {label} bars", hint="use 1m..59m, 1h..23h, 1d or 1w")


def client(cfg: FetchConfig) -> AlpacaHTTP:
    """The HTTP client for ``cfg.alpaca_url`` with the keys of the environment or keyring.

    Raises:
        BrokerError: no keys.
    """
    key, secret = alpaca_keys()
    return AlpacaHTTP(cfg.alpaca_url, key, secret, timeout_s=cfg.timeout_s)


def _rfc3339(text: str | None) -> str | None:
    if text is None:
        return None
    return pd.Timestamp(text, tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def _page(http: Any, path: str, query: dict[str, Any], symbol: str) -> dict[str, Any]:
    """One page; HTTP errors as mqc errors (retryable ones are left to the caller's backoff)."""
    try:
        doc = http.request("GET", path, query=query)
    except BrokerError as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise DataError(
                f"alpaca refused the market-data request for {symbol} (HTTP {status}): the keys in {KEY_VARS}"
                " are wrong or lack market-data access",
                hint="export APCA_API_KEY_ID=... APCA_API_SECRET_KEY=... (the keys of your Alpaca account)",
            ) from None
        if exc.retryable:
            raise
        raise DataError(
            f"alpaca has no bars for {symbol!r}: {exc}",
            hint="check the symbol (stocks AAPL, crypto BTC/USD) and --timeframe",
        ) from None
    if isinstance(doc, dict) and doc.get("bars", {}) is None:
        doc["bars"] = {}  # no bar in the range: Alpaca may write null
    if not isinstance(doc, dict) or not isinstance(doc.get("bars"), dict):
        raise DataError(f"alpaca answered {path} for {symbol} without a 'bars' object")
    return doc


def download_alpaca(
    http: Any,
    symbol: str,
    cfg: FetchConfig,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NULL,
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Every page of ``symbol``'s bars in ``cfg``'s range: (mqc timestamps, columns, bar ends), ns UTC.

    Raises:
        DataError: bad keys (names the key variables), an unknown symbol, no bars in the range, or
            still rate-limited / unreachable after the retries.
    """
    from mqc.core.data.fetch import with_retries

    crypto = is_crypto(symbol)
    query: dict[str, Any] = {
        "symbols": symbol,
        "timeframe": alpaca_timeframe(cfg.timeframe),
        "start": _rfc3339(cfg.start) or ("2016-01-01T00:00:00Z" if not crypto else "2020-01-01T00:00:00Z"),
        "end": _rfc3339(cfg.end),
        "limit": PAGE_LIMIT,
        "sort": "asc",
    }
    if not crypto:
        query.update(adjustment=cfg.alpaca_adjustment, feed=cfg.alpaca_feed)
    path = CRYPTO_BARS if crypto else STOCK_BARS
    rows: list[dict[str, Any]] = []
    for _ in range(100_000):  # pages; bounded so a misbehaving server cannot loop forever
        doc = with_retries(
            lambda q=dict(query): _page(http, path, q, symbol),
            what=f"alpaca {symbol}",
            retries=cfg.retries,
            backoff_s=cfg.backoff_s,
            sleep=sleep,
            progress=progress,
        )
        rows.extend(doc["bars"].get(symbol) or [])
        token = doc.get("next_page_token")
        if not token:
            break
        query["page_token"] = token
    return parse_alpaca(rows, symbol, cfg.timeframe, crypto=crypto)


def parse_alpaca(
    rows: list[dict[str, Any]], symbol: str, timeframe: str, *, crypto: bool
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Alpaca bar objects ``{t, o, h, l, c, v, ...}`` -> (mqc timestamps, columns, bar ends), sorted, unique."""
    if not rows:
        raise DataError(
            f"alpaca returned no bars for {symbol}",
            hint="check the symbol (stocks AAPL, crypto BTC/USD), --start/--end and the feed (iex has fewer symbols)",
        )
    try:
        start = pd.DatetimeIndex(pd.to_datetime([r["t"] for r in rows], utc=True))
        cols = {
            name: np.asarray([np.nan if r.get(k) is None else r[k] for r in rows], dtype=np.float64)
            for name, k in (("open", "o"), ("high", "h"), ("low", "l"), ("close", "c"), ("volume", "v"))
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"alpaca bars of {symbol} are not {{t, o, h, l, c, v}} objects ({exc})") from None
    bar_ns = parse_timeframe(timeframe) * 1_000_000_000
    raw = start.tz_localize(None).to_numpy(dtype="datetime64[ns]").view(np.int64)
    if bar_ns >= 86_400 * 10**9:  # daily: 00:00 UTC of the bar's date (New York's for stocks, as yfinance)
        local = start if crypto else start.tz_convert("America/New_York")
        ts = local.tz_localize(None).floor("D").to_numpy(dtype="datetime64[ns]").view(np.int64)
        ends = (raw if crypto else ts) + bar_ns
    else:
        ts, ends = raw, raw + bar_ns
    ts, first = np.unique(ts, return_index=True)  # sorted; a bar repeated across pages kept once
    return ts, {c: v[first] for c, v in cols.items()}, ends[first]
