"""``--replace`` over a shorter range after the provider re-adjusted its history (split / dividend)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog, WriteItem
from mqc.core.data.config import ImportConfig
from mqc.core.data.importer import import_paths
from mqc.core.errors import DataError

COLS = ("open", "high", "low", "close", "volume")
PRICES = COLS[:4]


def bars(n: int = 300, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    ts = pd.date_range("2020-01-01", periods=n, freq="D", tz="UTC").as_unit("ns").asi8
    cols = {
        "open": close * 1.001,
        "high": close * 1.02,
        "low": close * 0.98,
        "close": close,
        "volume": rng.uniform(1e5, 2e5, n),
    }
    return ts, cols


def tail(ts, cols, k, price_factor=1.0, volume_factor=1.0):
    out = {c: v[-k:] * (volume_factor if c == "volume" else price_factor) for c, v in cols.items()}
    return ts[-k:], out


def snapshot(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def stored(tmp_path):
    """A catalog with the first 250 of 300 bars of XYZ stored on the old basis."""
    cat = Catalog(tmp_path / "cat")
    ts, cols = bars()
    cat.write_many([WriteItem("XYZ", ts[:-50], {c: v[:-50] for c, v in cols.items()}, "old", "1d")])
    return cat, ts, cols


def max_abs_log_return(cat):
    _, _, c = cat.load_arrays("XYZ", "1d")
    return float(np.abs(np.diff(np.log(c["close"]))).max())


def test_clean_readjustment_rescales_the_kept_history(stored):
    cat, ts, cols = stored
    assert max_abs_log_return(cat) < 0.1
    nts, ncols = tail(ts, cols, 100, price_factor=0.5)  # dividend-style: prices only
    (res,) = cat.write_many([WriteItem("XYZ", nts, ncols, "new", "1d")], replace=True)
    assert res.status == "replaced" and res.added == 50 and res.overwritten == 50
    assert res.rescaled == 200 and res.price_factor == pytest.approx(0.5) and res.volume_factor == pytest.approx(1.0)
    assert "re-adjusted" in res.note
    _, t2, c2 = cat.load_arrays("XYZ", "1d")
    np.testing.assert_array_equal(t2, ts)
    for c in PRICES:  # the whole history is now on the new basis: no fake -50% at the seam
        np.testing.assert_allclose(c2[c], cols[c] * 0.5, rtol=1e-12)
    np.testing.assert_allclose(c2["volume"], cols["volume"], rtol=1e-12)
    assert max_abs_log_return(cat) < 0.1


def test_split_scales_volume_by_the_inverse(stored):
    cat, ts, cols = stored
    nts, ncols = tail(ts, cols, 100, price_factor=0.25, volume_factor=4.0)  # a 4:1 split
    (res,) = cat.write_many([WriteItem("XYZ", nts, ncols, "new", "1d")], replace=True)
    assert res.price_factor == pytest.approx(0.25) and res.volume_factor == pytest.approx(4.0)
    _, _, c2 = cat.load_arrays("XYZ", "1d")
    np.testing.assert_allclose(c2["volume"][:200], cols["volume"][:200] * 4.0, rtol=1e-12)
    np.testing.assert_allclose(c2["close"][:200], cols["close"][:200] * 0.25, rtol=1e-12)


def test_noisy_readjustment_is_refused_and_nothing_changes(stored):
    cat, ts, cols = stored
    nts, ncols = tail(ts, cols, 100, price_factor=0.5)
    for c in PRICES:
        ncols[c][:25] *= 1.2  # two bases inside the overlap: no single factor explains it
    before = snapshot(cat.root)
    with pytest.raises(DataError, match="another adjustment basis") as exc:
        cat.write_many([WriteItem("XYZ", nts, ncols, "new", "1d")], replace=True)
    assert "mqc data remove XYZ" in exc.value.hint
    assert snapshot(cat.root) == before


def test_corrections_merge_as_before(stored):
    cat, ts, cols = stored
    nts, ncols = tail(ts, cols, 60)
    ncols["close"][:10] *= 1.01  # ten revised closes (open untouched): corrections, not a rebase
    ncols["high"][:10] = np.maximum(ncols["high"][:10], ncols["close"][:10])
    (res,) = cat.write_many([WriteItem("XYZ", nts, ncols, "new", "1d")], replace=True)
    assert (res.status, res.overwritten, res.rescaled, res.note) == ("replaced", 10, 0, "")
    _, _, c2 = cat.load_arrays("XYZ", "1d")
    np.testing.assert_array_equal(c2["close"][:240], cols["close"][:240])


def test_full_overlap_needs_no_rescale(tmp_path):
    cat = Catalog(tmp_path / "cat")
    ts, cols = bars(50)
    cat.write_many([WriteItem("XYZ", ts, cols, "old", "1d")])
    (res,) = cat.write_many([WriteItem("XYZ", *tail(ts, cols, 50, price_factor=0.5), "new", "1d")], replace=True)
    assert res.overwritten == 50 and res.rescaled == 0


def test_import_reports_the_rescale(tmp_path, stored):
    cat, ts, cols = stored
    nts, ncols = tail(ts, cols, 100, price_factor=0.5)
    df = pd.DataFrame({"timestamp": pd.to_datetime(nts, utc=True).strftime("%Y-%m-%d"), **ncols})
    path = tmp_path / "XYZ.csv"
    df.to_csv(path, index=False)
    res = import_paths([path], ImportConfig(replace=True), catalog=cat)
    item = res.items[0]
    assert item.rescaled == 200 and item.to_dict()["price_factor"] == pytest.approx(0.5)
    assert any(i.kind == "rebased" and i.action == "warning" for i in item.report.issues)


def test_real_spy_readjusted_refetch(tmp_path, shared_ohlcv):
    """The review's reproduction: a shorter re-fetch on a new basis left a fake -50% day at the seam."""
    df = pd.read_csv(shared_ohlcv / "daily" / "SPY.csv")
    ts = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ns, UTC]").astype(np.int64).to_numpy()
    cols = {c: df[c].to_numpy(float) for c in COLS}
    cat = Catalog(tmp_path / "cat")
    cat.write_many(
        [WriteItem("SPYX", ts[:-50], {c: v[:-50] for c, v in cols.items()}, "yfinance:SPY", "1d", "equity", "adjusted")]
    )
    k = 100
    new = {c: v[-k:] * (1.0 if c == "volume" else 0.5) for c, v in cols.items()}
    cat.write_many([WriteItem("SPYX", ts[-k:], new, "yfinance:SPY", "1d", "equity", "adjusted")], replace=True)
    _, _, c2 = cat.load_arrays("SPYX", "1d")
    r = c2["close"][1:] / c2["close"][:-1] - 1
    np.testing.assert_allclose(r, cols["close"][1:] / cols["close"][:-1] - 1, atol=1e-12)
    assert r.min() > -0.2  # SPY's worst real day is about -11%
