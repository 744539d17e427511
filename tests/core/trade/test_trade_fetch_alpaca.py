"""``mqc data fetch --provider alpaca`` and ``mqc trade --fetch alpaca`` against the fake Alpaca server on
127.0.0.1 (its market-data endpoints): the catalog holds exactly the fake's bars, re-stamped as the
other providers stamp them; pages are followed, a 429 is retried, bad keys and unknown symbols are
clear errors; a bar still forming is never stored; the loop decides each new bar once; the keys never
reach the output, the ledger, the catalog or the cache."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fake_alpaca import FakeAlpaca, alpaca_bar
from simclock import SimStop
from typer.testing import CliRunner

from mqc.cli import app
from mqc.core.data import alpaca_bars
from mqc.core.data.catalog import Catalog
from mqc.core.data.config import DataConfig, FetchConfig, ImportConfig
from mqc.core.data.fetch import fetch_symbols
from mqc.core.errors import BrokerError, DataError
from mqc.core.market.config import MarketConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.feed import BarFeed, bar_feed
from mqc.core.trade.loop import bar_label
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, run_loop

KEY, SECRET = "PKDATAKEY9Z3", "s3cr3t-Dq7-never-on-disk"
DAY, HOUR = 86_400, 3_600
runner = CliRunner()


def _walk(seed: int, n: int) -> np.ndarray:
    """[n, 5] open, high, low, close, volume of a random walk (valid bars)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = np.r_[100.0, close[:-1]]
    high = np.maximum(open_, close) * 1.003
    low = np.minimum(open_, close) * 0.997
    return np.column_stack([open_, high, low, close, rng.integers(1_000, 9_000, n).astype(float)])


def _bars(starts: list[float], seed: int) -> list[dict]:
    return [alpaca_bar(t, *row) for t, row in zip(starts, _walk(seed, len(starts)), strict=True)]


def _stock_days(n: int) -> list[float]:
    """Alpaca's daily stock bar starts: midnight New York time (05:00 UTC in January) of business days."""
    days = pd.bdate_range("2024-01-02", periods=n)
    return [d.tz_localize("America/New_York").timestamp() for d in days]


@pytest.fixture
def fake(monkeypatch):
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with FakeAlpaca(KEY, SECRET) as f:
        monkeypatch.setenv("MQC_FETCH_ALPACA_URL", f.url)
        monkeypatch.setenv("MQC_FETCH_BACKOFF_S", "0.01")
        yield f


def _no_keys_in(*roots: Path, text: str = "") -> None:
    for secret in (KEY, SECRET):
        assert secret not in text
        for root in roots:
            for f in root.rglob("*"):
                if f.is_file():
                    assert secret.encode() not in f.read_bytes(), f


def _dirs() -> list[Path]:
    return [Path(os.environ[f"MQC_{n}_DIR"]) for n in ("DATA", "CACHE", "CONFIG", "RUNS")]


def test_mqc_data_fetch_alpaca_stores_the_fakes_bars(fake):
    fake.bars["AAPL"] = _bars(_stock_days(23), seed=1)
    fake.bars["MSFT"] = _bars(_stock_days(23), seed=2)
    fake.bars["BTC/USD"] = _bars([pd.Timestamp("2024-01-01", tz="UTC").timestamp() + i * DAY for i in range(30)], 3)
    fake.page_size = 5  # the server cuts pages: 5 pages for 23 bars
    fake.faults.append(("GET", "/v2/stocks/bars", 429))  # rate-limited once
    r = runner.invoke(app, ["data", "fetch", "AAPL,MSFT", "BTC/USD", "--provider", "alpaca", "--start", "2024-01-01"])
    assert r.exit_code == 0, r.output
    cat = Catalog()
    for sym, name in (("AAPL", "AAPL"), ("MSFT", "MSFT"), ("BTC-USD", "BTC/USD")):
        df = cat.load(sym, "1d")
        served = fake.bars[name]
        np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in served])
        np.testing.assert_array_equal(df["open"].to_numpy(), [b["o"] for b in served])
        np.testing.assert_array_equal(df["volume"].to_numpy(), [b["v"] for b in served])
        # stamped as yfinance stamps a day: 00:00 UTC of its (New York) date, not Alpaca's 05:00 UTC start
        zone = "UTC" if "/" in name else "America/New_York"
        dates = [pd.Timestamp(b["t"]).tz_convert(zone).date() for b in served]
        assert [t.date() for t in pd.DatetimeIndex(df["timestamp"])] == dates
        assert all(t.hour == 0 for t in pd.DatetimeIndex(df["timestamp"]))
    entries = {e.symbol: e for e in cat.entries("1d")}
    assert entries["AAPL"].source == "alpaca:AAPL" and "adjustment=all" in entries["AAPL"].adjustment
    assert entries["BTC-USD"].asset_class == "crypto"
    stock_reqs = [q for q in fake.data_requests if q["symbols"] == "AAPL"]
    assert not fake.faults  # the 429 was answered (and the request asked again)
    assert [("page_token" in q) for q in stock_reqs] == [False, True, True, True, True]  # 5 pages followed
    assert {(q["adjustment"], q["feed"], q["timeframe"], q["limit"]) for q in stock_reqs} == {
        ("all", "iex", "1Day", "10000")
    }
    assert all("adjustment" not in q for q in fake.data_requests if q["symbols"] == "BTC/USD")
    cached = sorted(p.name for p in (Path(os.environ["MQC_CACHE_DIR"]) / "fetch" / "alpaca").glob("*.parquet"))
    assert len(cached) == 3 and cached[0].startswith("AAPL_1d_")  # the cache the grep below reads
    _no_keys_in(*_dirs(), text=r.output)


