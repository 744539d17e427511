"""Daily panels mixing crypto (24:00 UTC close) with equities (20:00-21:00 UTC close): warn, lag or refuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog, WriteItem
from mqc.core.data.config import DataConfig
from mqc.core.data.panel import align_arrays, load_panel
from mqc.core.errors import ConfigError, DataError

COLS = ("open", "high", "low", "close", "volume")


def _series(ts: np.ndarray, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, ts.size)))
    cols = {
        "open": close * 0.999,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": np.full(ts.size, 1e3),
    }
    return ts.astype(np.int64), cols


def _days(start: str, n: int, weekdays_only: bool = False) -> np.ndarray:
    idx = (
        pd.bdate_range(start, periods=n, tz="UTC")
        if weekdays_only
        else pd.date_range(start, periods=n, freq="D", tz="UTC")
    )
    return idx.as_unit("ns").asi8


@pytest.fixture
def mixed():
    return {"SPYX": _series(_days("2024-01-01", 60, True), 1), "BTC-USD": _series(_days("2024-01-01", 90), 2)}


def test_daily_mix_warns_with_remedy(mixed):
    p = align_arrays(mixed, timeframe="1d")
    msg = [w for w in p.report.warnings if "mixes crypto" in w]
    assert len(msg) == 1 and "look-ahead" in msg[0] and "lag_crypto" in msg[0] and "BTC-USD" in msg[0]
    assert p.report.lagged == []


def test_no_warning_without_mix_or_intraday(mixed):
    only_crypto = align_arrays(
        {"BTC-USD": mixed["BTC-USD"], "ETH-USD": _series(_days("2024-01-01", 90), 3)}, timeframe="1d"
    )
    assert not any("mixes crypto" in w for w in only_crypto.report.warnings)
    hours = pd.date_range("2024-01-02 14:00", periods=50, freq="h", tz="UTC").as_unit("ns").asi8
    intraday = align_arrays({"SPYX": _series(hours, 1), "BTC-USD": _series(hours, 2)})
    assert intraday.timeframe == "1h" and not any("mixes crypto" in w for w in intraday.report.warnings)


def test_error_mode_refuses(mixed):
    with pytest.raises(DataError, match="mixes crypto") as exc:
        align_arrays(mixed, timeframe="1d", mixed_close="error")
    assert "lag_crypto" in exc.value.hint


def test_lag_crypto_uses_previous_bar(mixed):
    p = align_arrays(mixed, timeframe="1d", mixed_close="lag_crypto")
    assert p.report.lagged == ["BTC-USD"]
    ts, cols = mixed["BTC-USD"]
    a = p.symbols.index("BTC-USD")
    for t, stamp in enumerate(p.timestamps.astype(np.int64)):
        i = int(np.searchsorted(ts, stamp))
        assert ts[i] == stamp  # crypto trades every day: a real bar exists at each date
        np.testing.assert_array_equal(p.values[t, a], [cols[c][i - 1] for c in COLS])  # bar D-1 at date D
    # Equities are untouched: their close at D is their own last bar at or before D (weekends filled).
    e_ts, e_cols = mixed["SPYX"]
    e = p.symbols.index("SPYX")
    j = np.searchsorted(e_ts, p.timestamps.astype(np.int64), "right") - 1
    np.testing.assert_array_equal(p.close[:, e], e_cols["close"][j])


def test_lag_crypto_is_causal(mixed):
    """Perturbing crypto bar D must leave every panel value up to date D unchanged (it shows at D+1)."""
    base = align_arrays(mixed, timeframe="1d", mixed_close="lag_crypto")
    ts, cols = mixed["BTC-USD"]
    k = int(np.searchsorted(ts, base.timestamps[20].astype(np.int64)))  # crypto bar at panel date 20
    bumped = {c: v.copy() for c, v in cols.items()}
    for c in COLS:
        bumped[c][k:] *= 3.0
    after = align_arrays({**mixed, "BTC-USD": (ts, bumped)}, timeframe="1d", mixed_close="lag_crypto")
    np.testing.assert_array_equal(after.values[:21], base.values[:21])
    assert not np.array_equal(after.values[21:], base.values[21:])
    # Without the lag the same perturbation shows at date 20 itself: the look-ahead the option removes.
    plain = align_arrays(mixed, timeframe="1d")
    plain_bumped = align_arrays({**mixed, "BTC-USD": (ts, bumped)}, timeframe="1d")
    t20 = int(np.searchsorted(plain.timestamps, base.timestamps[20]))
    assert not np.array_equal(plain_bumped.values[t20], plain.values[t20])


def test_load_panel_config_option(mixed, tmp_path):
    cat = Catalog(tmp_path / "cat")
    cat.write_many([WriteItem(s, ts, cols, "test", "1d") for s, (ts, cols) in mixed.items()])
    warned = load_panel(("SPYX", "BTC-USD"), "1d", catalog=cat)
    assert any("mixes crypto" in w for w in warned.report.warnings)
    lagged = load_panel(config=DataConfig(symbols=("SPYX", "BTC-USD"), mixed_close="lag_crypto"), catalog=cat)
    assert lagged.report.lagged == ["BTC-USD"] and lagged.describe()["lagged"] == ["BTC-USD"]
    with pytest.raises(DataError):
        load_panel(config=DataConfig(symbols=("SPYX", "BTC-USD"), mixed_close="error"), catalog=cat)
    with pytest.raises(ConfigError, match="mixed_close"):
        DataConfig(mixed_close="later")  # type: ignore[arg-type]


def test_real_spy_btc_warns(shared_ohlcv):
    frames = {}
    for s in ("SPY", "BTCUSDT"):
        df = pd.read_csv(shared_ohlcv / "daily" / f"{s}.csv")
        ts = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]").astype(np.int64).to_numpy()
        frames[s] = (ts, {c: df[c].to_numpy(float) for c in COLS})
    p = align_arrays(frames, timeframe="1d")
    assert p.asset_classes == ("equity", "crypto")
    assert any("mixes crypto" in w for w in p.report.warnings)
