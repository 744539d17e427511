"""Fault injection on the catalog: hostile manifests, damaged and altered data files, a full disk,
kills at random points. What each test checks is what docs/data.md ("Catalog integrity") promises."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import mqc
from mqc.core import atomic
from mqc.core.data import catalog as catalog_mod
from mqc.core.data import housekeeping
from mqc.core.data.catalog import Catalog, DamagedFile, WriteItem, hash_arrays
from mqc.core.data.config import DataConfig
from mqc.core.data.integrity import verify_catalog
from mqc.core.data.panel import load_panel
from mqc.core.errors import DataError

DAY = 86_400 * 10**9


def bars(n: int = 300, seed: int = 0, scale: float = 1.0):
    """``n`` daily bars; a longer ``n`` of the same seed extends the shorter one."""
    rng = np.random.default_rng(seed)
    ts = (np.arange(n, dtype=np.int64) + 16_000) * DAY
    close = 100 * scale * np.exp(np.cumsum(rng.normal(0, 0.01, 1000)))[:n]
    cols = {
        "open": close * 0.999,
        "high": close * 1.01,
        "low": close * 0.99,
        "close": close,
        "volume": rng.uniform(1e3, 1e4, 1000)[:n],
    }
    return ts, cols


@pytest.fixture
def cat(tmp_path) -> Catalog:
    c = Catalog(tmp_path / "cat")
    c.write_many([WriteItem("AAA", *bars(seed=1), "test", "1d"), WriteItem("BBB", *bars(seed=2), "test", "1d")])
    return c


def edit_manifest(cat: Catalog, change) -> None:
    doc = json.loads(cat.manifest_path.read_text())
    change(doc)
    cat.manifest_path.write_text(json.dumps(doc))


def data_files(cat: Catalog) -> list[str]:
    return sorted(str(p.relative_to(cat.root)) for p in cat.root.rglob("*") if p.is_file() and p.parent != cat.root)


# ------------------------------------------------------------------------------ hostile manifests


@pytest.mark.parametrize(
    "file",
    [
        "../../victim.txt",
        "../../victim.parquet",
        "/tmp/victim.parquet",
        "sub/AAA.0123456789ab.parquet",
        "AAA.parquet",
        "..",
    ],
)
def test_a_manifest_file_outside_the_catalog_is_refused_and_nothing_is_deleted(cat, tmp_path, file):
    victim = (
        tmp_path / "abs" / "victim.parquet"
        if file.startswith("/")
        else tmp_path / (Path(file).name if "victim" in file else "victim.txt")
    )
    if file.startswith("/"):
        file = str(victim)
    victim.parent.mkdir(parents=True, exist_ok=True)
    victim.write_text("keep me")
    edit_manifest(cat, lambda d: d["entries"]["1d/AAA"].update(file=file))
    for action in (
        lambda: cat.remove("AAA"),
        lambda: cat.load("AAA"),
        cat.entries,
        lambda: cat.write_many([WriteItem("AAA", *bars(seed=3), "x", "1d")], replace=True),
        lambda: verify_catalog(cat),
    ):
        with pytest.raises(DataError, match=r"manifest\.json: catalog entry '1d/AAA' names the file .* refused") as exc:
            action()
        assert "manifest.json" in exc.value.hint
    assert victim.read_text() == "keep me"


@pytest.mark.parametrize("timeframe", ["../..", "/tmp", "1d/../..", "1D"])
def test_a_timeframe_that_is_not_a_label_is_refused(cat, timeframe):
    def change(d):
        e = d["entries"].pop("1d/AAA")
        e["timeframe"] = timeframe
        d["entries"][f"{timeframe}/AAA"] = e

    edit_manifest(cat, change)
    with pytest.raises(DataError, match=r"manifest\.json: catalog entry .* is not a bar size label"):
        cat.remove("AAA")


def test_a_timeframe_folder_linked_outside_is_refused(cat, tmp_path):
    outside = tmp_path / "elsewhere"
    shutil.move(cat.root / "1d", outside)
    (cat.root / "1d").symlink_to(outside, target_is_directory=True)
    before = sorted(p.name for p in outside.iterdir())
    for action in (
        lambda: cat.remove("AAA"),
        lambda: cat.load("AAA"),
        lambda: cat.write_many([WriteItem("AAA", *bars(seed=5), "x", "1d")], replace=True),
    ):
        with pytest.raises(DataError, match="leads outside the catalog"):
            action()
    cat.write_many([WriteItem("CCC", *bars(seed=4), "x", "1h")])  # another timeframe: its sweep must not enter 1d/
    assert sorted(p.name for p in outside.iterdir()) == before


def test_a_data_file_linked_outside_is_not_read_and_remove_drops_only_the_link(cat, tmp_path):
    entry = cat.find("AAA")
    path = cat.path_for(entry)
    outside = tmp_path / "outside.parquet"
    shutil.move(path, outside)
    path.symlink_to(outside)
    with pytest.raises(DamagedFile, match="is a link to .*outside the catalog") as exc:
        cat.load("AAA")
    assert "mqc data remove AAA" in exc.value.hint
    assert cat.check(entry, full=False).startswith("is a link")
    cat.remove("AAA")
    assert outside.is_file() and not path.is_symlink() and [e.symbol for e in cat.entries()] == ["BBB"]


def test_the_sweep_leaves_files_it_did_not_create(cat):
    mine = [
        cat.root / "1d" / "notes.txt",
        cat.root / "1d" / "my backup.parquet",
        cat.root / "backup" / "AAA.0123456789ab.parquet",
        cat.root / "keep.tmp",
    ]
    for f in mine:
        f.parent.mkdir(exist_ok=True)
        f.write_text("mine")
    orphan = cat.root / "1d" / "ZZZ.0123456789ab.parquet"
    orphan.write_text("left by a killed import")
    cat.write_many([])  # a no-op write sweeps
    assert all(f.read_text() == "mine" for f in mine) and not orphan.exists()


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ("null", "must be a JSON object, got null"),
        ("[]", "must be a JSON object, got list"),
        ('{"entries": {}}', "no valid format version"),
        ('{"version": "1", "entries": {}}', "no valid format version"),
        ('{"version": 1, "entries": []}', '"entries" of the catalog manifest must be a JSON object, got list'),
        ('{"version": 1}', '"entries" of the catalog manifest must be a JSON object, got null'),
        ('{"version": 1, "entries": {"1d/AAA": null}}', "catalog entry '1d/AAA' must be a JSON object"),
        ('{"version": 9, "entries": {}}', "written by a newer mqc"),
        ('{"version": 1, "entries": ', "not valid JSON"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_clear_error(cat, doc, match):
    cat.manifest_path.write_text(doc)
    with pytest.raises(DataError, match=match) as exc:
        cat.entries()
    assert str(exc.value).startswith(str(cat.manifest_path))


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda e: e.pop("sha256"), "lacks the field 'sha256'"),
        (lambda e: e.update(sha256="abc"), "'sha256' must be 64 lower-case hex digits"),
        (lambda e: e.update(rows="300"), "'rows' must be an integer"),
        (lambda e: e.update(rows=True), "'rows' must be an integer"),
        (lambda e: e.update(rows=0), "'rows' must be >= 1"),
        (lambda e: e.update(symbol="BBB"), "does not match its fields"),
        (lambda e: e.update(symbol="../X"), "is not a catalog symbol"),
        (lambda e: e.update(file=7), "'file' must be a string"),
    ],
)
def test_a_bad_entry_names_the_manifest_and_the_entry(cat, change, match):
    edit_manifest(cat, lambda d: change(d["entries"]["1d/AAA"]))
    with pytest.raises(DataError, match=rf"manifest\.json: catalog entry '1d/AAA' .*{match}"):
        cat.find("BBB")


def test_a_manifest_that_is_not_utf8_is_one_clear_error(cat):
    cat.manifest_path.write_bytes(b'{"version": 1, "entries": {"\xff": 1}}')
    with pytest.raises(DataError, match="manifest.json: the catalog manifest is not valid JSON"):
        cat.entries()


def test_keys_a_newer_mqc_adds_are_tolerated_and_kept(cat):
    edit_manifest(cat, lambda d: (d.update(created_by="mqc 9"), d["entries"]["1d/AAA"].update(checksum_kind="xxh3")))
    assert [e.symbol for e in cat.entries()] == ["AAA", "BBB"] and cat.verify(cat.find("AAA"))
    cat.write_many([WriteItem("BBB", *bars(n=310, seed=2), "test", "1d")])  # rewrites the manifest
    doc = json.loads(cat.manifest_path.read_text())
    assert doc["created_by"] == "mqc 9" and doc["entries"]["1d/AAA"]["checksum_kind"] == "xxh3"


# ------------------------------------------------------------------------- damaged / altered files


def rewrite_close(path: Path, row: int = 100, factor: float = 1.01) -> None:
    """What an editing tool does: a valid Parquet file, same rows, one close changed."""
    t = pq.read_table(path)
    close = t.column("close").to_numpy().copy()
    close[row] *= factor
    pq.write_table(t.set_column(t.schema.get_field_index("close"), "close", pa.array(close)), path)


def flip_byte(path: Path) -> None:
    """Bit rot inside a data page (away from the footer)."""
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0x40
    path.write_bytes(bytes(data))


def test_an_altered_file_is_refused_by_every_read_with_the_repair(cat):
    entry = cat.find("AAA")
    path = cat.path_for(entry)
    rewrite_close(path)
    with pytest.raises(
        DamagedFile, match=rf"catalog entry 1d/AAA: .*{path.name} holds other bars than were imported"
    ) as exc:
        cat.load_arrays("AAA")
    assert (
        exc.value.altered and "--replace" in exc.value.hint and "mqc data remove AAA --timeframe 1d" in exc.value.hint
    )
    with pytest.raises(DamagedFile):
        load_panel(["AAA", "BBB"], "1d", catalog=cat)
    # Only an explicit opt-in reads it, and says so.
    panel = load_panel(config=DataConfig(symbols=("AAA", "BBB"), allow_altered=True), catalog=cat)
    assert any("1d/AAA" in w and "holds other bars" in w for w in panel.report.warnings)
    assert not cat.verify(entry) and cat.check(entry, full=False) == ""  # footer-only checks cannot see it
    assert [(e.symbol, bool(p)) for e, p in verify_catalog(cat).checked] == [("AAA", True), ("BBB", False)]


def test_a_flipped_byte_is_refused_even_when_altered_data_is_allowed_or_detected(cat):
    path = cat.path_for(cat.find("AAA"))
    flip_byte(path)
    with pytest.raises(DamagedFile) as exc:
        cat.load_arrays("AAA")
    assert str(path) in str(exc.value)
    warnings: list[str] = []
    try:  # a flip that still decodes is an alteration: readable on request, never silently
        cat.load_arrays("AAA", allow_altered=True, warnings=warnings)
    except DamagedFile as again:
        assert "cannot be decoded" in again.reason or "Parquet" in again.reason
    else:
        assert warnings


@pytest.mark.parametrize("damage", ["empty", "truncated", "footer", "missing", "fewer rows"])
def test_damaged_files_name_the_file_and_the_fix(cat, damage):
    entry = cat.find("AAA")
    path = cat.path_for(entry)
    if damage == "empty":
        path.write_bytes(b"")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "footer":
        path.write_bytes(path.read_bytes()[:-3] + b"XYZ")
    elif damage == "missing":
        path.unlink()
    else:
        pq.write_table(pq.read_table(path).slice(0, 50), path)
    with pytest.raises(DamagedFile) as exc:
        cat.load("AAA")
    assert str(path) in str(exc.value) and "mqc data remove AAA" in exc.value.hint
    assert cat.check(entry, full=False)  # what `data list` marks
    assert cat.check(cat.find("BBB"), full=False) == ""


def test_import_replace_repairs_an_altered_file_even_with_the_same_bars(cat):
    path = cat.path_for(cat.find("AAA"))
    rewrite_close(path)
    with pytest.raises(DamagedFile):
        cat.write_many([WriteItem("AAA", *bars(seed=1), "again", "1d")])
    (res,) = cat.write_many([WriteItem("AAA", *bars(seed=1), "again", "1d")], replace=True)
    assert res.status == "replaced" and "were dropped" in res.note
    entry = cat.find("AAA")
    assert cat.path_for(entry) == path and cat.verify(entry)  # same content hash, same name: the file was rewritten


# --------------------------------------------------------------------------------------- full disk


class FullDisk:
    """A disk of fixed capacity for everything under ``root``: atomic writes fail with ENOSPC when the
    new file would not fit beside what is there (the old manifest stays until the rename)."""

    def __init__(self, root: Path, monkeypatch, free: int = 0) -> None:
        self.root = root
        self.capacity = self.used() + free
        real = atomic.write_bytes

        def write_bytes(target, data):
            if self.used() + len(data) > self.capacity:
                raise OSError(errno.ENOSPC, "No space left on device", str(target))
            real(target, data)

        monkeypatch.setattr(atomic, "write_bytes", write_bytes)
        monkeypatch.setattr(housekeeping, "keep_reserve", lambda root, size: None)  # nothing else fits either

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())


def test_remove_works_on_a_full_disk_from_the_reserve(cat, monkeypatch):
    assert (cat.root / housekeeping.RESERVE_NAME).stat().st_size >= 2 * cat.manifest_path.stat().st_size
    FullDisk(cat.root, monkeypatch)
    with pytest.raises(OSError, match="(?i)no space left"):  # what a full disk does to an import
        cat.write_many([WriteItem("CCC", *bars(seed=9), "x", "1d")])
    cat.remove("AAA")
    assert [e.symbol for e in cat.entries()] == ["BBB"] and data_files(cat) == [f"1d/{cat.find('BBB').file}"]
    assert cat.verify(cat.find("BBB"))


def test_remove_works_on_a_full_disk_without_a_reserve(cat, monkeypatch):
    (cat.root / housekeeping.RESERVE_NAME).unlink()  # e.g. a catalog an older mqc wrote
    FullDisk(cat.root, monkeypatch)
    cat.remove("AAA")
    assert [e.symbol for e in cat.entries()] == ["BBB"] and len(data_files(cat)) == 1


def test_remove_on_a_disk_too_full_even_for_that_fails_cleanly_and_completes_later(cat, monkeypatch):
    (cat.root / housekeeping.RESERVE_NAME).unlink()
    disk = FullDisk(cat.root, monkeypatch, free=-(10**9))
    with pytest.raises(OSError, match="(?i)no space left"):
        cat.remove("AAA")
    # The entry is still listed; its file went first, and every read says so by name.
    with pytest.raises(DamagedFile, match="is missing"):
        cat.load("AAA")
    assert cat.verify(cat.find("BBB"))
    disk.capacity = 10**12
    cat.remove("AAA")
    assert [e.symbol for e in cat.entries()] == ["BBB"]


def test_a_full_disk_while_a_data_file_is_written_changes_nothing(cat, monkeypatch):
    before = {p: p.read_bytes() for p in cat.root.rglob("*") if p.is_file()}

    def full(path, ts, cols):
        Path(path).write_bytes(b"PAR1 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(catalog_mod, "write_bars", full)
    with pytest.raises(OSError, match="(?i)no space left"):
        cat.write_many([WriteItem("AAA", *bars(n=320, seed=1), "x", "1d")])
    assert {p: p.read_bytes() for p in cat.root.rglob("*") if p.is_file()} == before


def test_a_reader_whose_file_a_writer_just_replaced_reads_the_new_one(cat):
    stale = cat.find("AAA")  # a reader looked the entry up ...
    cat.write_many([WriteItem("AAA", *bars(n=330, seed=1), "x", "1d")])  # ... then a writer replaced its file
    assert not cat.path_for(stale).exists()
    entry, ts, _ = cat.read_entry(stale)
    assert entry.rows == ts.size == 330


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MB tmpfs (needs mount rights; skipped without them)."""
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True).returncode
        != 0
    ):
        pytest.skip("mount not permitted here")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.parametrize("reserve", [True, False])