def test_bad_keys_name_the_variables_and_store_nothing(fake, monkeypatch):
    fake.bars["AAPL"] = _bars(_stock_days(5), seed=1)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "wrong-secret-55")
    r = runner.invoke(app, ["data", "fetch", "AAPL", "--provider", "alpaca", "--start", "2024-01-01"])
    assert r.exit_code == 1
    text = " ".join(r.output.split())
    assert "HTTP 401" in text and "APCA_API_KEY_ID" in text and "APCA_API_SECRET_KEY" in text
    assert "wrong-secret-55" not in text and KEY not in text
    assert Catalog().entries() == []
    monkeypatch.delenv("APCA_API_KEY_ID")
    r = runner.invoke(app, ["data", "fetch", "AAPL", "--provider", "alpaca"])
    assert r.exit_code == 1 and "no Alpaca keys" in " ".join(r.output.split())


def test_unknown_and_malformed_symbols_are_clear_errors(fake):
    fake.bars["AAPL"] = _bars(_stock_days(5), seed=1)
    r = runner.invoke(app, ["data", "fetch", "AAPL", "ZZZQ", "--provider", "alpaca", "--start", "2024-01-01"])
    assert r.exit_code == 1 and "alpaca returned no bars for ZZZQ" in " ".join(r.output.split())
    r = runner.invoke(app, ["data", "fetch", "aa pl", "--provider", "alpaca", "--start", "2024-01-01"])
    assert r.exit_code == 1 and "invalid symbol" in " ".join(r.output.split())
    assert Catalog().entries() == []  # all or nothing: AAPL was not stored either


def test_still_rate_limited_after_the_retries(fake):
    fake.bars["AAPL"] = _bars(_stock_days(5), seed=1)
    fake.faults += [("GET", "/v2/stocks/bars", 429)] * 3
    cfg = FetchConfig(provider="alpaca", start="2024-01-01", retries=2, backoff_s=1.0, alpaca_url=fake.url)
    sleeps: list[float] = []
    with pytest.raises(DataError, match="still rate-limited after 2 retries"):
        fetch_symbols(["AAPL"], cfg, client=alpaca_bars.client(cfg), sleep=sleeps.append)
    assert sleeps == [1.0, 2.0]


def _fetch(fake, symbols, timeframe, now, **kw):
    cfg = FetchConfig(provider="alpaca", timeframe=timeframe, start="2024-01-01", alpaca_url=fake.url, **kw)
    fake.now = now
    return fetch_symbols(symbols, cfg, client=alpaca_bars.client(cfg), now=now, nothing_new_ok=True)


