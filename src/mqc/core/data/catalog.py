"""The local bar catalog: one Parquet file per (timeframe, symbol) plus a JSON manifest.

Layout under ``<data dir>/catalog/``::

    manifest.json                     {"version": 1, "entries": {"1d/AAPL": {..., "file": "AAPL.<sha12>.parquet"}}}
    1d/AAPL.<sha12>.parquet           timestamp (UTC), open, high, low, close, volume

Data files are content-addressed (the name carries the first 12 hex digits of the bars' hash) and
the manifest entry names its file, so the atomic rename of the manifest is the single commit point:
a batch writes every new file under a fresh name, then the manifest, and only then deletes the files
the old manifest pointed to. A crash or a full disk before the manifest rename leaves the old
manifest pointing at the old, untouched files; the unreferenced new files are swept on the next
write (also a write that stores nothing new). Entries written before this layout (no ``file``) keep
reading ``<tf>/<SYMBOL>.parquet`` and move to the new layout the next time the symbol is written.
Writers hold a lock file for the batch.

Reading trusts nothing: the manifest is checked for shape and for paths that would leave the catalog
(``manifest.py``), and every load checks its file against the manifest's row count and content hash
(``integrity.py``). ``housekeeping.py`` sweeps leftovers and keeps the reserve that lets ``remove``
commit on a full disk. docs/data.md ("Catalog integrity") states the promises.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core import atomic, paths
from mqc.core.data import housekeeping
from mqc.core.data.bars import COLUMNS, Bars, write_bars
from mqc.core.data.integrity import DamagedFile, check_file, hash_arrays, read_bars
from mqc.core.data.manifest import (
    MANIFEST_VERSION,
    Entry,
    entry_from,
    read_manifest,
)
from mqc.core.data.reader import normalise_symbol
from mqc.core.data.timeframe import (
    infer_bar_seconds_ns,
    label_for_seconds,
    normalise_timeframe,
)
from mqc.core.errors import ArtifactNotFound, DataError

__all__ = ["MANIFEST_VERSION", "Catalog", "DamagedFile", "Entry", "WriteItem", "WriteResult", "hash_arrays"]
_THREADED_HASH_ROWS = 100_000  # hash on a second thread while writing files of at least this many bars
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


def frame_hash(df: pd.DataFrame) -> str:
    """Content hash of a canonical frame (timestamps and the five columns, exact float bits)."""
    b = Bars.from_frame(df, symbol="X", source="")
    return hash_arrays(b.ts, b.cols)


@dataclass
class WriteResult:
    entry: Entry
    added: int  # new bars
    status: str  # "new", "appended", "unchanged", "replaced" (some stored bars overwritten)
    overwritten: int = 0  # stored bars whose values the new ones replaced (``replace`` only)
    rescaled: int = 0  # kept stored bars moved onto the new bars' adjustment basis (``replace`` only)
    price_factor: float = 1.0  # what those bars' open/high/low/close were multiplied by
    volume_factor: float = 1.0  # what their volume was multiplied by
    note: str = ""  # why they were rescaled (for the import / fetch report)


@dataclass
class WriteItem:
    """Validated bars of one symbol to store (``ts`` int64 ns UTC, sorted, unique)."""

    symbol: str
    ts: np.ndarray
    cols: dict[str, np.ndarray]
    source: str
    timeframe: str | None = None
    asset_class: str | None = None
    adjustment: str = ""


@dataclass
class _Plan:
    key: str
    result: WriteResult
    ts: np.ndarray = field(repr=False)
    cols: dict[str, np.ndarray] = field(repr=False)


class Catalog:
    """The bar store. ``root`` defaults to ``<data dir>/catalog`` (``MQC_DATA_DIR`` overrides)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else paths.data_dir() / "catalog"

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def _read_manifest(self) -> dict:
        return read_manifest(self.manifest_path)

    def entries(self, timeframe: str | None = None) -> list[Entry]:
        """Every stored (timeframe, symbol), sorted; only ``timeframe`` when given.

        Raises:
            DataError: ``timeframe`` is not a bar size (aliases like ``1H`` or ``daily`` are accepted).
        """
        items = [entry_from(e) for e in self._read_manifest()["entries"].values()]
        if timeframe:
            timeframe = check_timeframe(timeframe)
            items = [e for e in items if e.timeframe == timeframe]
        return sorted(items, key=lambda e: (e.timeframe, e.symbol))

    def find(self, symbol: str, timeframe: str | None = None) -> Entry:
        """The entry of ``symbol`` (at ``timeframe`` when given).

        Raises:
            ArtifactNotFound: the symbol is not stored (with a "did you mean").
            DataError: no timeframe given and the symbol is stored at several.
        """
        symbol = normalise_symbol(symbol)
        timeframe = check_timeframe(timeframe) if timeframe else None
        matches = [e for e in self.entries(timeframe) if e.symbol == symbol]
        if not matches:
            elsewhere = [e.timeframe for e in self.entries() if e.symbol == symbol]
            if elsewhere:
                tfs = ", ".join(elsewhere)
                raise ArtifactNotFound(
                    f"{symbol} is stored at {tfs}, not {timeframe}",
                    hint=(
                        f"pass --timeframe {elsewhere[0]}"
                        if len(elsewhere) == 1
                        else f"pass --timeframe with one of {tfs}"
                    ),
                )
            have = sorted({e.symbol for e in self.entries(timeframe)})
            from mqc.core.config import did_you_mean

            tf = f" at timeframe {timeframe}" if timeframe else ""
            raise ArtifactNotFound(
                f"symbol {symbol!r} is not in the catalog{tf}{did_you_mean(symbol, have)}",
                hint="mqc data list shows what is stored; mqc data import PATH or mqc data sample adds bars",
            )
        if len(matches) > 1:
            tfs = ", ".join(e.timeframe for e in matches)
            raise DataError(f"symbol {symbol!r} is stored at several timeframes ({tfs})", hint="pass --timeframe")
        return matches[0]

    def path_for(self, entry: Entry) -> Path:
        """The data file of ``entry`` (content-addressed, or the older ``<SYMBOL>.parquet``)."""
        return self.root / entry.timeframe / entry.file_name

    def data_path(self, entry: Entry) -> Path:
        """``path_for(entry)`` once its folder is checked: the manifest check already refused ``..``
        and separators, this refuses a ``<timeframe>/`` folder that is a link leading elsewhere
        (deleting in it would delete outside the catalog). A file that is itself a link is only
        refused on read (``_readable_path``): removing it removes the link, never its target.

        Raises:
            DataError: the timeframe folder resolves outside the catalog.
        """
        path = self.path_for(entry)
        folder, want = path.parent.resolve(), self.root.resolve() / entry.timeframe
        if folder != want:
            raise DataError(
                f"catalog folder {path.parent} leads outside the catalog (to {folder}); refused, nothing was read or"
                " deleted",
                hint=f"make {path.parent} a real folder holding its data files, not a link",
            )
        return path

    def _readable_path(self, entry: Entry) -> Path:
        path = self.data_path(entry)
        if path.is_symlink() and path.resolve().parent != path.parent.resolve():
            raise DamagedFile(entry, path, f"is a link to {path.resolve()}, outside the catalog (not read)")
        return path

    def load_arrays(
        self,
        symbol: str,
        timeframe: str | None = None,
        *,
        allow_altered: bool = False,
        warnings: list[str] | None = None,
    ) -> tuple[Entry, np.ndarray, dict[str, np.ndarray]]:
        """(entry, int64 ns timestamps, {column: float64}) of one stored symbol, checked against the
        manifest (present, whole, its row count and its content hash: see ``integrity.read_bars``).

        Args:
            allow_altered: return bars whose hash differs from the manifest's, with a line in
                ``warnings``, instead of raising (for a user who explicitly asked for it).

        Raises:
            DamagedFile: the entry's file is missing, truncated, undecodable or altered; the hint
                names the repair (``mqc data import ... --replace`` or ``mqc data remove``).
        """
        entry = self.find(symbol, timeframe)
        return self.read_entry(entry, allow_altered=allow_altered, warnings=warnings)

    def read_entry(
        self, entry: Entry, *, allow_altered: bool = False, warnings: list[str] | None = None
    ) -> tuple[Entry, np.ndarray, dict[str, np.ndarray]]:
        """``load_arrays`` of an entry already looked up (one manifest read for many symbols)."""
        try:
            return entry, *read_bars(entry, self._readable_path(entry), allow_altered=allow_altered, warnings=warnings)
        except DamagedFile as exc:
            if exc.kind != "missing":
                raise
            # A writer may have replaced the file between our manifest read and the open: read again.
            again = self.find(entry.symbol, entry.timeframe)
            if again == entry:
                raise
            return again, *read_bars(again, self._readable_path(again), allow_altered=allow_altered, warnings=warnings)

    def check(self, entry: Entry, *, full: bool = True) -> str:
        """ "" when ``entry``'s file is sound, else what is wrong with it. ``full=False`` reads only
        the file's footer (present, Parquet, row count: cheap enough for ``mqc data list``);
        ``full`` decodes it and compares the content hash too (``mqc data verify``)."""
        try:
            path = self._readable_path(entry)
            if not full:
                return check_file(entry, path)
            read_bars(entry, path)
        except DamagedFile as exc:
            return exc.reason
        except DataError as exc:
            return str(exc)
        return ""

    def load(self, symbol: str, timeframe: str | None = None) -> pd.DataFrame:
        """The canonical frame of one stored symbol (timestamp datetime64[ns, UTC] + five columns)."""
        entry, ts, cols = self.load_arrays(symbol, timeframe)
        return Bars(entry.symbol, entry.key, ts, cols, np.arange(ts.size)).to_frame()

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the catalog's lock file (one writer at a time across processes)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as fh:
            try:
                import fcntl

                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows: no advisory locks
                pass
            yield

    def plan(self, items: Sequence[WriteItem], *, replace: bool = False) -> list[_Plan]:
        """Merge each item with what is stored (and earlier items of the batch); writes nothing.

        New timestamps are added; bars equal to stored ones are ignored. A new bar that differs from
        the stored bar at the same timestamp raises, unless ``replace`` is set: then it overwrites that
        bar (counted in ``WriteResult.overwritten``) and every stored bar outside the new
        timestamps is kept. Wiping a history is a separate step (``Catalog.remove``).
        Entries of new content leave ``sha256`` and ``file`` empty: ``commit`` fills them in (it
        hashes the bars while writing their file).

        Raises:
            DataError: a new bar overlaps a stored one with different values (unless ``replace``).
        """
        manifest = self._read_manifest()
        pending: dict[str, _Plan] = {}
        out: list[_Plan] = []
        for item in items:
            symbol = normalise_symbol(item.symbol)
            tf = item.timeframe or self._timeframe_for(symbol, item.ts)
            key = f"{tf}/{symbol}"
            prev = pending.get(key)
            old_entry = manifest["entries"].get(key)
            damaged: DamagedFile | None = None
            if prev is not None:
                old_ts, old_cols, base = prev.ts, prev.cols, prev.result.entry
            elif old_entry is not None:
                base = entry_from(old_entry)
                try:
                    _, old_ts, old_cols = self.read_entry(base)
                except DamagedFile as exc:
                    if not replace:
                        raise
                    # Repair: the stored bars cannot be trusted, so the new ones take the symbol over.
                    old_ts, old_cols, damaged = None, None, exc
            else:
                old_ts, old_cols, base = None, None, None
            overwritten, rebase = 0, None
            if old_ts is None:
                ts, cols, added = item.ts, item.cols, item.ts.size
                status = "new" if damaged is None else "replaced"
            else:
                ts, cols, added, overwritten, rebase = _merge(old_ts, old_cols, item, symbol, tf, replace=replace)
                status = "replaced" if overwritten else ("appended" if added else "unchanged")
            if status == "unchanged" and base is not None:
                plan = _Plan(key, WriteResult(base, 0, "unchanged"), ts, cols)
            else:
                # sha256 and file are filled in by commit, which hashes while it writes the file.
                entry = Entry(
                    symbol=symbol,
                    timeframe=tf,
                    rows=int(ts.size),
                    first=_iso(ts[0]),
                    last=_iso(ts[-1]),
                    sha256="",
                    source=item.source,
                    asset_class=item.asset_class or (base.asset_class if base else None) or guess_asset_class(symbol),
                    imported_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                    file="",
                    adjustment=item.adjustment or (base.adjustment if base else ""),
                )
                result = WriteResult(entry, int(added), status, int(overwritten))
                if rebase is not None:
                    result.rescaled, result.price_factor, result.volume_factor, result.note = rebase
                if damaged is not None and base is not None:
                    result.added, result.overwritten = max(0, int(ts.size) - base.rows), base.rows
                    result.note = (
                        f"the stored file of {key} {damaged.reason}: its {base.rows} stored bars were dropped "
                        f"and the {int(ts.size)} new ones stored in their place"
                    )
                plan = _Plan(key, result, ts, cols)
            pending[key] = plan if plan.result.status != "unchanged" or prev is None else prev
            out.append(plan)
        return out

    def commit(self, plans: Sequence[_Plan]) -> None:
        """Write planned files under new content-addressed names, then the manifest (the commit
        point), then delete the files the manifest no longer names.

        Each file is written to a temp name while its content hash is computed on a second thread
        (both release the GIL), then fsynced and renamed to ``<SYMBOL>.<sha12>.parquet``; the hash
        also fills in the plan's ``Entry.sha256`` and ``Entry.file``. An error before the manifest
        rename leaves the catalog as it was (new files are orphans, swept by the next write).
        """
        final: dict[str, _Plan] = {}
        for p in plans:
            if p.result.status != "unchanged":
                final[p.key] = p  # the last plan of a key holds every earlier item of the batch
        manifest = self._read_manifest()
        self._sweep_orphans(manifest)  # also on a no-op import: files a killed write left go now
        if not final:
            return
        for p in final.values():
            self._write_file(p)
        for p in plans:  # items a later item of the same key superseded within the batch: not written
            entry = p.result.entry
            if not entry.sha256:
                entry.sha256 = hash_arrays(p.ts, p.cols)
                entry.file = _file_name(entry.symbol, entry.sha256)
        old_files = {self.path_for(entry_from(manifest["entries"][k])) for k in final if k in manifest["entries"]}
        for p in final.values():
            manifest["entries"][p.key] = asdict(p.result.entry)
        atomic.write_json(self.manifest_path, manifest)
        self._delete_unreferenced(old_files, manifest)
        self._keep_reserve()

    def _write_file(self, p: _Plan) -> None:
        """Write one plan's bars under their content-addressed name (hashing while writing).

        A file already there under that name is replaced too: it should hold the same bars, but it
        may be the damaged file an import ``--replace`` is repairing."""
        entry = p.result.entry
        folder = self.data_path(entry).parent  # refuses a timeframe folder linked outside the catalog
        with atomic.staged_file(folder, entry.symbol) as staged:
            if p.ts.size >= _THREADED_HASH_ROWS:
                with ThreadPoolExecutor(max_workers=1) as pool:
                    sha = pool.submit(hash_arrays, p.ts, p.cols)
                    write_bars(staged.path, p.ts, p.cols)
                    entry.sha256 = sha.result()
            else:  # small files: a thread costs more than it saves
                write_bars(staged.path, p.ts, p.cols)
                entry.sha256 = hash_arrays(p.ts, p.cols)
            entry.file = _file_name(entry.symbol, entry.sha256)
            staged.commit(self.data_path(entry))

    def _referenced(self, manifest: dict) -> set[Path]:
        return {self.path_for(entry_from(e)) for e in manifest["entries"].values()}

    def _delete_unreferenced(self, files: set[Path], manifest: dict) -> None:
        keep = self._referenced(manifest)
        for f in files - keep:
            # only mqc's names, in a real timeframe folder; a link is removed itself, never its target
            if housekeeping.is_own_name(f.name) and f.parent.parent == self.root and not f.parent.is_symlink():
                f.unlink(missing_ok=True)

    def _sweep_orphans(self, manifest: dict) -> None:
        """Delete mqc's own files no manifest entry names (left by an interrupted write; see ``housekeeping``)."""
        housekeeping.sweep(self.root, self._referenced(manifest))

    def _keep_reserve(self) -> None:
        try:
            size = self.manifest_path.stat().st_size
        except OSError:
            return
        housekeeping.keep_reserve(self.root, size)

    def write_many(self, items: Sequence[WriteItem], *, replace: bool = False) -> list[WriteResult]:
        """Plan then commit ``items`` as one batch under the lock; one WriteResult per item."""
        with self.locked():
            plans = self.plan(items, replace=replace)
            self.commit(plans)
        return [p.result for p in plans]

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
        b = Bars.from_frame(df, symbol=symbol, source=source)
        order = np.argsort(b.ts, kind="stable")
        if (np.diff(b.ts[order]) == 0).any():
            raise DataError(
                f"{source}: duplicate timestamps in the bars of {symbol}",
                hint="validate the bars first (validate_bars)",
            )
        b = b.take(order)
        return self.write_many([WriteItem(symbol, b.ts, b.cols, source, timeframe, asset_class)], replace=replace)[0]

    def _timeframe_for(self, symbol: str, ts: np.ndarray) -> str:
        if ts.size >= 2:
            return label_for_seconds(infer_bar_seconds_ns(ts))
        stored = [e.timeframe for e in self.entries() if e.symbol == symbol]
        if len(stored) == 1:  # one new bar for a stored symbol: it has that symbol's bar size
            return stored[0]
        raise DataError(f"cannot infer the bar size of {symbol} from a single bar", hint="pass --timeframe (e.g. 1d)")

    def remove(self, symbol: str, timeframe: str | None = None) -> Entry:
        """Drop a symbol (manifest first, then its file) and return its old entry.

        Works on a full disk: the new manifest's room comes from the reserve, else from the file
        being removed (``housekeeping.commit_freeing``). Leftovers of interrupted writes go too.
        """
        with self.locked():
            manifest = self._read_manifest()
            entry = self.find(symbol, timeframe)
            path = self.data_path(entry)  # refuses a file leading outside the catalog
            self._sweep_orphans(manifest)
            manifest["entries"].pop(entry.key, None)
            doomed = [] if path in self._referenced(manifest) else [path]
            housekeeping.commit_freeing(lambda: atomic.write_json(self.manifest_path, manifest), self.root, doomed)
            self._delete_unreferenced({path}, manifest)
            self._keep_reserve()
        return entry

    def verify(self, entry: Entry) -> bool:
        """True when the stored file still hashes to the manifest's content hash."""
        return not self.check(entry)


