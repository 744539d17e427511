"""Catalog integrity: --replace merges (never wipes history), the manifest rename is the single commit
point, torn files are detected on load, and catalogs of the older file layout keep working."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mqc.core import atomic
from mqc.core.data.catalog import Catalog
from mqc.core.data.config import ImportConfig
from mqc.core.data.importer import import_paths
from mqc.core.errors import DataError


def write_csv(path, df):
    df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    return path


@pytest.fixture
def cat(tmp_path):
    return Catalog(tmp_path / "cat")


def parquet_files(cat):
    return sorted(p.name for p in cat.root.rglob("*.parquet"))


def test_replace_merges_overlap_and_keeps_the_rest_of_the_history(tmp_path, synth, cat):
    df = synth(n_assets=1, n_bars=300)["SYN0"]
    import_paths([write_csv(tmp_path / "AAA.csv", df.iloc[:290])], catalog=cat)
    # A vendor correction: the last 10 stored bars re-delivered (one revised) plus 5 new ones.
    fix = df.iloc[280:295].copy()
    i = fix.index[5]
    fix.loc[i, "close"] *= 1.001
    fix.loc[i, "high"] = max(fix.loc[i, "high"], fix.loc[i, "close"])
    res = import_paths([write_csv(tmp_path / "fix.csv", fix)], ImportConfig(replace=True), symbol="AAA", catalog=cat)
    item = res.items[0]
    assert (item.status, item.added, item.overwritten, item.rows) == ("replaced", 5, 1, 295)
    stored = cat.load("AAA")
    assert len(stored) == 295 and stored["timestamp"].is_unique
    np.testing.assert_allclose(stored["close"].iloc[:285], df["close"].iloc[:285], rtol=1e-12)  # history kept
    assert stored["close"].iloc[285] == pytest.approx(fix.loc[i, "close"], rel=1e-12)  # the revised bar
    assert item.to_dict()["overwritten"] == 1
    assert cat.verify(cat.find("AAA"))


def test_replace_with_identical_bars_is_unchanged(tmp_path, synth, cat):
    df = synth(n_assets=1, n_bars=100)["SYN0"]
    p = write_csv(tmp_path / "AAA.csv", df)
    import_paths([p], catalog=cat)
    res = import_paths(
        [write_csv(tmp_path / "tail.csv", df.iloc[-10:])], ImportConfig(replace=True), symbol="AAA", catalog=cat
    )
    assert (res.items[0].status, res.items[0].rows) == ("unchanged", 100)


def test_failed_manifest_write_leaves_every_symbol_as_it_was(tmp_path, synth, cat, monkeypatch):
    frames = synth(n_assets=2, n_bars=200)
    import_paths(
        [
            write_csv(tmp_path / "AAA.csv", frames["SYN0"].iloc[:100]),
            write_csv(tmp_path / "BBB.csv", frames["SYN1"].iloc[:100]),
        ],
        catalog=cat,
    )
    old = {s: cat.load(s) for s in ("AAA", "BBB")}
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    paths = [write_csv(new_dir / "AAA.csv", frames["SYN0"]), write_csv(new_dir / "BBB.csv", frames["SYN1"])]
    real = atomic.write_json

    def disk_full(path, obj, **kw):
        if str(path).endswith("manifest.json"):
            raise OSError(28, "No space left on device")
        return real(path, obj, **kw)

    monkeypatch.setattr(atomic, "write_json", disk_full)
    with pytest.raises(OSError, match="No space left"):
        import_paths(paths, catalog=cat)
    monkeypatch.setattr(atomic, "write_json", real)
    for s in ("AAA", "BBB"):
        entry = cat.find(s)
        assert entry.rows == 100 and cat.verify(entry)
        pd.testing.assert_frame_equal(cat.load(s), old[s])
    assert len(parquet_files(cat)) == 4  # two committed + two orphans of the failed batch
    # The next write sweeps the orphans and commits; only referenced files remain.
    res = import_paths(paths, catalog=cat)
    assert [i.rows for i in res.items] == [200, 200]
    assert parquet_files(cat) == sorted(cat.path_for(e).name for e in cat.entries())


def test_row_count_mismatch_is_detected_on_load(tmp_path, synth, cat):
    import pyarrow.parquet as pq

    frames = synth(n_assets=1, n_bars=120)
    import_paths([write_csv(tmp_path / "AAA.csv", frames["SYN0"].iloc[:100])], catalog=cat)
    entry = cat.find("AAA")
    # A file the manifest does not describe (e.g. a torn write of the older layout).
    table = pq.read_table(cat.path_for(entry))
    pq.write_table(table.slice(0, 80), cat.path_for(entry))
    with pytest.raises(DataError, match=r"1d/AAA: .* holds 80 bars but the manifest says 100") as exc:
        cat.load_arrays("AAA")
    assert "mqc data remove AAA" in exc.value.hint
    assert not cat.verify(entry)


def _to_legacy_layout(cat):
    """Rewrite the catalog as the first layout wrote it: <tf>/<SYMBOL>.parquet, no file field."""
    manifest = json.loads(cat.manifest_path.read_text())
    for e in manifest["entries"].values():
        f = cat.root / e["timeframe"] / e.pop("file")
        f.rename(f.with_name(f"{e['symbol']}.parquet"))
        e.pop("adjustment")
    cat.manifest_path.write_text(json.dumps(manifest))


def test_older_layout_loads_and_moves_to_content_addressed_files(tmp_path, synth, cat):
    df = synth(n_assets=1, n_bars=150)["SYN0"]
    import_paths([write_csv(tmp_path / "AAA.csv", df.iloc[:100])], catalog=cat)
    before = cat.load("AAA")
    _to_legacy_layout(cat)
    assert parquet_files(cat) == ["AAA.parquet"] and cat.find("AAA").file == ""
    pd.testing.assert_frame_equal(cat.load("AAA"), before)
    assert cat.verify(cat.find("AAA"))
    res = import_paths([write_csv(tmp_path / "AAA.csv", df)], catalog=cat)
    assert (res.items[0].status, res.items[0].rows) == ("appended", 150)
    entry = cat.find("AAA")
    assert parquet_files(cat) == [entry.file] and entry.file == f"AAA.{entry.sha256[:12]}.parquet"


def test_remove_deletes_the_data_file(tmp_path, synth, cat):
    import_paths([write_csv(tmp_path / "AAA.csv", synth(n_assets=1, n_bars=50)["SYN0"])], catalog=cat)
    cat.remove("AAA")
    assert parquet_files(cat) == [] and cat.entries() == []


def test_manifest_temp_file_left_by_a_crash_is_swept_by_the_next_write(tmp_path, synth, cat):
    frames = synth(n_assets=1, n_bars=120)
    import_paths([write_csv(tmp_path / "AAA.csv", frames["SYN0"].iloc[:100])], catalog=cat)
    # What a kill between writing the manifest's temp file and renaming it leaves behind.
    stale = cat.manifest_path.parent / f".{cat.manifest_path.name}.abc123.tmp"
    stale.write_text("{partial")
    import_paths([write_csv(tmp_path / "AAA.csv", frames["SYN0"])], catalog=cat)
    assert not stale.exists() and cat.find("AAA").rows == 120
