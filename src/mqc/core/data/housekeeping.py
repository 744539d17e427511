"""Catalog housekeeping: sweeping files no manifest entry names, and the space reserve that lets a
removal commit on a full disk.

Sweeping deletes only what mqc itself creates, where it creates it: in a real (not symlinked)
``<catalog>/<timeframe>/`` folder, regular files named ``<SYMBOL>.<sha12>.parquet``,
``<SYMBOL>.parquet`` (the older layout) or ``.<SYMBOL>.<random>.tmp``, and in the catalog root the
manifest's own ``.manifest.json.<random>.tmp``. Anything else a user put there is left alone.

The reserve (``<catalog>/.reserve``) is a file of incompressible bytes at least twice the
manifest's size, kept by every write. Committing a removal writes a new manifest beside the old one,
which needs free space; on ENOSPC the reserve is deleted to make that room (and rebuilt afterwards
when the disk allows), so ``mqc data remove`` can always free what mqc stored.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from mqc.core.data.manifest import DATA_FILE, LEGACY_FILE, TEMP_FILE, TIMEFRAME_LABEL

RESERVE_NAME = ".reserve"
RESERVE_MIN = 64 * 1024  # bytes; grown to twice the manifest's size, in steps of this
_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


def is_full_disk(exc: OSError) -> bool:
    return exc.errno in _FULL


def is_own_name(name: str) -> bool:
    """True for the names mqc gives data and temp files in a timeframe folder."""
    return bool(DATA_FILE.match(name) or LEGACY_FILE.match(name) or TEMP_FILE.match(name))


def is_own_file(path: Path) -> bool:
    """True for a regular file (not a link) with one of mqc's names."""
    return is_own_name(path.name) and not path.is_symlink() and path.is_file()


def timeframe_dirs(root: Path) -> list[Path]:
    """The catalog's real ``<timeframe>/`` folders (a symlinked one is never entered)."""
    if not root.is_dir():
        return []
    return [d for d in root.iterdir() if TIMEFRAME_LABEL.match(d.name) and d.is_dir() and not d.is_symlink()]


def orphans(root: Path, keep: set[Path], manifest_name: str = "manifest.json") -> list[Path]:
    """mqc's own files under ``root`` that no manifest entry names (``keep``): see the module docstring."""
    out = (
        [f for f in root.glob(f".{manifest_name}.*.tmp") if f.is_file() and not f.is_symlink()] if root.is_dir() else []
    )
    for d in timeframe_dirs(root):
        out.extend(f for f in d.iterdir() if f not in keep and is_own_file(f))
    return sorted(out)


def sweep(root: Path, keep: set[Path]) -> int:
    """Delete ``orphans(root, keep)``; the number deleted. Call under the catalog lock."""
    files = orphans(root, keep)
    for f in files:
        f.unlink(missing_ok=True)
    return len(files)


def keep_reserve(root: Path, manifest_size: int) -> None:
    """Make ``<root>/.reserve`` hold at least twice ``manifest_size`` bytes (best effort: on a full
    disk it stays as it is). Random bytes, so a compressing file system really sets the space aside."""
    want = -(-max(RESERVE_MIN, 2 * manifest_size) // RESERVE_MIN) * RESERVE_MIN
    path = root / RESERVE_NAME
    try:
        have = path.stat().st_size if path.is_file() and not path.is_symlink() else -1
        if have >= want:
            return
        if have < 0:
            path.unlink(missing_ok=True)
        with open(path, "ab") as fh:
            block = os.urandom(RESERVE_MIN)
            for _ in range((want - max(have, 0)) // RESERVE_MIN):
                fh.write(block)
    except OSError:
        pass


def commit_freeing(write: Callable[[], None], root: Path, doomed: Iterable[Path]) -> None:
    """Run ``write`` (a manifest commit that only drops entries); on a full disk free space and retry.

    First the reserve goes. If that is not enough, the files of the dropped entries (``doomed``,
    already unreferenced by the manifest being written) are deleted before the commit rather than
    after it: a crash in between leaves an entry whose file is missing, which reads refuse by name
    and the same removal, run again, completes. Raises the last OSError when the disk stays full.
    """
    try:
        return write()
    except OSError as exc:
        if not is_full_disk(exc):
            raise
    (root / RESERVE_NAME).unlink(missing_ok=True)
    try:
        return write()
    except OSError as exc:
        if not is_full_disk(exc):
            raise
    for f in doomed:
        f.unlink(missing_ok=True)
    write()
