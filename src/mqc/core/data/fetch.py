"""``mqc data fetch``: download bars from yfinance (stocks), ccxt (crypto) or Alpaca, cache them, import them.

Provider clients are injectable (tests pass recorded responses; no network). Rate-limit and network
errors are retried with exponential backoff. Every download is cached under
``<cache dir>/fetch/<provider>/`` as canonical Parquet, then goes through the normal validate ->
catalog path like any imported file.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mqc.core import atomic, paths
from mqc.core.data.bars import Bars, bars_table, table_arrays
from mqc.core.data.catalog import Catalog, WriteItem, check_timeframe
from mqc.core.data.config import FetchConfig, ImportConfig
from mqc.core.data.importer import ImportResult, SymbolImport
from mqc.core.data.reader import normalise_symbol
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.data.validate import Issue, validate_arrays
from mqc.core.errors import DataError, MqcError, require
from mqc.core.progress import NULL, Progress

_RETRYABLE = {
    "YFRateLimitError",
    "RateLimitExceeded",
    "DDoSProtection",
    "RequestTimeout",
    "NetworkError",
    "ExchangeNotAvailable",
}
_RATE_TEXT = re.compile(r"rate.?limit|too many requests|429", re.IGNORECASE)


def is_retryable(exc: BaseException) -> bool:
    """Rate-limit or transient network error of yfinance / ccxt (matched by class name or message), or an
    error that says it is (``retryable``: Alpaca's 429, 5xx and timeouts)."""
    if getattr(exc, "retryable", False) is True:
        return True
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(names & _RETRYABLE) or bool(_RATE_TEXT.search(str(exc)))


def with_retries(
    call: Callable[[], Any],
    *,
    what: str,
    retries: int,
    backoff_s: float,
    sleep: Callable[[float], None] = time.sleep,
    progress: Progress = NULL,
) -> Any:
    """Run ``call``; on a retryable error wait ``backoff_s * 2**k`` (max 60 s) and try again.

    Raises:
        DataError: after ``retries`` retries, or at once for a non-retryable provider error.
    """
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:  # provider libraries raise their own hierarchies
            if isinstance(exc, MqcError) and not is_retryable(exc):
                raise  # already a clear mqc error (Alpaca: bad keys, an unknown symbol)
            if not is_retryable(exc):
                raise DataError(
                    f"{what}: {type(exc).__name__}: {str(exc)[:200]}",
                    hint="check the symbol and the provider's spelling of it",
                ) from exc
            label = f"HTTP {exc.status}" if getattr(exc, "status", None) else type(exc).__name__  # Alpaca's code
            if attempt == retries:
                raise DataError(
                    f"{what}: still rate-limited after {retries} retries ({label})",
                    hint="wait a few minutes and run it again; symbols already downloaded are cached",
                ) from exc
            delay = min(60.0, backoff_s * 2**attempt)
            progress.log(f"{what}: {label}; retrying in {delay:.0f}s")
            sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# -------------------------------------------------------------------------------------- parsing


def parse_yfinance(df: pd.DataFrame, symbol: str, *, daily: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """yfinance ``download`` DataFrame (flat or (Price, Ticker) columns) -> sorted arrays.

    Prices are adjusted: a frame with ``Adj Close`` (``auto_adjust=False``) has open/high/low/close
    scaled by Adj Close / Close; an ``auto_adjust=True`` frame is adjusted already. ``daily`` bars
    are stamped at 00:00 UTC of their exchange-local date (yfinance indexes them at local midnight).
    """
    if df is None or len(df) == 0:
        raise DataError(
            f"yfinance returned no bars for {symbol}",
            hint="check the ticker on finance.yahoo.com and the --start/--end range",
        )
    df = df.copy()
    if isinstance(df.columns, pd.MultiIndex):
        level = df.columns.names.index("Price") if "Price" in df.columns.names else 0
        tickers = {c[1 - level] for c in df.columns} if df.columns.nlevels == 2 else set()
        if len(tickers) > 1:
            df = df.xs(symbol, axis=1, level=1 - level) if symbol in tickers else df
        df.columns = [c[level] for c in df.columns]
    cols = {str(c).strip().lower(): c for c in df.columns}
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if missing:
        raise DataError(
            f"yfinance response for {symbol} lacks column(s) {', '.join(missing)} (got"
            f" {', '.join(map(str, df.columns))})"
        )
    idx = pd.DatetimeIndex(df.index)
    if daily:  # the local calendar date: wall-clock time in the index's own zone, floored
        idx = (idx.tz_localize(None) if idx.tz is not None else idx).floor("D")
    else:
        idx = idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC").tz_localize(None)
    ts = idx.to_numpy(dtype="datetime64[ns]").view(np.int64)
    arrays = {
        c: pd.to_numeric(df[cols[c]], errors="coerce").to_numpy(dtype=np.float64)
        for c in ("open", "high", "low", "close")
    }
    adj = cols.get("adj close") or cols.get("adj_close") or cols.get("adjclose")
    if adj is not None:
        ratio = pd.to_numeric(df[adj], errors="coerce").to_numpy(dtype=np.float64) / arrays["close"]
        arrays = {c: v * ratio for c, v in arrays.items()}
    arrays["volume"] = (
        pd.to_numeric(df[cols["volume"]], errors="coerce").to_numpy(dtype=np.float64)
        if "volume" in cols
        else np.full(ts.size, np.nan)
    )
    order = np.argsort(ts, kind="stable")
    return ts[order], {c: v[order] for c, v in arrays.items()}


def parse_ccxt(rows: Sequence[Sequence[float]], symbol: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """ccxt ``fetch_ohlcv`` rows ``[ms, open, high, low, close, volume]`` -> sorted, de-duplicated arrays."""
    if not rows:
        raise DataError(
            f"ccxt returned no bars for {symbol}", hint="check the market symbol (e.g. BTC/USDT) and --start"
        )
    a = np.asarray([[np.nan if x is None else x for x in r[:6]] for r in rows], dtype=np.float64)
    if a.ndim != 2 or a.shape[1] != 6:
        raise DataError(f"ccxt response for {symbol} is not [time, open, high, low, close, volume] rows")
    ts = a[:, 0].astype(np.int64) * 1_000_000
    ts, first = np.unique(ts, return_index=True)  # pages overlap at their edges
    return ts, {c: a[first, j + 1] for j, c in enumerate(("open", "high", "low", "close", "volume"))}


# ------------------------------------------------------------------------------------ downloads

YF_ADJUSTMENT = "adjusted by the provider (yfinance auto_adjust: dividends and splits)"
_YF_INTERVALS = {"1m": "1m", "2m": "2m", "5m": "5m", "15m": "15m", "30m": "30m", "1h": "60m", "1d": "1d", "1w": "1wk"}


def _download_yfinance(client: Any, symbol: str, cfg: FetchConfig, sleep, progress) -> tuple[np.ndarray, dict]:
    tf = check_timeframe(cfg.timeframe)
    if tf not in _YF_INTERVALS:
        raise DataError(f"yfinance has no {tf} bars", hint=f"use one of {', '.join(_YF_INTERVALS)}")
    kwargs = {
        "start": cfg.start,
        "end": cfg.end,
        "interval": _YF_INTERVALS[tf],
        "auto_adjust": True,
        "progress": False,
        "threads": False,
    }
    if cfg.start is None:
        kwargs.pop("start")
        kwargs["period"] = "max"
    df = with_retries(
        lambda: client.download(symbol, **kwargs),
        what=f"yfinance {symbol}",
        retries=cfg.retries,
        backoff_s=cfg.backoff_s,
        sleep=sleep,
        progress=progress,
    )
    return parse_yfinance(df, symbol, daily=parse_timeframe(tf) >= 86400)


def _download_ccxt(client: Any, symbol: str, cfg: FetchConfig, sleep, progress) -> tuple[np.ndarray, dict]:
    tf = check_timeframe(cfg.timeframe)
    step_ms = parse_timeframe(tf) * 1000
    end_ms = int(pd.Timestamp(cfg.end, tz="UTC").value // 1_000_000) if cfg.end else None
    since = int(pd.Timestamp(cfg.start, tz="UTC").value // 1_000_000) if cfg.start else None
    rows: list = []
    for _ in range(100_000):  # pages; bounded so a misbehaving exchange cannot loop forever
        page = with_retries(
            lambda s=since: client.fetch_ohlcv(symbol, tf, s, cfg.page_limit),
            what=f"ccxt {getattr(client, 'id', 'exchange')} {symbol}",
            retries=cfg.retries,
            backoff_s=cfg.backoff_s,
            sleep=sleep,
            progress=progress,
        )
        page = [r for r in page or [] if end_ms is None or r[0] <= end_ms]
        if not page:
            break
        rows.extend(page)
        last = int(page[-1][0])
        if since is None or len(page) < cfg.page_limit or (end_ms is not None and last + step_ms > end_ms):
            break  # no --start: one page of the most recent bars
        if last + step_ms <= since:
            break
        since = last + step_ms
    return parse_ccxt(rows, symbol)


def _client(provider: str, cfg: FetchConfig) -> Any:
    if provider == "alpaca":
        from mqc.core.data.alpaca_bars import client

        return client(cfg)
    if provider == "yfinance":
        return require("yfinance", "fetch")
    ccxt = require("ccxt", "fetch")
    if not hasattr(ccxt, cfg.exchange):
        raise DataError(
            f"ccxt has no exchange {cfg.exchange!r}",
            hint="see ccxt.exchanges for the ids, e.g. binance, kraken, coinbase",
        )
    return getattr(ccxt, cfg.exchange)({"enableRateLimit": True})


# ---------------------------------------------------------------------------------------- cache


def cache_path(symbol: str, cfg: FetchConfig) -> Path:
    """Where a download of ``symbol`` with these settings is cached."""
    # "adj": yfinance caches written before prices were adjusted are not reused.
    venue = {"ccxt": cfg.exchange, "alpaca": f"{cfg.alpaca_feed}-{cfg.alpaca_adjustment}"}.get(cfg.provider, "adj")
    key = f"{cfg.provider}|{venue}|{symbol}|{cfg.timeframe}|{cfg.start}|{cfg.end}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", symbol)
    return paths.cache_dir() / "fetch" / cfg.provider / f"{safe}_{cfg.timeframe}_{digest}.parquet"


def _cache_fresh(path: Path, cfg: FetchConfig, now: float) -> bool:
    if not path.is_file():
        return False
    if cfg.end and pd.Timestamp(cfg.end, tz="UTC") < pd.Timestamp(now, unit="s", tz="UTC"):
        return True  # a closed historical range does not change
    return 0 <= (now - path.stat().st_mtime) < cfg.cache_hours * 3600


def download(
    symbol: str,
    cfg: FetchConfig,
    *,
    client: Any = None,
    sleep=time.sleep,
    now: float | None = None,
    progress: Progress = NULL,
) -> tuple[np.ndarray, dict, bool, int]:
    """Arrays for one symbol from the cache or the provider: (ts, cols, from_cache, forming).

    Bars still forming at ``now`` (close time = start + bar size after now) are cut before caching,
    so neither the cache nor the catalog ever holds a partial bar; ``forming`` counts them.
    """
    import pyarrow.parquet as pq

    clock = time.time() if now is None else now
    path = cache_path(symbol, cfg)
    if _cache_fresh(path, cfg, clock):
        ts, cols = table_arrays(pq.read_table(path))
        return ts, cols, True, 0
    client = client if client is not None else _client(cfg.provider, cfg)
    if cfg.provider == "alpaca":  # its bar ends come with it (a crypto day may start at 05:00 UTC)
        from mqc.core.data.alpaca_bars import download_alpaca

        ts, cols, ends = download_alpaca(client, symbol, cfg, sleep, progress)
    else:
        fn = _download_yfinance if cfg.provider == "yfinance" else _download_ccxt
        ts, cols = fn(client, symbol, cfg, sleep, progress)
        ends = ts + parse_timeframe(check_timeframe(cfg.timeframe)) * 1_000_000_000
    done = ends <= int(clock * 1e9)
    forming = int((~done).sum())
    if forming:
        ts, cols = ts[done], {c: v[done] for c, v in cols.items()}
    if ts.size:
        with atomic.atomic_path(path) as tmp:
            pq.write_table(bars_table(ts, cols), tmp)
    return ts, cols, False, forming


def fetch_symbols(
    symbols: Sequence[str],
    config: FetchConfig | None = None,
    import_config: ImportConfig | None = None,
    *,
    client: Any = None,
    catalog: Catalog | None = None,
    sleep: Callable[[float], None] = time.sleep,
    now: float | None = None,
    progress: Progress = NULL,
    nothing_new_ok: bool = False,
) -> ImportResult:
    """Download (or take from the cache) every symbol, validate all of them, then import in one batch.

    Args:
        symbols: provider symbols (``AAPL``, ``^GSPC``; ccxt ``BTC/USDT``). Stored normalised
            (``BTC/USDT`` -> ``BTC-USDT``).
        client: the yfinance module, a ccxt exchange object or an Alpaca HTTP client (default: imported
            from the extra; Alpaca's from the keys in the environment or keyring).
        nothing_new_ok: a symbol whose bars are all still forming is left out (the trading loop
            asking for the next bar before the provider has it) instead of an error.

    Bars still forming at ``now`` (default: the current time) are not stored. yfinance prices are
    dividend- and split-adjusted (recorded in the entries' ``adjustment``).

    Raises:
        DependencyMissing: the provider library (yfinance or ccxt) is not installed.
        DataError: a provider error, an empty response or invalid bars; nothing is stored then.
    """
    cfg = config or FetchConfig()
    icfg = import_config or ImportConfig(on_error="repair")
    cat = catalog or Catalog()
    tf = check_timeframe(cfg.timeframe)
    clock = time.time() if now is None else now
    adjustment = {"yfinance": YF_ADJUSTMENT, "alpaca": _alpaca_adjustment(cfg)}.get(cfg.provider, "")
    pending: list[tuple[SymbolImport, WriteItem]] = []
    progress.start(len(symbols), f"fetching from {cfg.provider}")
    for raw in symbols:
        ts, cols, cached, forming = download(raw, cfg, client=client, sleep=sleep, now=clock, progress=progress)
        sym = normalise_symbol(raw)
        source = f"{cfg.provider}{':' + cfg.exchange if cfg.provider == 'ccxt' else ''}:{raw}"
        if ts.size == 0 and nothing_new_ok:
            progress.advance(1, symbol=sym, cached=cached)
            continue
        if ts.size == 0:
            raise DataError(
                f"{source}: every bar returned is still forming at {_iso(clock)}",
                hint="fetch again after the current bar closes, or widen --start",
            )
        bars = Bars(sym, source, ts, cols, np.arange(ts.size, dtype=np.int64) + 1)
        if forming:
            bars.notes.append(
                Issue(
                    "forming",
                    -1,
                    "timestamp",
                    f"{forming} bar(s) still forming at {_iso(clock)} (close time after now) not stored",
                    "dropped",
                )
            )
        clean, report = validate_arrays(
            bars, on_error=icfg.on_error, spike_sigma=icfg.spike_sigma, bar_seconds=parse_timeframe(tf)
        )
        crypto = cfg.provider == "ccxt" or (cfg.provider == "alpaca" and "/" in raw)
        asset = icfg.asset_class or ("crypto" if crypto else None)
        item = WriteItem(sym, clean.ts, clean.cols, source, tf, asset, "" if crypto else adjustment)
        pending.append((SymbolImport("cache" if cached else cfg.provider, sym, tf, report, rows=len(clean)), item))
        progress.advance(1, symbol=sym, cached=cached)
    progress.finish()
    result = ImportResult(written=True, catalog=str(cat.root))
    for (si, _), res in zip(pending, cat.write_many([w for _, w in pending], replace=icfg.replace), strict=True):
        si.record_write(res)
        result.items.append(si)
    return result


def _alpaca_adjustment(cfg: FetchConfig) -> str:
    from mqc.core.data.alpaca_bars import ADJUSTMENT_TEXT

    return ADJUSTMENT_TEXT[cfg.alpaca_adjustment]


def _iso(seconds: float) -> str:
    return pd.Timestamp(seconds, unit="s", tz="UTC").isoformat(timespec="seconds")