def _file_name(symbol: str, sha: str) -> str:
    return f"{symbol}.{sha[:12]}.parquet"


def _iso(ns: int) -> str:
    return pd.Timestamp(int(ns), unit="ns", tz="UTC").isoformat()


def _merge(
    old_ts: np.ndarray, old_cols: dict[str, np.ndarray], item: WriteItem, symbol: str, tf: str, *, replace: bool = False
):
    """Stored bars + new ones -> (ts, cols, added, overwritten, rebase).

    Identical overlaps are ignored and new timestamps added. Differing overlaps raise, or with
    ``replace`` take the new values; stored bars outside the new timestamps are always kept, and
    when the overlap shows the provider re-adjusted its history (see ``_rebase``) they are moved
    onto the new basis: ``rebase`` is then (bars rescaled, price factor, volume factor, note).
    """
    _, i_old, i_new = np.intersect1d(old_ts, item.ts, assume_unique=True, return_indices=True)
    overwritten = 0
    rebase = None
    cols_base = old_cols
    if i_old.size:
        a = np.stack([old_cols[c][i_old] for c in COLUMNS], axis=1)
        b = np.stack([item.cols[c][i_new] for c in COLUMNS], axis=1)
        diff = ~np.isclose(a, b, rtol=1e-9, atol=0.0)
        if diff.any():
            if not replace:
                i, j = np.argwhere(diff)[0]
                when = pd.Timestamp(int(old_ts[i_old[i]]), unit="ns", tz="UTC")
                raise DataError(
                    f"{item.source}: bar {when} of {symbol} differs from the stored one "
                    f"(field {COLUMNS[j]!r}: stored {a[i, j]:g}, new {b[i, j]:g})",
                    hint=(
                        f"pass --replace to overwrite the differing bars of {symbol} (the rest of its history is kept)"
                    ),
                )
            changed = diff.any(axis=1)
            overwritten = int(changed.sum())
            cols_base = {c: v.copy() for c, v in old_cols.items()}
            kept = np.ones(old_ts.size, dtype=bool)
            kept[i_old] = False
            if kept.any():
                rebase = _rebase(a, b, int(kept.sum()), item, symbol, tf)
                if rebase is not None:
                    _, price_f, volume_f, _ = rebase
                    for c in PRICE_COLUMNS:
                        cols_base[c][kept] *= price_f
                    cols_base["volume"][kept] *= volume_f
            for c in COLUMNS:
                cols_base[c][i_old[changed]] = item.cols[c][i_new[changed]]
    fresh = np.ones(item.ts.size, dtype=bool)
    fresh[i_new] = False
    added = int(fresh.sum())
    if added == 0:
        return old_ts, cols_base, 0, overwritten, rebase
    ts = np.concatenate([old_ts, item.ts[fresh]])
    cols = {c: np.concatenate([cols_base[c], item.cols[c][fresh]]) for c in COLUMNS}
    if not (old_ts.size == 0 or item.ts[fresh][0] > old_ts[-1]):
        order = np.argsort(ts, kind="stable")
        ts, cols = ts[order], {c: v[order] for c, v in cols.items()}
    return ts, cols, added, overwritten, rebase


