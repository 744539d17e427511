"""``mqc trade --fetch ccxt``: each bar the loop fetches the new bars into the catalog (an injected
fake exchange, no network), decides each new bar exactly once, records and skips an outage, and
refuses a bad row without touching the catalog."""

from __future__ import annotations

import numpy as np
import pytest
from simclock import SimStop

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import DataConfig, FetchConfig, ImportConfig
from mqc.core.data.fetch import fetch_symbols
from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.feed import BarFeed, bar_feed
from mqc.core.trade.loop import bar_label
from mqc.core.trade.order_decide import order_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, run_loop

DAY = 86_400_000  # ms
PAIRS = ("BTC/USDT", "ETH/USDT")
SYMS = ("BTC-USDT", "ETH-USDT")
STORED = 150  # bars in the catalog before the loop starts


class NetworkError(Exception):
    """Named like ccxt's: retryable."""


class FakeExchange:
    """ccxt's ``fetch_ohlcv`` over fixed bars; serves the bars that have started by the clock (the
    last one still forming), ``delay_ms`` after they close. ``down``: calls that fail."""

    id = "binance"

    def __init__(self, rows: dict[str, np.ndarray], clock: list[int]) -> None:
        self.rows, self.clock = rows, clock
        self.down = 0
        self.delay_ms = 0
        self.calls = 0
        self.bad: dict[str, int] = {}  # pair -> bar start (ms) served with high < low

    def fetch_ohlcv(self, symbol, timeframe, since=None, limit=None):
        self.calls += 1
        if self.down:
            self.down -= 1
            raise NetworkError("connection reset by peer")
        now_ms = self.clock[0] // 1_000_000
        r = self.rows[symbol]
        start = r[:, 0]
        forming = (start <= now_ms) & (start + DAY > now_ms)
        keep = forming | (start + DAY + self.delay_ms <= now_ms)  # closed bars: once delivered
        if since is not None:
            keep &= r[:, 0] >= since
        out = r[keep][-(limit or 1000) :].tolist()
        for row in out:
            if self.bad.get(symbol) == row[0]:
                row[2], row[3] = row[3] * 0.9, row[2] * 1.1  # high below low
        return out