def test_remove_on_a_real_full_disk(tiny_disk, reserve):
    cat = Catalog(tiny_disk / "catalog")
    cat.write_many([WriteItem(f"S{k}", *bars(n=1000, seed=k), "x", "1d") for k in range(8)])
    if not reserve:
        (cat.root / housekeeping.RESERVE_NAME).unlink()
    with open(tiny_disk / "filler", "wb", buffering=0) as fh:  # take every byte left
        with pytest.raises(OSError):
            while True:
                fh.write(b"\xff" * 4096)
    with pytest.raises(OSError, match="(?i)no space left"):
        cat.write_many([WriteItem("NEW", *bars(seed=9), "x", "1d")])
    cat.remove("S3")
    assert [e.symbol for e in cat.entries()] == [f"S{k}" for k in range(8) if k != 3]
    assert data_files(cat) == sorted(f"1d/{e.file}" for e in cat.entries()) and all(
        cat.verify(e) for e in cat.entries()
    )


# ---------------------------------------------------------------------------------- kills, sweeps


def test_a_kill_just_after_the_manifest_commit_is_swept_by_a_no_op_import(cat, monkeypatch):
    old = cat.path_for(cat.find("AAA"))

    def killed(self, files, manifest):
        raise SystemExit("killed")  # the process dies before it deletes the replaced file

    monkeypatch.setattr(Catalog, "_delete_unreferenced", killed)
    with pytest.raises(SystemExit):
        cat.write_many([WriteItem("AAA", *bars(n=310, seed=1), "x", "1d")])
    monkeypatch.undo()
    assert old.exists() and cat.find("AAA").rows == 310
    (res,) = cat.write_many([WriteItem("AAA", *bars(n=310, seed=1), "x", "1d")])  # the same bars: nothing to store
    assert res.status == "unchanged" and not old.exists()
    assert data_files(cat) == sorted(f"1d/{e.file}" for e in cat.entries())