def test_a_forming_bar_is_not_stored(fake):
    """The cut uses each bar's own end at Alpaca: an hour bar 30 minutes in, a crypto day that starts
    at 05:00 UTC (its mqc stamp is 00:00 UTC, but it closes at 05:00 UTC the next day)."""
    t0 = pd.Timestamp("2024-01-02", tz="UTC").timestamp()
    fake.bars["ETH/USD"] = _bars([t0 + i * HOUR for i in range(10)], seed=4)
    res = _fetch(fake, ["ETH/USD"], "1h", t0 + 6 * HOUR + 1800)
    df = Catalog().load("ETH-USD", "1h")
    assert len(df) == 6 and res.items[0].added == 6
    np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in fake.bars["ETH/USD"][:6]])

    fake.bars["BTC/USD"] = _bars([t0 + 5 * HOUR + i * DAY for i in range(6)], seed=5)
    _fetch(fake, ["BTC/USD"], "1d", t0 + 4 * DAY + 1 * HOUR)  # day 3 started 05:00 on day 3: still forming
    df = Catalog().load("BTC-USD", "1d")
    assert [str(t.date()) for t in pd.DatetimeIndex(df["timestamp"])] == ["2024-01-02", "2024-01-03", "2024-01-04"]
    np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in fake.bars["BTC/USD"][:3]])
    _fetch(fake, ["BTC/USD"], "1d", t0 + 4 * DAY + 5 * HOUR)  # now it closed: stored with its final values
    df = Catalog().load("BTC-USD", "1d")
    np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in fake.bars["BTC/USD"][:4]])


def test_a_stock_day_is_stored_after_0000_utc_as_yfinance_does(fake):
    starts = _stock_days(4)  # 2024-01-02 .. 2024-01-05, 05:00 UTC
    fake.bars["AAPL"] = _bars(starts, seed=6)
    close_day3 = starts[2] + 16 * HOUR  # 16:00 New York on 2024-01-04
    _fetch(fake, ["AAPL"], "1d", close_day3 + 30 * 60)
    assert len(Catalog().load("AAPL", "1d")) == 2  # day 3 is closed at Alpaca, but mqc's day ends at 00:00 UTC
    _fetch(fake, ["AAPL"], "1d", pd.Timestamp("2024-01-05", tz="UTC").timestamp() + 60)
    df = Catalog().load("AAPL", "1d")
    assert len(df) == 3 and str(pd.Timestamp(df["timestamp"].iloc[-1]).date()) == "2024-01-04"
    np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in fake.bars["AAPL"][:3]])


# ------------------------------------------------------------------------------------ the loop

PAIRS, SYMS = ("BTC/USD", "ETH/USD"), ("BTC-USD", "ETH-USD")
STORED = 150


def test_trade_fetch_alpaca_decides_each_new_bar_once(fake, tmp_path):
    t0 = pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    starts = [t0 + i * DAY for i in range(STORED + 10)]
    for k, pair in enumerate(PAIRS):
        fake.bars[pair] = _bars(starts, seed=10 + k)
    fake.page_size = 64
    clock = [int((starts[STORED] + 1) * 1e9)]  # 1 s into bar STORED
    cfg = FetchConfig(provider="alpaca", timeframe="1d", retries=2, backoff_s=1.0, alpaca_url=fake.url)
    http = alpaca_bars.client(cfg)
    fake.now = clock[0] / 1e9
    fetch_symbols(list(PAIRS), cfg, client=http, now=clock[0] / 1e9)  # the history to start from
    assert {e.symbol: e.rows for e in Catalog().entries("1d")} == dict.fromkeys(SYMS, STORED)

    class Clocked:  # the fake's data clock follows the loop's simulated one
        def request(self, *a, **k):
            fake.now = clock[0] / 1e9
            return http.request(*a, **k)

    decider = order_decider("maxdiff", SYMS, "1d", MarketConfig(), only="naive")
    tcfg = TradeConfig(fetch="alpaca")
    path = tmp_path / "ledger.db"
    session = open_session(tcfg, decider, path, open_broker(tcfg, path, decider.market, decider=decider))
    sleeps: list[float] = []
    feed = BarFeed(cfg, ImportConfig(), client=Clocked(), sleep=sleeps.append)
    fake.faults.append(("GET", "/v1beta3/crypto/us/bars", 429))  # rate-limited once on the first fetch
    stop = SimStop(clock, 5)

    def load():
        return load_history(decider, DataConfig())

    outcomes = run_loop(session, load, stop=stop, calendar_code="24/7", feed=feed, clock=lambda: clock[0])
    decided = [e["bar"] for e in session.ledger.events("decision")]
    stamps = [bar_label(int(t * 1e9)) for t in starts]
    # bar k closes at the start of bar k+1: the loop woke after each close, fetched it and decided it, once
    assert decided == stamps[STORED - 1 : STORED + 4]
    assert len(set(decided)) == len(decided)
    assert all(o.status == "done" for o in outcomes), [(o.bar, o.status) for o in outcomes]
    assert sleeps == [1.0] and len(session.ledger.events("fetch_retry")) == 1
    panel = load()
    np.testing.assert_array_equal(panel.close[:, 1], [b["c"] for b in fake.bars["ETH/USD"][: STORED + 4]])
    _no_keys_in(tmp_path, *_dirs())


