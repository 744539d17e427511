"""The catalog manifest (``manifest.json``): its format, and the checks every read of it passes.

Format version 1::

    {"version": 1, "entries": {"1d/AAPL": {"symbol": "AAPL", "timeframe": "1d", "rows": 5000,
     "first": ISO, "last": ISO, "sha256": 64 hex, "source": str, "asset_class": str,
     "imported_at": ISO, "file": "AAPL.<sha12>.parquet", "adjustment": str}}}

A manifest is trusted only as far as it is checked: every entry must have this shape, its key must
be ``<timeframe>/<SYMBOL>``, and its file must be a plain name of mqc's own pattern, so no entry can
name a path outside the catalog (``..``, an absolute path, a separator). A manifest that fails is
refused as a whole with a ``DataError`` naming it and the entry: mqc then reads and deletes nothing.
Keys this version does not know (written by a newer mqc) are ignored on read and kept on rewrite;
a higher ``version`` (a format this mqc cannot read correctly) is refused with "upgrade mqc".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mqc.core.errors import DataError

MANIFEST_VERSION = 1
_SYMBOL = r"[A-Z0-9^][A-Z0-9._=^-]{0,39}"  # reader.normalise_symbol's alphabet: no '/', no leading '.'
TIMEFRAME_LABEL = re.compile(r"^[1-9][0-9]*[smhdw]$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
DATA_FILE = re.compile(rf"^(?P<symbol>{_SYMBOL})\.[0-9a-f]{{12}}\.parquet$")  # <SYMBOL>.<sha12>.parquet
LEGACY_FILE = re.compile(rf"^(?P<symbol>{_SYMBOL})\.parquet$")  # the layout before content-addressed names
TEMP_FILE = re.compile(rf"^\.(?P<symbol>{_SYMBOL})\.[0-9a-z_]+\.tmp$")  # atomic.staged_file's temp names


@dataclass
class Entry:
    symbol: str
    timeframe: str
    rows: int
    first: str
    last: str
    sha256: str
    source: str
    asset_class: str
    imported_at: str
    file: str = ""  # data file name under <timeframe>/; "" = the older <SYMBOL>.parquet layout
    adjustment: str = ""  # how prices were adjusted on the way in ("" = stored as delivered)

    @property
    def key(self) -> str:
        return f"{self.timeframe}/{self.symbol}"

    @property
    def file_name(self) -> str:
        """The data file's name under ``<timeframe>/``."""
        return self.file or f"{self.symbol}.parquet"


_FIELDS = {f.name: f for f in fields(Entry)}
_OPTIONAL = {"file", "adjustment"}


def entry_from(raw: dict[str, Any]) -> Entry:
    """An Entry from a checked manifest entry (keys a newer mqc added are left out)."""
    return Entry(**{k: v for k, v in raw.items() if k in _FIELDS})


def empty_manifest() -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "entries": {}}


def read_manifest(path: Path) -> dict[str, Any]:
    """The parsed, checked manifest at ``path`` (an empty one when the file does not exist).

    Raises:
        DataError: not JSON, not UTF-8, the wrong shape, a newer format version, or an entry whose
            file would lie outside the catalog; the message names ``path``.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return empty_manifest()
    try:
        data = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: the catalog manifest is not valid JSON ({exc})", hint=_RESTORE) from exc
    check_manifest(data, path)
    return data


_RESTORE = "restore manifest.json from a backup, or move the catalog folder away and import the bars again"


def check_manifest(data: Any, path: Path) -> None:
    """Raise DataError naming ``path`` unless ``data`` is a version-1 manifest every entry of which is safe."""
    if not isinstance(data, dict):
        raise DataError(f"{path}: the catalog manifest must be a JSON object, got {_kind(data)}", hint=_RESTORE)
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise DataError(
            f'{path}: the catalog manifest has no valid format version ("version": {json.dumps(version)})',
            hint=_RESTORE,
        )
    if version > MANIFEST_VERSION:
        raise DataError(
            f"{path}: the catalog was written by a newer mqc (manifest format {version}; this mqc reads"
            f" {MANIFEST_VERSION})",
            hint="upgrade mqc (pip install -U mqc, or git pull in the mqc checkout)",
        )
    entries = data.get("entries")
    if not isinstance(entries, dict):
        raise DataError(
            f'{path}: "entries" of the catalog manifest must be a JSON object, got {_kind(entries)}', hint=_RESTORE
        )
    for key, raw in entries.items():
        problem = _entry_problem(key, raw)
        if problem:
            raise DataError(
                f"{path}: catalog entry {key!r} {problem}; the manifest is refused (nothing was read or deleted)",
                hint=f"delete that entry from manifest.json (then import its bars again), or {_RESTORE}",
            )


def _entry_problem(key: str, raw: Any) -> str:
    if not isinstance(raw, dict):
        return f"must be a JSON object, got {_kind(raw)}"
    for name, f in _FIELDS.items():
        if name not in raw:
            if name in _OPTIONAL:
                continue
            return f"lacks the field {name!r}"
        value = raw[name]
        want = int if f.type in ("int", int) else str
        if not isinstance(value, want) or isinstance(value, bool):
            return f"field {name!r} must be {'an integer' if want is int else 'a string'}, got {json.dumps(value)[:60]}"
    if raw["rows"] < 1:
        return f"field 'rows' must be >= 1, got {raw['rows']}"
    if not _HEX64.match(raw["sha256"]):
        return f"field 'sha256' must be 64 lower-case hex digits, got {raw['sha256'][:70]!r}"
    symbol, timeframe, file = raw["symbol"], raw["timeframe"], raw.get("file", "")
    if not re.fullmatch(_SYMBOL, symbol):
        return f"field 'symbol' {symbol[:60]!r} is not a catalog symbol (letters, digits and . _ - = ^)"
    if not TIMEFRAME_LABEL.match(timeframe):
        return f"field 'timeframe' {timeframe[:60]!r} is not a bar size label (1m, 1h, 1d, ...)"
    if key != f"{timeframe}/{symbol}":
        return f"does not match its fields (expected key {timeframe + '/' + symbol!r})"
    if file and not ((m := DATA_FILE.match(file)) and m["symbol"] == symbol):
        return f"names the file {file[:80]!r}, which is not a data file name of the catalog ({symbol}.<12 hex>.parquet)"
    return ""


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {json.dumps(value)[:60]}"
