"""The local bar catalog: one Parquet file per (timeframe, symbol) plus a JSON manifest.

Layout under ``<data dir>/catalog/``::

    manifest.json              {"version": 1, "entries": {"1d/AAPL": {...}}}
    1d/AAPL.parquet            timestamp (UTC), open, high, low, close, volume

Every write goes to a temp file and is moved into place, and the manifest is written last, so a
failed import leaves the catalog exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core import atomic, paths
from mqc.core.data.reader import normalise_symbol
from mqc.core.data.timeframe import infer_timeframe, to_datetime64
from mqc.core.errors import ArtifactNotFound, DataError

MANIFEST_VERSION = 1
CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "USD", "BTC", "ETH", "EUR")


def guess_asset_class(symbol: str) -> str:
    """'crypto' for pairs like BTCUSDT / BTC-USD / ETH/USD, else 'equity'. Overridable on import."""
    s = symbol.upper()
    if "-" in s and s.split("-")[-1] in CRYPTO_QUOTES:
        return "crypto"
    if len(s) > 4 and any(s.endswith(q) for q in ("USDT", "USDC", "BUSD")):
        return "crypto"
    if len(s) == 6 and s.endswith("USD") and s[:3] in ("BTC", "ETH", "SOL", "ADA", "BNB", "XRP", "LTC", "DOG"):
        return "crypto"
    return "equity"


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

    @property
    def key(self) -> str:
        return f"{self.timeframe}/{self.symbol}"


def frame_hash(df: pd.DataFrame) -> str:
    """Content hash of a canonical frame (timestamps and the five columns, exact float bits)."""
    h = hashlib.sha256()
    h.update(to_datetime64(df["timestamp"]).astype(np.int64).tobytes())
    for col in ("open", "high", "low", "close", "volume"):
        h.update(np.ascontiguousarray(df[col].to_numpy(dtype="float64")).tobytes())
    return h.hexdigest()


@dataclass
class WriteResult:
    entry: Entry
    added: int  # new bars
    status: str  # "new", "appended", "unchanged", "replaced"


class Catalog:
    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.data_dir() / "catalog"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def _read_manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {"version": MANIFEST_VERSION, "entries": {}}
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataError(f"{self.manifest_path}: corrupted catalog manifest ({exc})") from exc
        if data.get("version") != MANIFEST_VERSION:
            raise DataError(f"{self.manifest_path}: unsupported manifest version {data.get('version')!r}")
        return data

    def entries(self, timeframe: str | None = None) -> list[Entry]:
        items = [Entry(**e) for e in self._read_manifest()["entries"].values()]
        if timeframe:
            items = [e for e in items if e.timeframe == timeframe]
        return sorted(items, key=lambda e: (e.timeframe, e.symbol))

    def find(self, symbol: str, timeframe: str | None = None) -> Entry:
        symbol = normalise_symbol(symbol)
        matches = [e for e in self.entries(timeframe) if e.symbol == symbol]
        if not matches:
            have = sorted({e.symbol for e in self.entries(timeframe)})
            from mqc.core.config import did_you_mean

            tf = f" at timeframe {timeframe}" if timeframe else ""
            raise ArtifactNotFound(
                f"symbol {symbol!r} is not in the catalog{tf}{did_you_mean(symbol, have)}",
                hint="mqc data list shows what is stored; mqc data import PATH or mqc data sample adds bars",
            )
        if len(matches) > 1:
            tfs = ", ".join(e.timeframe for e in matches)
            raise DataError(f"symbol {symbol!r} is stored at several timeframes ({tfs}); pass --timeframe")
        return matches[0]

    def path_for(self, entry: Entry) -> Path:
        return self.root / entry.timeframe / f"{entry.symbol}.parquet"

    def load(self, symbol: str, timeframe: str | None = None) -> pd.DataFrame:
        entry = self.find(symbol, timeframe)
        path = self.path_for(entry)
        if not path.exists():
            raise DataError(f"catalog entry {entry.key} has no file at {path}", hint=f"mqc data remove {entry.symbol} and import it again")
        df = pd.read_parquet(path)
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
        return df

    def write(
        self,
        symbol: str,
        df: pd.DataFrame,
        *,
        source: str,
        timeframe: str | None = None,
        asset_class: str | None = None,
        replace: bool = False,
    ) -> WriteResult:
        """Store validated bars, merging with what is there (new timestamps appended, none duplicated).

        Overlapping timestamps whose values differ from the stored ones raise DataError unless
        ``replace`` is set, so a re-import can never silently rewrite history.
        """
        symbol = normalise_symbol(symbol)
        tf = timeframe or (infer_timeframe(df["timestamp"]) if len(df) > 1 else "1d")
        manifest = self._read_manifest()
        key = f"{tf}/{symbol}"
        old_entry = manifest["entries"].get(key)
        status = "new"
        merged = df
        added = len(df)
        if old_entry and not replace:
            old = self.load(symbol, tf)
            both = old.merge(df, on="timestamp", how="inner", suffixes=("_old", "_new"))
            if len(both):
                cols = ["open", "high", "low", "close", "volume"]
                a = both[[f"{c}_old" for c in cols]].to_numpy()
                b = both[[f"{c}_new" for c in cols]].to_numpy()
                diff = ~np.isclose(a, b, rtol=1e-9, atol=0.0)
                if diff.any():
                    i, j = np.argwhere(diff)[0]
                    raise DataError(
                        f"{source}: bar {both['timestamp'].iloc[i]} of {symbol} differs from the stored one "
                        f"(field {cols[j]!r}: stored {a[i, j]:g}, new {b[i, j]:g})",
                        hint=f"pass --replace to overwrite {symbol}, or mqc data remove {symbol} first",
                    )
            new_rows = df[~df["timestamp"].isin(old["timestamp"])]
            added = len(new_rows)
            if added == 0:
                return WriteResult(Entry(**old_entry), 0, "unchanged")
            merged = pd.concat([old, new_rows], ignore_index=True).sort_values("timestamp", kind="stable")
            status = "appended"
        elif old_entry:
            status = "replaced"
        merged = merged.reset_index(drop=True)
        entry = Entry(
            symbol=symbol,
            timeframe=tf,
            rows=len(merged),
            first=merged["timestamp"].iloc[0].isoformat(),
            last=merged["timestamp"].iloc[-1].isoformat(),
            sha256=frame_hash(merged),
            source=source,
            asset_class=asset_class or (old_entry or {}).get("asset_class") or guess_asset_class(symbol),
            imported_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        path = self.path_for(entry)
        with atomic.atomic_path(path) as tmp:
            merged.to_parquet(tmp, index=False)
        manifest["entries"][key] = asdict(entry)
        atomic.write_json(self.manifest_path, manifest)
        return WriteResult(entry, added, status)

    def remove(self, symbol: str, timeframe: str | None = None) -> Entry:
        entry = self.find(symbol, timeframe)
        manifest = self._read_manifest()
        manifest["entries"].pop(entry.key, None)
        atomic.write_json(self.manifest_path, manifest)
        self.path_for(entry).unlink(missing_ok=True)
        return entry

    def verify(self, entry: Entry) -> bool:
        """True when the stored file still hashes to the manifest's content hash."""
        return frame_hash(self.load(entry.symbol, entry.timeframe)) == entry.sha256
