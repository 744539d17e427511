"""Reading catalog data files back with every check: present, a whole Parquet file, the manifest's
row count, and the manifest's content hash (sha256 of the decoded bars).

The hash is what catches a file whose bars were changed after import (a rewritten close, a flipped
byte inside a page): it is recomputed on every read, on the arrays just decoded, which costs about
one pass over memory (roughly 0.6 ms per MB of bars; see docs/data.md). A file that cannot be decoded
is *damaged*; one that decodes to other bars than were imported is *altered*. Both raise
``DamagedFile`` naming the file and the repair; only an altered file can be read anyway, when the
caller explicitly allows it (``DataConfig.allow_altered``), and then with a warning.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mqc.core.data.bars import COLUMNS
from mqc.core.data.manifest import Entry
from mqc.core.errors import DataError
from mqc.core.progress import NULL, Progress

if TYPE_CHECKING:
    from mqc.core.data.catalog import Catalog


class DamagedFile(DataError):
    """A catalog data file is missing, unreadable, or holds other bars than the manifest recorded."""

    def __init__(self, entry: Entry, path: Path, reason: str, *, kind: str = "damaged") -> None:
        super().__init__(f"catalog entry {entry.key}: {path} {reason}", hint=repair_hint(entry))
        self.entry, self.path, self.reason = entry, path, reason
        self.kind = kind  # "missing", "damaged" (cannot be read as imported) or "altered" (other bars)

    @property
    def altered(self) -> bool:
        return self.kind == "altered"


def repair_hint(entry: Entry) -> str:
    """The two ways to repair a damaged entry."""
    s, tf = entry.symbol, entry.timeframe
    return (
        f"import its source again over it: mqc data import FILE --symbol {s} --timeframe {tf} --replace; "
        f"or drop it: mqc data remove {s} --timeframe {tf}"
    )


def hash_arrays(ts: np.ndarray, cols: dict[str, np.ndarray]) -> str:
    """Content hash of bars: int64 ns timestamps then the five float64 columns (exact bits)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(ts, dtype=np.int64).data)
    for col in COLUMNS:
        h.update(np.ascontiguousarray(cols[col], dtype=np.float64).data)
    return h.hexdigest()


def _open(entry: Entry, path: Path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DamagedFile(entry, path, "is missing", kind="missing") from None
    if size == 0:
        raise DamagedFile(entry, path, "is empty (0 bytes): an interrupted copy or a full disk?")
    try:
        pf = pq.ParquetFile(path)
    except (OSError, ValueError, pa.ArrowException) as exc:  # ArrowInvalid: no magic bytes, a bad footer
        raise DamagedFile(
            entry, path, f"is not a whole Parquet file ({size} bytes; truncated or overwritten: {_short(exc)})"
        ) from exc
    if pf.metadata.num_rows != entry.rows:  # footer only: checked before the bars are read
        raise DamagedFile(
            entry,
            path,
            f"holds {pf.metadata.num_rows} bars but the manifest says {entry.rows} (replaced or cut short?)",
        )
    missing = [c for c in ("timestamp", *COLUMNS) if c not in pf.schema_arrow.names]
    if missing:
        raise DamagedFile(entry, path, f"lacks the column(s) {', '.join(missing)}")
    return pf


def check_file(entry: Entry, path: Path) -> str:
    """ "" when the file looks whole from its footer (present, Parquet, the manifest's row count), else why not."""
    try:
        _open(entry, path)
    except DamagedFile as exc:
        return exc.reason
    return ""


def read_bars(
    entry: Entry, path: Path, *, allow_altered: bool = False, warnings: list[str] | None = None
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(int64 ns timestamps, {column: float64}) of ``entry``'s file, checked against the manifest.

    Args:
        allow_altered: return bars that decode but do not match the manifest's hash, appending the
            reason to ``warnings``, instead of raising.

    Raises:
        DamagedFile: the file is missing, empty, truncated, undecodable, or (unless
            ``allow_altered``) holds other bars than were imported.
    """
    import pyarrow as pa

    pf = _open(entry, path)
    try:
        ts, cols, sha = _decode_and_hash(pf)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise DamagedFile(entry, path, f"cannot be decoded (a damaged page: {_short(exc)})") from exc
    if sha != entry.sha256:
        reason = (
            f"holds other bars than were imported: its content hash is {sha[:12]}, the manifest's {entry.sha256[:12]} "
            "(the file was changed after import)"
        )
        if not allow_altered:
            raise DamagedFile(entry, path, reason, kind="altered")
        if warnings is not None:
            warnings.append(f"catalog entry {entry.key}: {path.name} {reason}; used anyway (allow_altered)")
    return ts, cols


def _decode_and_hash(pf) -> tuple[np.ndarray, dict[str, np.ndarray], str]:
    from mqc.core.data.bars import table_arrays

    ts, cols = table_arrays(pf.read(columns=["timestamp", *COLUMNS]))
    return ts, cols, hash_arrays(ts, cols)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass
class VerifyResult:
    """What ``verify_catalog`` found: each entry with its problem ("" = sound), and stray files."""

    catalog: str
    checked: list[tuple[Entry, str]] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # mqc's files no entry names (swept by the next write)

    @property
    def damaged(self) -> list[tuple[Entry, str]]:
        return [(e, p) for e, p in self.checked if p]

    def to_dict(self) -> dict:
        return {
            "catalog": self.catalog,
            "entries": [
                {
                    "key": e.key,
                    "symbol": e.symbol,
                    "timeframe": e.timeframe,
                    "rows": e.rows,
                    "ok": not p,
                    "problem": p,
                    "hint": repair_hint(e) if p else None,
                }
                for e, p in self.checked
            ],
            "damaged": len(self.damaged),
            "orphans": self.orphans,
        }


def verify_catalog(cat: Catalog, timeframe: str | None = None, *, progress: Progress = NULL) -> VerifyResult:
    """Decode every data file of ``cat`` (only ``timeframe``'s when given) and compare it with the
    manifest: presence, row count and content hash. Reads only; repairs nothing.

    Raises:
        DataError: the manifest itself is unreadable or unsafe (``manifest.check_manifest``).
    """
    from mqc.core.data import housekeeping

    entries = cat.entries(timeframe)
    out = VerifyResult(str(cat.root))
    progress.start(len(entries), "verifying")
    for e in entries:
        out.checked.append((e, cat.check(e)))
        progress.advance(1, file=e.key)
    progress.finish()
    keep = {cat.path_for(e) for e in cat.entries()}
    out.orphans = [str(p) for p in housekeeping.orphans(cat.root, keep)]
    return out
