"""How the catalog writes files: staged atomic writes, the Parquet layout, the content hash computed
while the file is written, and failures that leave the catalog byte-identical."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mqc.core import atomic
from mqc.core.data import catalog as catalog_mod
from mqc.core.data.catalog import Catalog, WriteItem, hash_arrays
from mqc.core.data.importer import import_paths


def minute_csv(path, n: int, seed: int = 0, start: str = "2021-01-01"):
    """A clean 24/7 1-minute OHLCV CSV of ``n`` rows (ISO-8601 UTC times), written by pyarrow."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq="1min", tz="UTC")
    close = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
    open_ = np.r_[100.0, close[:-1]]
    table = pa.table(
        {
            "timestamp": pa.array(ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy()),
            "open": open_,
            "high": np.maximum(open_, close) * 1.0002,
            "low": np.minimum(open_, close) * 0.9998,
            "close": close,
            "volume": np.random.default_rng(seed + 1000).lognormal(
                3, 1, n
            ),  # own stream: longer files extend shorter ones
        }
    )
    pacsv.write_csv(table, path)
    return path


def snapshot(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def cat(tmp_path):
    return Catalog(tmp_path / "cat")


def test_staged_file_is_named_only_on_commit(tmp_path):
    with atomic.staged_file(tmp_path, "x") as staged:
        staged.path.write_bytes(b"new")
        assert staged.path.parent == tmp_path and staged.path.name.endswith(".tmp")
        staged.commit(tmp_path / "final.bin")
    assert snapshot(tmp_path) == {"final.bin": b"new"}
    with atomic.staged_file(tmp_path, "y") as staged:  # never committed: the temp file goes
        staged.path.write_bytes(b"unused")
    assert snapshot(tmp_path) == {"final.bin": b"new"}
    with pytest.raises(ValueError, match="can only be committed inside"), atomic.staged_file(tmp_path, "z") as staged:
        staged.commit(tmp_path / "sub" / "final.bin")
    assert snapshot(tmp_path) == {"final.bin": b"new"}


def test_atomic_path_failure_keeps_the_old_file(tmp_path):
    target = tmp_path / "data.json"
    atomic.write_json(target, {"a": 1})
    before = target.read_bytes()
    with pytest.raises(RuntimeError, match="boom"), atomic.atomic_path(target) as tmp:
        tmp.write_bytes(b"half a fi")
        raise RuntimeError("boom")
    assert snapshot(tmp_path) == {"data.json": before}


@pytest.mark.parametrize("threshold", [0, 10**9], ids=["hash-on-thread", "hash-inline"])
def test_stored_file_layout_and_hash(tmp_path, cat, monkeypatch, threshold):
    monkeypatch.setattr(catalog_mod, "_THREADED_HASH_ROWS", threshold)
    res = import_paths([minute_csv(tmp_path / "AAA.csv", 3000)], catalog=cat)
    entry = cat.find("AAA")
    _, ts, cols = cat.load_arrays("AAA")
    assert ts.size == 3000 and res.items[0].status == "new"
    assert entry.sha256 == hash_arrays(ts, cols)
    assert entry.file == f"AAA.{entry.sha256[:12]}.parquet" and cat.verify(entry)
    assert sorted(p.name for p in cat.root.rglob("*") if p.is_file()) == sorted(
        [".lock", ".reserve", "manifest.json", entry.file]
    )  # .reserve: room for a removal on a full disk
    meta = pq.ParquetFile(cat.path_for(entry)).metadata
    chunks = {meta.schema.column(i).name: meta.row_group(0).column(i) for i in range(meta.num_columns)}
    assert "DELTA_BINARY_PACKED" in chunks["timestamp"].encodings
    for name in ("open", "high", "low", "close", "volume"):
        assert not any("DICTIONARY" in e for e in chunks[name].encodings), chunks[name].encodings
        assert chunks[name].compression == "SNAPPY"
    assert pq.read_schema(cat.path_for(entry)).field("timestamp").type == pa.timestamp("ns", tz="UTC")


def test_threaded_and_inline_hash_agree(tmp_path, monkeypatch):
    csv = minute_csv(tmp_path / "AAA.csv", 2000, seed=4)
    shas = []
    for k, threshold in enumerate((0, 10**9)):
        monkeypatch.setattr(catalog_mod, "_THREADED_HASH_ROWS", threshold)
        c = Catalog(tmp_path / f"cat{k}")
        import_paths([csv], catalog=c)
        shas.append(c.find("AAA").sha256)
    assert shas[0] == shas[1] and len(shas[0]) == 64


def _only_data_files(cat) -> list[str]:
    return sorted(p.name for p in cat.root.rglob("*") if p.is_file() and p.suffix in (".parquet", ".tmp"))


def test_failed_file_write_leaves_the_catalog_byte_identical(tmp_path, cat, monkeypatch):
    import_paths([minute_csv(tmp_path / "AAA.csv", 500)], catalog=cat)
    before = snapshot(cat.root)
    new_dir = tmp_path / "new"
    new_dir.mkdir()
    paths = [minute_csv(new_dir / "AAA.csv", 800), minute_csv(new_dir / "BBB.csv", 300, seed=1)]
    real = catalog_mod.write_bars
    calls = []

    def disk_full(path, ts, cols):
        calls.append(path)
        if len(calls) == 2:  # the first file is written, the second breaks half-way
            path.write_bytes(b"PAR1 torn")
            raise OSError(28, "No space left on device")
        return real(path, ts, cols)

    monkeypatch.setattr(catalog_mod, "write_bars", disk_full)
    with pytest.raises(OSError, match="(?i)no space left"):  # a StorageError naming the folder
        import_paths(paths, catalog=cat)
    after = snapshot(cat.root)
    # Only the first new file (an orphan no manifest names) was added; no temp file is left behind.
    extra = set(after) - set(before)
    assert {k: v for k, v in after.items() if k in before} == before
    assert len(extra) == 1 and next(iter(extra)).endswith(".parquet")
    monkeypatch.setattr(catalog_mod, "write_bars", real)
    res = import_paths(paths, catalog=cat)  # the next write sweeps the orphan and commits
    assert [i.rows for i in res.items] == [800, 300]
    assert _only_data_files(cat) == sorted(cat.path_for(e).name for e in cat.entries())


def test_failed_hash_thread_leaves_the_catalog_byte_identical(tmp_path, cat, monkeypatch):
    import_paths([minute_csv(tmp_path / "AAA.csv", 500)], catalog=cat)
    before = snapshot(cat.root)
    monkeypatch.setattr(catalog_mod, "_THREADED_HASH_ROWS", 0)

    def broken_hash(ts, cols):
        raise MemoryError("hash failed")

    monkeypatch.setattr(catalog_mod, "hash_arrays", broken_hash)
    with pytest.raises(MemoryError, match="hash failed"):
        import_paths([minute_csv(tmp_path / "new.csv", 900)], symbol="AAA", catalog=cat)
    assert snapshot(cat.root) == before


def test_batch_with_two_deliveries_of_one_symbol_hashes_each(tmp_path, cat):
    ts = pd.date_range("2021-01-01", periods=100, freq="1D", tz="UTC").asi8
    rng = np.random.default_rng(0)
    close = 50 + rng.random(100)
    cols = {"open": close, "high": close + 1, "low": close - 1, "close": close, "volume": rng.random(100)}
    first = WriteItem("AAA", ts[:60], {c: v[:60] for c, v in cols.items()}, source="a")
    second = WriteItem("AAA", ts, cols, source="b")
    r1, r2 = cat.write_many([first, second])
    assert (r1.status, r1.entry.rows, r2.status, r2.entry.rows) == ("new", 60, "appended", 100)
    assert (
        r1.entry.sha256 == hash_arrays(first.ts, first.cols) and r1.entry.file == f"AAA.{r1.entry.sha256[:12]}.parquet"
    )
    assert r2.entry.sha256 == hash_arrays(ts, cols) == cat.find("AAA").sha256
    assert _only_data_files(cat) == [r2.entry.file]  # only the final state of the batch is stored