PRICE_COLUMNS = ("open", "high", "low", "close")
REBASE_MIN_MOVE = 1e-6  # |new/stored - 1| of a close above this: the bar moved, not float noise
REBASE_TOL = 1e-3  # relative spread tolerated between ratios that share one basis (price rounding)
REBASE_SHARE = 0.5  # share of overlapping bars uniformly scaled above which the overlap is a re-adjustment
REBASE_CLEAN = 0.9  # share of overlapping bars on the median factor needed to rescale rather than refuse


def _rebase(a: np.ndarray, b: np.ndarray, n_kept: int, item: WriteItem, symbol: str, tf: str):
    """Detect a provider re-adjustment in the overlap ``a`` (stored) vs ``b`` (new), ``[n, 5]``.

    A split or dividend makes providers like yfinance rescale the whole earlier history, so a
    re-delivered range differs from the stored one by one constant factor on every price of every
    bar. Keeping the older stored bars unchanged would then mix two bases (a fake jump at the seam).
    Individual corrections (a revised close, a bar that was still forming) do not scale open, high,
    low and close alike and are merged as before.

    Returns:
        None when the overlap is not a re-adjustment, else (bars to rescale, price factor, volume
        factor, note) when one factor explains the overlap.

    Raises:
        DataError: most overlapping bars are rescaled, but not by one factor (several bases).
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        r = b[:, :4] / a[:, :4]
        r_close = r[:, 3]
        uniform = np.all(np.abs(r / r_close[:, None] - 1.0) <= REBASE_TOL, axis=1) & (
            np.abs(r_close - 1.0) > REBASE_MIN_MOVE
        )
        uniform &= np.isfinite(r_close) & (r_close > 0)
    n = a.shape[0]
    if uniform.sum() <= REBASE_SHARE * n:
        return None
    factor = float(np.median(r_close[uniform]))
    with np.errstate(divide="ignore", invalid="ignore"):
        on_basis = np.all(np.abs(r / factor - 1.0) <= REBASE_TOL, axis=1)
    if on_basis.mean() < REBASE_CLEAN:
        lo, hi = np.nanmin(r_close), np.nanmax(r_close)
        raise DataError(
            f"{item.source}: the new bars of {symbol} are on another adjustment basis than the stored ones, and not by"
            f" one factor (new/stored close {lo:.6g}..{hi:.6g} over {n} overlapping bars): the kept older history"
            " cannot be rescaled safely and keeping it as is would mix two bases",
            hint=(
                f"store the full history again: mqc data remove {symbol} --timeframe {tf}, then import or fetch it"
                " without --start"
            ),
        )
    # Volume follows the provider's own choice (yfinance scales it for splits, not for dividends):
    # use the ratio the overlap shows when it is clean, else the inverse of the price factor.
    va, vb = a[on_basis, 4], b[on_basis, 4]
    ok = (va > 0) & (vb > 0)
    volume_factor = 1.0 / factor
    if ok.any():
        v = vb[ok] / va[ok]
        vmed = float(np.median(v))
        if np.mean(np.abs(v / vmed - 1.0) <= REBASE_TOL) >= REBASE_CLEAN:
            volume_factor = vmed
    note = (
        f"the provider re-adjusted {symbol}'s history (split or dividend): the new bars are the stored ones x"
        f" {factor:.6g} on {int(on_basis.sum())} of {n} overlapping bars, so the {n_kept} kept stored bars were"
        f" rescaled onto the new basis (prices x {factor:.6g}, volume x {volume_factor:.6g})"
    )
    return n_kept, factor, volume_factor, note


def check_timeframe(label: str) -> str:
    """Normalise a timeframe label (``1H`` -> ``1h``, ``daily`` -> ``1d``), raising DataError when invalid."""
    return normalise_timeframe(label)