CHILD = textwrap.dedent("""
    import sys
    import numpy as np
    from mqc.core.data.catalog import Catalog, WriteItem

    def version(v, seed):
        rng = np.random.default_rng(1000 * v + seed)
        ts = (np.arange(3000, dtype=np.int64) + 16000) * 86400 * 10**9
        c = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, ts.size)))
        return ts, {"open": c, "high": c * 1.01, "low": c * 0.99, "close": c, "volume": rng.uniform(1, 9, ts.size)}

    if __name__ == "__main__":
        cat = Catalog(sys.argv[1])
        print("ready", flush=True)
        i = 0
        while True:
            v = i % 3
            items = [WriteItem(s, *version(v, k), f"v{v}", "1d") for k, s in enumerate(("AAA", "BBB"))]
            cat.write_many(items, replace=True)
            i += 1
    """)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL")
def test_kills_at_random_points_leave_the_old_or_the_new_catalog(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    namespace: dict = {}
    exec(compile(CHILD, str(script), "exec"), namespace)  # the same versions, for the expected hashes
    expected = {
        (f"v{v}", s): hash_arrays(*namespace["version"](v, k)) for v in range(3) for k, s in enumerate(("AAA", "BBB"))
    }
    env = {**os.environ, "PYTHONPATH": str(Path(mqc.__file__).parents[1])}
    rng = random.Random(11)
    root = tmp_path / "cat"
    seen = set()
    for _ in range(3):
        child = subprocess.Popen([sys.executable, str(script), str(root)], stdout=subprocess.PIPE, env=env)
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.5))
        child.send_signal(signal.SIGKILL)
        child.wait()
        cat = Catalog(root)
        entries = cat.entries()
        if not entries:  # killed before the first commit
            continue
        assert [e.symbol for e in entries] == ["AAA", "BBB"] and len(
            {e.source for e in entries}
        ) == 1  # one batch, whole
        for e in entries:
            assert e.sha256 == expected[(e.source, e.symbol)] and cat.check(e) == ""
        seen.add(entries[0].source)
        cat.write_many([])  # sweeps what the kill left
        assert data_files(cat) == sorted(f"1d/{e.file}" for e in entries)
    assert seen  # at least one kill landed after a commit


# ------------------------------------------------------------------------ permissions and profiles


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")
@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_catalog_files_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        c = Catalog(tmp_path / "cat")
        c.write_many([WriteItem("AAA", *bars(), "x", "1d")])
    finally:
        os.umask(old)
    for p in (c.manifest_path, c.path_for(c.find("AAA"))):
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask, p


def test_a_profile_cannot_switch_the_check_off_with_a_non_boolean():
    from mqc.core import paths
    from mqc.core.errors import ConfigError
    from mqc.core.profiles import resolve_with_profile

    d = paths.profiles_dir()
    d.mkdir(parents=True, exist_ok=True)
    (d / "p.toml").write_text('[data]\nallow_altered = "maybe"\n')
    with pytest.raises(ConfigError, match="allow_altered"):
        resolve_with_profile(DataConfig, "p")
    (d / "p.toml").write_text("[data]\nallow_altered = true\n")
    assert resolve_with_profile(DataConfig, "p").value.allow_altered is True
