"""The offline sample (real bars from installed packages) and provider downloads on recorded responses."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import FetchConfig
from mqc.core.data.fetch import cache_path, fetch_symbols, parse_ccxt, parse_yfinance, with_retries
from mqc.core.data.panel import load_panel
from mqc.core.data.sample import DAILY_SAMPLE_SYMBOLS, import_sample
from mqc.core.errors import DataError


def test_sample_imports_idempotently_and_aligns(tmp_path):
    cat = Catalog(tmp_path / "cat")
    first = import_sample(catalog=cat)
    assert {i.symbol: i.status for i in first.items} == {
        "SP500": "new",
        "NASDAQ": "new",
        "GOOG": "new",
        "EURUSD": "new",
    }
    assert {e.key for e in cat.entries()} == {"1d/SP500", "1d/NASDAQ", "1d/GOOG", "1h/EURUSD"}
    again = import_sample(catalog=cat)
    assert {i.status for i in again.items} == {"unchanged"}
    panel = load_panel(DAILY_SAMPLE_SYMBOLS, "1d", catalog=cat)
    assert panel.symbols == ("SP500", "NASDAQ", "GOOG")
    assert len(panel) > 2000 and str(panel.timestamps[0])[:10] == "2004-08-19"
    assert (panel.values[..., 1] >= panel.values[..., 3]).all()
    assert cat.find("SP500").source.startswith("arch==")


# ----------------------------------------------------------------------------- recorded responses


def yf_frame():
    """Shaped like ``yfinance.download('AAPL', auto_adjust=False)``: (Price, Ticker) columns, tz-naive dates."""
    idx = pd.DatetimeIndex(["2024-01-02", "2024-01-03", "2024-01-04"], name="Date")
    cols = pd.MultiIndex.from_product(
        [["Adj Close", "Close", "High", "Low", "Open", "Volume"], ["AAPL"]], names=["Price", "Ticker"]
    )
    data = [
        [184.9, 185.64, 188.44, 183.89, 187.15, 82488700],
        [183.5, 184.25, 185.88, 183.43, 184.22, 58414500],
        [181.2, 181.91, 183.09, 180.88, 182.15, 71983600],
    ]
    return pd.DataFrame(data, index=idx, columns=cols)


CCXT_ROWS = [[1704067200000 + k * 3_600_000, 42000 + k, 42100 + k, 41900 + k, 42050 + k, 12.5] for k in range(5)]


class FakeYF:
    def __init__(self, fail_times=0):
        self.calls = 0
        self.fail_times = fail_times

    def download(self, symbol, **kwargs):
        self.calls += 1
        self.kwargs = kwargs
        if self.calls <= self.fail_times:
            raise type("YFRateLimitError", (Exception,), {})("Too Many Requests. Rate limited. Try after a while.")
        return yf_frame()


class FakeExchange:
    id = "binance"

    def __init__(self):
        self.calls = []

    def fetch_ohlcv(self, symbol, timeframe, since, limit):
        self.calls.append((symbol, timeframe, since, limit))
        rows = [r for r in CCXT_ROWS if since is None or r[0] >= since]
        return rows[:limit]


def test_parse_yfinance_multiindex():
    ts, cols = parse_yfinance(yf_frame(), "AAPL")
    assert ts[0] == pd.Timestamp("2024-01-02", tz="UTC").value
    # Adj Close present (auto_adjust=False frame): every price is scaled by Adj Close / Close.
    np.testing.assert_allclose(cols["close"], [184.9, 183.5, 181.2])
    np.testing.assert_allclose(
        cols["open"], [187.15 * 184.9 / 185.64, 184.22 * 183.5 / 184.25, 182.15 * 181.2 / 181.91]
    )
    assert cols["volume"].tolist() == [82488700, 58414500, 71983600]
    with pytest.raises(DataError, match="yfinance returned no bars for NOPE"):
        parse_yfinance(pd.DataFrame(), "NOPE")


def test_parse_ccxt_dedupes_page_overlap():
    ts, cols = parse_ccxt(CCXT_ROWS + CCXT_ROWS[-2:], "BTC/USDT")
    assert ts.size == 5 and cols["open"][0] == 42000 and np.all(np.diff(ts) == 3_600_000_000_000)


def test_retries_with_backoff_then_gives_up():
    sleeps = []
    yf = FakeYF(fail_times=2)
    df = with_retries(lambda: yf.download("AAPL"), what="yf", retries=3, backoff_s=1.0, sleep=sleeps.append)
    assert len(df) == 3 and sleeps == [1.0, 2.0]
    yf = FakeYF(fail_times=10)
    with pytest.raises(DataError, match="still rate-limited after 2 retries"):
        with_retries(lambda: yf.download("AAPL"), what="yf", retries=2, backoff_s=1.0, sleep=sleeps.append)
    with pytest.raises(DataError, match="yf: KeyError"):
        with_retries(lambda: {}["x"], what="yf", retries=2, backoff_s=1.0, sleep=sleeps.append)


def test_fetch_yfinance_imports_and_caches(tmp_path):
    cat = Catalog(tmp_path / "cat")
    cfg = FetchConfig(provider="yfinance", start="2024-01-01", end="2024-01-05", retries=2, backoff_s=0.5)
    yf = FakeYF(fail_times=1)
    sleeps = []
    res = fetch_symbols(["AAPL"], cfg, client=yf, catalog=cat, sleep=sleeps.append)
    assert res.items[0].status == "new" and res.items[0].rows == 3 and sleeps == [0.5]
    assert cache_path("AAPL", cfg).is_file()
    assert cat.find("AAPL").source == "yfinance:AAPL"
    assert yf.kwargs["auto_adjust"] is True and "dividends" in cat.find("AAPL").adjustment
    # Second run: served from the cache (the closed range never expires), nothing downloaded.
    res = fetch_symbols(["AAPL"], cfg, client=yf, catalog=cat, sleep=sleeps.append)
    assert yf.calls == 2 and res.items[0].path == "cache" and res.items[0].status == "unchanged"


def test_fetch_ccxt_paginates_and_stores_crypto(tmp_path):
    cat = Catalog(tmp_path / "cat")
    ex = FakeExchange()
    cfg = FetchConfig(provider="ccxt", timeframe="1h", start="2024-01-01", page_limit=2)
    res = fetch_symbols(["BTC/USDT"], cfg, client=ex, catalog=cat)
    assert res.items[0].symbol == "BTC-USDT" and res.items[0].rows == 5
    assert [c[2] for c in ex.calls] == [1704067200000, 1704067200000 + 2 * 3_600_000, 1704067200000 + 4 * 3_600_000]
    e = cat.find("BTC-USDT")
    assert (e.asset_class, e.timeframe) == ("crypto", "1h")


def test_fetch_cache_expires_for_open_ranges(tmp_path):
    cfg = FetchConfig(provider="yfinance", cache_hours=1.0)
    cat = Catalog(tmp_path / "cat")
    yf = FakeYF()
    fetch_symbols(["AAPL"], cfg, client=yf, catalog=cat)
    mtime = cache_path("AAPL", cfg).stat().st_mtime
    fetch_symbols(["AAPL"], cfg, client=yf, catalog=cat, now=mtime + 600)
    assert yf.calls == 1
    fetch_symbols(["AAPL"], cfg, client=yf, catalog=cat, now=mtime + 7200)
    assert yf.calls == 2


def test_parse_yfinance_daily_uses_the_exchange_date():
    """yfinance indexes daily bars at exchange-local midnight (05:00 UTC in New York winter)."""
    df = yf_frame()
    df.index = df.index.tz_localize("America/New_York")
    ts, _ = parse_yfinance(df, "AAPL", daily=True)
    assert ts.tolist() == [pd.Timestamp(d, tz="UTC").value for d in ("2024-01-02", "2024-01-03", "2024-01-04")]


class FormingExchange:
    """Like ccxt: the ``limit`` latest hourly candles, the last one still forming at ``now_ms``."""

    id = "fake"
    H = 3_600_000

    def __init__(self, now_ms):
        self.now_ms = now_ms

    def fetch_ohlcv(self, symbol, tf, since, limit):
        end = self.now_ms // self.H * self.H
        out = []
        for t in range(end - (limit - 1) * self.H, end + 1, self.H):
            c = 100.0 + (t // self.H) % 7 - (0.5 if t == end else 0.0)  # the forming candle's partial close
            out.append([t, c, c + 1, c - 1, c, 10.0])
        return out


def test_fetch_drops_the_still_forming_bar_and_refetch_does_not_conflict(tmp_path):
    H = FormingExchange.H
    now_ms = pd.Timestamp("2024-03-01 12:20", tz="UTC").value // 1_000_000
    cat = Catalog(tmp_path / "cat")
    cfg = FetchConfig(provider="ccxt", timeframe="1h", page_limit=50, cache_hours=12)
    res = fetch_symbols(["BTC/USDT"], cfg, client=FormingExchange(now_ms), catalog=cat, now=now_ms / 1000)
    item = res.items[0]
    assert item.rows == 49
    assert [i.kind for i in item.report.issues if i.action == "dropped"] == ["forming"]
    assert cat.find("BTC-USDT").last == pd.Timestamp("2024-03-01 11:00", tz="UTC").isoformat()
    # The cache holds no partial bar either: within cache_hours it is replayed, nothing new is stored.
    os.utime(cache_path("BTC/USDT", cfg), (now_ms / 1000, now_ms / 1000))  # written "at" the injected clock
    res = fetch_symbols(["BTC/USDT"], cfg, client=FormingExchange(now_ms + H), catalog=cat, now=(now_ms + H) / 1000)
    assert res.items[0].path == "cache" and res.items[0].status == "unchanged"
    # A fresh download an hour later brings the finished candle with its final close: appended, no conflict.
    cache_path("BTC/USDT", cfg).unlink()
    res = fetch_symbols(["BTC/USDT"], cfg, client=FormingExchange(now_ms + H), catalog=cat, now=(now_ms + H) / 1000)
    assert res.items[0].status == "appended" and res.items[0].added == 1 and cat.find("BTC-USDT").rows == 50
    noon = pd.Timestamp("2024-03-01 12:00", tz="UTC").value
    final_close = 100.0 + (noon // 1_000_000 // H) % 7
    frame = cat.load("BTC-USDT")
    assert frame["close"].iloc[-1] == final_close and frame["timestamp"].iloc[-1].value == noon
