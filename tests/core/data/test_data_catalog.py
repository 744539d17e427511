"""Catalog writes: import idempotency, appends, conflicts, atomic failure, export round trip."""

from __future__ import annotations

import hashlib

import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import ImportConfig
from mqc.core.data.importer import import_paths, validate_paths
from mqc.core.data.summary import export_symbol, sparkline, summarize
from mqc.core.errors import ArtifactNotFound, DataError


def write_csv(path, df):
    df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    return path


def snapshot(root):
    """Every file under the catalog with its content hash (byte-for-byte comparison)."""
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def cat(tmp_path):
    return Catalog(tmp_path / "cat")


def test_import_twice_is_idempotent(tmp_path, synth, cat):
    p = write_csv(tmp_path / "AAA.csv", synth(n_assets=1, n_bars=200)["SYN0"])
    r1 = import_paths([p], catalog=cat)
    before = snapshot(cat.root)
    r2 = import_paths([p], catalog=cat)
    assert [i.status for i in r1.items] == ["new"] and [i.status for i in r2.items] == ["unchanged"]
    assert snapshot(cat.root) == before
    assert cat.verify(cat.find("AAA"))


def test_append_newer_bars_without_duplicates(tmp_path, synth, cat):
    df = synth(n_assets=1, n_bars=300)["SYN0"]
    import_paths([write_csv(tmp_path / "AAA.csv", df.iloc[:200])], catalog=cat)
    res = import_paths([write_csv(tmp_path / "AAA.csv", df.iloc[150:])], catalog=cat)  # overlaps 50 bars
    item = res.items[0]
    assert (item.status, item.added, item.rows) == ("appended", 100, 300)
    stored = cat.load("AAA")
    assert stored["timestamp"].is_unique and len(stored) == 300
    assert stored["close"].round(6).tolist() == df["close"].round(6).tolist()


def test_conflicting_bar_refused_then_replace(tmp_path, synth, cat):
    df = synth(n_assets=1, n_bars=100)["SYN0"]
    import_paths([write_csv(tmp_path / "AAA.csv", df)], catalog=cat)
    before = snapshot(cat.root)
    changed = df.copy()
    changed.loc[10, "close"] = changed.loc[10, "close"] * 1.01
    changed.loc[10, "high"] = changed.loc[10, ["high", "close"]].max()
    p = write_csv(tmp_path / "AAA.csv", changed)
    with pytest.raises(
        DataError,
        match=r"bar 2015-01-11 00:00:00\+00:00 of AAA differs from the stored one \(field 'high'|field 'close'",
    ):
        import_paths([p], catalog=cat)
    assert snapshot(cat.root) == before
    res = import_paths([p], ImportConfig(replace=True), catalog=cat)
    assert res.items[0].status == "replaced"


def test_failing_batch_leaves_catalog_byte_for_byte(tmp_path, synth, cat):
    frames = synth(n_assets=2, n_bars=100)
    import_paths([write_csv(tmp_path / "AAA.csv", frames["SYN0"])], catalog=cat)
    before = snapshot(cat.root)
    good = write_csv(tmp_path / "BBB.csv", frames["SYN1"])
    newer = write_csv(tmp_path / "AAA2.csv", synth(n_assets=1, n_bars=150)["SYN0"])
    bad = tmp_path / "ZZZ.csv"
    bad.write_text("timestamp,open,high,low,close,volume\n2020-01-01,1,2,0.5,-1,10\n2020-01-02,1,2,0.5,1,10\n")
    with pytest.raises(DataError, match=r"ZZZ\.csv: row 2, field 'close': price must be > 0, got -1"):
        import_paths([good, newer, bad], catalog=cat)
    assert snapshot(cat.root) == before


def test_validate_writes_nothing_and_lists_every_failing_file(tmp_path, synth, cat):
    good = write_csv(tmp_path / "AAA.csv", synth(n_assets=1, n_bars=50)["SYN0"])
    (tmp_path / "E.csv").write_text("")
    res = validate_paths([good, tmp_path / "E.csv"])
    assert [i.symbol for i in res.items] == ["AAA"]
    assert len(res.errors) == 1 and res.errors[0]["error"].endswith("E.csv: the file is empty")
    assert not cat.root.exists()


def test_symbol_override_and_single_file_rule(tmp_path, synth, cat):
    frames = synth(n_assets=2, n_bars=50)
    a = write_csv(tmp_path / "one.csv", frames["SYN0"])
    b = write_csv(tmp_path / "two.csv", frames["SYN1"])
    res = import_paths([a], symbol="btc/usdt", timeframe="1D", catalog=cat)
    assert (res.items[0].symbol, res.items[0].timeframe) == ("BTC-USDT", "1d")
    assert cat.find("BTC-USDT").asset_class == "crypto"
    with pytest.raises(DataError, match="--symbol BTC given for 2 files"):
        import_paths([a, b], symbol="BTC", catalog=cat)


def test_remove_and_did_you_mean(tmp_path, synth, cat):
    import_paths([write_csv(tmp_path / "AAPL.csv", synth(n_assets=1, n_bars=50)["SYN0"])], catalog=cat)
    with pytest.raises(ArtifactNotFound, match="did you mean 'AAPL'"):
        cat.find("AAPLE")
    cat.remove("AAPL")
    assert cat.entries() == []
    assert not (cat.root / "1d" / "AAPL.parquet").exists()


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_round_trip_is_exact(tmp_path, synth, cat, fmt):
    import_paths([write_csv(tmp_path / "AAA.csv", synth(n_assets=1, n_bars=80, timeframe="1h")["SYN0"])], catalog=cat)
    path = export_symbol("AAA", fmt, tmp_path / f"out.{fmt}", catalog=cat)
    other = Catalog(tmp_path / "other")
    import_paths([path], symbol="AAA", catalog=other)
    assert other.find("AAA").sha256 == cat.find("AAA").sha256
    if fmt == "csv":
        assert path.read_text().splitlines()[1].startswith("2015-01-01T00:00:00Z,")


def test_summary_and_sparkline(tmp_path, synth, cat):
    import_paths([write_csv(tmp_path / "AAA.csv", synth(n_assets=1, n_bars=400)["SYN0"])], catalog=cat)
    s = summarize("AAA", catalog=cat, last=3, width=40)
    assert s.stats["rows"] == 400 and len(s.last_bars) == 3 and len(s.closes) == 40 and s.verified
    assert s.last_bars[-1]["timestamp"].startswith(str(cat.load("AAA")["timestamp"].iloc[-1].date()))
    line = sparkline([1, 2, 3, 4, 5, 6, 7, 8])
    assert line == "▁▂▃▄▅▆▇█"
    assert sparkline([3, 3, 3]) == "▁▁▁"


def test_write_api_accepts_frames(cat, synth):
    df = synth(n_assets=1, n_bars=30)["SYN0"]
    r = cat.write("abc", df, source="test")
    assert r.status == "new" and cat.write("ABC", df, source="test").status == "unchanged"
    got = cat.load("ABC")
    assert str(got["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert got["timestamp"].iloc[0] == pd.Timestamp("2015-01-01", tz="UTC")