@pytest.fixture
def market(synth):
    frames = synth(n_assets=2, n_bars=STORED + 20, seed=5, timeframe="1d")
    rows = {}
    for pair, df in zip(PAIRS, frames.values(), strict=True):
        ms = df["timestamp"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000
        rows[pair] = np.column_stack([ms, df[["open", "high", "low", "close", "volume"]].to_numpy()])
    clock = [int(rows[PAIRS[0]][STORED, 0]) * 1_000_000 + 1_000_000_000]  # 1 s into bar STORED
    ex = FakeExchange(rows, clock)
    cfg = FetchConfig(provider="ccxt", timeframe="1d", retries=2, backoff_s=1.0)
    fetch_symbols(list(PAIRS), cfg, ImportConfig(), client=ex, now=clock[0] / 1e9)  # the history to start from
    return ex, clock, cfg


def _session(tmp_path, ex, cfg, **trade):
    decider = order_decider("maxdiff", SYMS, "1d", MarketConfig(), only="naive")
    tcfg = TradeConfig(**trade)
    path = tmp_path / "ledger.db"
    session = open_session(tcfg, decider, path, open_broker(tcfg, path, decider.market, decider=decider))
    sleeps: list[float] = []
    feed = BarFeed(cfg, ImportConfig(), client=ex, sleep=sleeps.append)
    return session, feed, sleeps, lambda: load_history(decider, DataConfig())


def _stamp(ex, i: int) -> str:
    return bar_label(int(ex.rows[PAIRS[0]][i, 0]) * 1_000_000)


def _rows() -> dict[str, int]:
    return {e.symbol: e.rows for e in Catalog().entries("1d")}


def _on_hooks(ex, clock, hooks):
    """Run ``hooks[k]`` (on the fake exchange) when the loop is about to fetch for the k-th time."""
    inner = ex.fetch_ohlcv
    seen: set[int] = set()

    def wrapped(symbol, *a, **k):
        it = int(clock[0] // 1_000_000 // DAY)
        if it not in seen:
            seen.add(it)
            hooks.get(len(seen) - 1, lambda: None)()
        return inner(symbol, *a, **k)

    ex.fetch_ohlcv = wrapped


def test_bars_arrive_bar_by_bar_and_each_is_decided_once(tmp_path, market):
    ex, clock, cfg = market
    session, feed, sleeps, load = _session(tmp_path, ex, cfg)
    assert _rows() == dict.fromkeys(SYMS, STORED)

    def bad_bar():  # the provider serves bar STORED + 3 with high < low, then corrects it
        ex.bad["ETH/USDT"] = int(ex.rows["ETH/USDT"][STORED + 3, 0])

    def fixed():
        ex.bad.clear()

    _on_hooks(ex, clock, {2: lambda: setattr(ex, "down", 99), 3: lambda: setattr(ex, "down", 0), 4: bad_bar, 5: fixed})
    stop = SimStop(clock, 7)
    outcomes = run_loop(session, load, stop=stop, calendar_code="24/7", feed=feed, clock=lambda: clock[0])
    decided = [e["bar"] for e in session.ledger.events("decision")]
    # bar k closes at the start of bar k+1: the loop woke after each close, fetched and decided the new bar
    # once; bar STORED+1 was lost to the outage, bar STORED+3 to the bad row (both skipped, never decided late)
    assert decided == [_stamp(ex, i) for i in (STORED - 1, STORED, STORED + 2, STORED + 4, STORED + 5)]
    assert len(set(decided)) == len(decided)
    assert [o.status for o in outcomes] == ["done", "done", "outage", "done", "outage", "done", "done"]
    errors = session.ledger.events("fetch_error")
    assert len(errors) == 2
    assert "NetworkError" in errors[0]["data"]["error"] or "still rate-limited" in errors[0]["data"]["error"]
    assert "high" in errors[1]["data"]["error"]  # the validator's reason, naming the field
    assert sleeps == [1.0, 2.0]  # the outage: retried with backoff, then skipped
    assert len(session.ledger.events("fetch_retry")) == 2
    assert _rows() == dict.fromkeys(SYMS, STORED + 6)
    panel = load()
    np.testing.assert_array_equal(panel.close[:, 1], ex.rows["ETH/USDT"][: STORED + 6, 4])  # the true bars, in order


def test_a_bad_row_leaves_the_catalog_untouched(tmp_path, market):
    ex, clock, cfg = market
    session, feed, _, load = _session(tmp_path, ex, cfg)
    snapshot = {e.symbol: (e.rows, e.sha256, e.last) for e in Catalog().entries("1d")}
    clock[0] += DAY * 1_000_000  # bar STORED has closed
    ex.bad["BTC/USDT"] = int(ex.rows["BTC/USDT"][STORED, 0])
    out = run_loop(session, load, once=True, calendar_code="24/7", feed=feed, clock=lambda: clock[0])
    assert [o.status for o in out] == ["outage"]
    assert snapshot == {e.symbol: (e.rows, e.sha256, e.last) for e in Catalog().entries("1d")}
    assert not session.ledger.events("decision") and not session.ledger.orders()


def test_a_late_bar_is_asked_for_again_and_decided_once(tmp_path, market):
    """The provider delivers each bar 3 minutes after its close: the loop polls until it is there."""
    ex, clock, cfg = market
    ex.delay_ms = 180_000
    session, feed, _, load = _session(tmp_path, ex, cfg)
    stop = SimStop(clock, 12)
    outcomes = run_loop(session, load, stop=stop, calendar_code="24/7", feed=feed, clock=lambda: clock[0])
    decided = [e["bar"] for e in session.ledger.events("decision")]
    assert decided == [_stamp(ex, i) for i in range(STORED - 1, STORED - 1 + len(decided))]
    assert len(decided) >= 3 and all(o.status == "done" for o in outcomes), [(o.bar, o.status) for o in outcomes]
    assert 60.0 in stop.waits  # polled (a minute) while the bar was late


def test_stale_guard_fires_when_the_provider_has_nothing_new(tmp_path, market):
    """The provider answers but has no bar for 5 days: the last bar is too old, nothing is ordered."""
    ex, clock, cfg = market
    ex.delay_ms = 10 * DAY
    clock[0] += 5 * DAY * 1_000_000
    session, feed, _, load = _session(tmp_path, ex, cfg)
    out = run_loop(session, load, once=True, calendar_code="24/7", feed=feed, clock=lambda: clock[0])
    assert [o.status for o in out] == ["stale"] and not session.ledger.orders()
    assert _rows() == dict.fromkeys(SYMS, STORED)


def test_fetch_flag_values(tmp_path):
    assert bar_feed("none", None, None) is None
    with pytest.raises(ConfigError, match="--data-root"):
        bar_feed("ccxt", str(tmp_path), None)
    with pytest.raises(ConfigError, match="expected one of"):
        bar_feed("bloomberg", None, None)


def test_run_trade_fetches_a_symbol_the_catalog_lacks_before_it_starts(tmp_path, synth):
    """mqc trade --fetch ccxt --once on an empty catalog: the history comes first, then the loop runs
    (here on old bars: stale, nothing ordered)."""
    from mqc.core.trade.runner import run_trade

    frames = synth(n_assets=2, n_bars=120, seed=2, timeframe="1d")
    rows = {}
    for pair, df in zip(PAIRS, frames.values(), strict=True):
        ms = df["timestamp"].astype("datetime64[ns, UTC]").astype("int64").to_numpy() // 1_000_000
        rows[pair] = np.column_stack([ms, df[["open", "high", "low", "close", "volume"]].to_numpy()])
    ex = FakeExchange(rows, [int(rows[PAIRS[0]][-1, 0] + 2 * DAY) * 1_000_000])
    feed = BarFeed(FetchConfig(provider="ccxt", timeframe="1d", retries=0), ImportConfig(), client=ex)
    decider = order_decider("maxdiff", SYMS, "1d", MarketConfig(), only="naive")
    assert Catalog().entries("1d") == []
    res = run_trade(
        TradeConfig(), DataConfig(), None, decider=decider, ledger_path=tmp_path / "l.db", once=True, feed=feed
    )
    assert _rows() == dict.fromkeys(SYMS, 120)
    assert [o.status for o in res.outcomes] == ["stale"]