def test_trade_fetch_accepts_alpaca(fake, monkeypatch):
    feed = bar_feed("alpaca", None, None)
    assert feed is not None and feed.fetch.provider == "alpaca" and feed.fetch.alpaca_url == fake.url
    assert KEY not in repr(feed) and SECRET not in repr(feed)
    assert TradeConfig(fetch="alpaca").fetch == "alpaca"
    from mqc.core.profiles import resolve_with_profile

    monkeypatch.setenv("MQC_TRADE_FETCH", "alpaca")  # [trade] fetch and [fetch] provider take it
    monkeypatch.setenv("MQC_FETCH_PROVIDER", "alpaca")
    assert resolve_with_profile(TradeConfig, None).value.fetch == "alpaca"
    assert resolve_with_profile(FetchConfig, None).value.provider == "alpaca"
    assert feed.provider_symbols(("BTC-USD", "AAPL"), "1d")[0] == ["BTC/USD", "AAPL"]
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(BrokerError, match="APCA_API_KEY_ID and APCA_API_SECRET_KEY"):
        bar_feed("alpaca", None, None)


def test_mqc_trade_fetch_alpaca_once_on_the_fake_server(fake, tmp_path):
    """What users type: ``mqc trade --paper --only naive --symbols BTC-USD,ETH-USD --fetch alpaca --once``
    on an empty catalog: the history comes from Alpaca first, today's forming bar is left out, the latest
    closed bar is decided; a second run decides nothing again."""
    import time

    now = time.time()
    today = now - now % DAY
    if now - today > DAY - 120:
        pytest.skip("too close to 00:00 UTC: the day could close during the test")
    fake.now = now
    starts = [today - i * DAY for i in range(200)][::-1]  # the last one is today's, still forming
    for k, pair in enumerate(PAIRS):
        fake.bars[pair] = _bars(starts, seed=20 + k)
    fake.page_size = 90
    led = tmp_path / "ledger.db"
    args = ["trade", "--paper", "--only", "naive", "--symbols", "BTC-USD,ETH-USD", "--fetch", "alpaca", "--once"]
    first = runner.invoke(app, [*args, "--ledger", str(led)])
    assert first.exit_code == 0, first.output
    df = Catalog().load("ETH-USD", "1d")
    np.testing.assert_array_equal(df["close"].to_numpy(), [b["c"] for b in fake.bars["ETH/USD"][:-1]])
    yesterday = bar_label(int(starts[-2] * 1e9))
    assert f"{yesterday} done" in first.output
    second = runner.invoke(app, [*args, "--ledger", str(led)])
    assert second.exit_code == 0, second.output
    from mqc.core.trade.ledger import Ledger

    ledger = Ledger.open(led, create=False)
    assert [e["bar"] for e in ledger.events("decision")] == [yesterday]
    ledger.close()
    _no_keys_in(tmp_path, *_dirs(), text=first.output + second.output)


def test_pages_that_are_empty_or_malformed(fake):
    """``"bars": null`` (nothing in the range) is no bars; an answer without ``bars`` is a clear error."""
    from mqc.core.data.alpaca_bars import _page

    class Answer:
        def __init__(self, doc):
            self.doc = doc

        def request(self, *a, **k):
            return self.doc

    assert _page(Answer({"bars": None, "next_page_token": None}), "/v2/stocks/bars", {}, "AAPL")["bars"] == {}
    with pytest.raises(DataError, match="without a 'bars' object"):
        _page(Answer({"message": "?"}), "/v2/stocks/bars", {}, "AAPL")
    with pytest.raises(DataError, match="alpaca returned no bars for AAPL"):
        alpaca_bars.parse_alpaca([], "AAPL", "1d", crypto=False)
