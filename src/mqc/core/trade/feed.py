"""New bars for the live loop: each bar, fetch the traded symbols from a provider into the catalog.

``mqc trade --fetch yfinance|ccxt|alpaca`` (``[trade] fetch``): before each decision the loop downloads
the traded symbols' bars from the last stored one on, through ``mqc data fetch``'s own path
(``core/data/fetch.py``: the injectable provider client, retries with backoff, still-forming bars
cut, validate -> catalog import with the profile's ``[import]`` rules). A failed fetch (an outage
after the retries, a bad row refused by validation) raises ``DataError``: the loop records it and
skips the bar; the catalog is left as it was.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mqc.core.data.config import FetchConfig, ImportConfig
from mqc.core.errors import ConfigError
from mqc.core.progress import NullProgress

PROVIDERS = ("none", "yfinance", "ccxt", "alpaca")


class _EventLog(NullProgress):
    """Progress sink of a fetch: its retry messages become ledger events (``fetch_retry``)."""

    def __init__(self, record: Callable[[str], None]) -> None:
        self._record = record

    def log(self, message: str) -> None:
        self._record(message)


@dataclass
class BarFeed:
    """Fetches the traded symbols into the catalog, from the last stored bar on (``fetch``: the
    provider, exchange, retries and backoff; its start, end and bar size are the loop's).

    ``client``: the provider client (yfinance module, ccxt exchange or Alpaca HTTP client; default:
    imported from the ``fetch`` extra, Alpaca's built from the keys); ``sleep``: the backoff's sleep.
    Both are for tests.
    """

    fetch: FetchConfig
    imports: ImportConfig
    client: Any = None
    sleep: Callable[[float], None] = time.sleep

    def provider_symbols(self, symbols: tuple[str, ...], timeframe: str) -> tuple[list[str], str | None]:
        """The provider's names of the catalog's ``symbols`` (``BTC-USDT`` was fetched as ``BTC/USDT``:
        the entry's source says so; a ccxt symbol not stored yet is ``BASE/QUOTE``) and the earliest
        last stored bar (None: a symbol is not stored)."""
        from mqc.core.data.catalog import Catalog

        stored = {e.symbol: e for e in Catalog().entries(timeframe)}
        prefix = f"{self.fetch.provider}:{self.fetch.exchange + ':' if self.fetch.provider == 'ccxt' else ''}"
        names, lasts = [], []
        for s in symbols:
            e = stored.get(s)
            if e is not None and e.source.startswith(prefix):
                names.append(e.source[len(prefix) :])
            elif self.fetch.provider == "alpaca":  # not fetched before: BTC-USD is Alpaca's BTC/USD
                from mqc.core.data.alpaca_bars import provider_name

                names.append(provider_name(s))
            else:  # not fetched before: ccxt markets are BASE/QUOTE (stored as BASE-QUOTE)
                names.append(s.replace("-", "/", 1) if self.fetch.provider == "ccxt" else s)
            lasts.append(e.last if e is not None else None)
        return names, (None if None in lasts else min(lasts))  # type: ignore[type-var]

    def update(self, symbols: tuple[str, ...], timeframe: str, now_s: float, log: Callable[[str], None]) -> int:
        """Fetch and import the ``timeframe`` bars of ``symbols`` closed by ``now_s``; returns the bars added.

        Raises:
            DataError: the provider failed after its retries, or validation refused a bar (nothing stored).
        """
        from mqc.core.data.fetch import fetch_symbols
        from mqc.core.data.timeframe import parse_timeframe

        names, last = self.provider_symbols(symbols, timeframe)
        if last is not None:  # from the last stored bar on (UTC; a date for daily bars)
            last = last[:10] if parse_timeframe(timeframe) >= 86_400 else last[:19]
        # cache_hours 0: always ask the provider
        cfg = dataclasses.replace(self.fetch, timeframe=timeframe, start=last, end=None, cache_hours=0.0)
        res = fetch_symbols(
            names,
            cfg,
            self.imports,
            client=self.client,
            sleep=self.sleep,
            now=now_s,
            progress=_EventLog(log),
            nothing_new_ok=True,
        )
        return sum(i.added for i in res.items)


def bar_feed(provider: str, data_root: str | None, profile: str | None) -> BarFeed | None:
    """The feed of ``[trade] fetch`` (None for ``none``), with the profile's ``[fetch]`` and ``[import]`` tables.

    Raises:
        ConfigError: an unknown provider, or a fetch into the catalog while ``--data-root`` is traded.
    """
    if provider not in PROVIDERS:
        raise ConfigError(f"--fetch {provider!r}: expected one of {', '.join(PROVIDERS)}")
    if provider == "none":
        return None
    if data_root is not None:
        raise ConfigError(
            f"--fetch {provider} writes into the catalog, but --data-root {data_root} is traded",
            hint="drop --data-root (fetch into the catalog) or drop --fetch (the folder is re-read every bar)",
        )
    from mqc.core.data.fetch import _client
    from mqc.core.profiles import resolve_with_profile

    fetch = resolve_with_profile(FetchConfig, profile, flags={"provider": provider}).value
    # the provider library is imported (Alpaca's keys read) now: a missing extra or key fails before anything
    # is traded
    return BarFeed(fetch, resolve_with_profile(ImportConfig, profile).value, client=_client(provider, fetch))
