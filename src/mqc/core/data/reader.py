"""Read OHLCV files (CSV or Parquet) of many shapes into one canonical form.

Canonical frame: columns ``timestamp`` (datetime64[ns, UTC]), ``open high low close volume`` (float64),
one symbol per frame. Column names are matched case-insensitively with common aliases; epoch seconds,
milliseconds, microseconds or nanoseconds and time-zone-aware strings are converted to UTC; naive
times are taken as UTC. yfinance's multi-row CSV header (``Price``/``Ticker``/``Date``) is recognised
and its ticker becomes the symbol.

CSV files are parsed by pyarrow with typed timestamp inference (multi-threaded, no per-row Python);
timestamp columns are turned into UTC nanoseconds by ``timestamps.py`` (one rule per column, so a
row is never read under a different rule from its neighbours).
"""

from __future__ import annotations

import csv
import glob
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core.data.bars import COLUMNS, PRICE_COLUMNS, Bars, LineNumbers
from mqc.core.data.dialect import US, NumberFormat, parse_numbers, sample_lines, sniff_number_format
from mqc.core.data.timestamps import ISO_HINT, local_offsets, parse_timestamps, timestamps_ns
from mqc.core.errors import ArtifactNotFound, DataError

__all__ = [
    "ALIASES",
    "COLUMNS",
    "PRICE_COLUMNS",
    "SUFFIXES",
    "expand_paths",
    "normalise_symbol",
    "parse_timestamps",
    "read_bars",
    "read_file",
]

SUFFIXES = (".csv", ".parquet", ".pq", ".txt", ".tsv", ".gz")
PARQUET_SUFFIXES = (".parquet", ".pq")

ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": (
        "timestamp",
        "date",
        "datetime",
        "time",
        "ts",
        "date_time",
        "open_time",
        "opentime",
        "unix",
        "index",
        "__index_level_0__",
        "gmt time",
        "local time",
    ),
    "open": ("open", "o", "open_price", "opening price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last", "price", "closing price"),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted_close", "adjusted close"),
    "volume": ("volume", "v", "vol", "volume_base", "base_volume", "volume btc", "volume_from"),
    "symbol": ("symbol", "ticker", "asset", "pair", "instrument", "name"),
}
_ALIAS_SETS = {canon: {re.sub(r"\s+", " ", a.lower().replace("-", "_")) for a in al} for canon, al in ALIASES.items()}


def _norm(name: object) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower().replace("-", "_"))


def _map_columns(columns: list[str]) -> dict[str, str]:
    """Original column name -> canonical name; the first matching column wins each canonical slot.

    An unnamed first column (a pandas index written with ``to_csv``) is taken as the timestamp.
    """
    mapping: dict[str, str] = {}
    if (
        columns
        and _norm(columns[0]) in ("", "unnamed: 0")
        and not any(_norm(c) in _ALIAS_SETS["timestamp"] for c in columns)
    ):
        mapping[columns[0]] = "timestamp"
    for canon, alias_set in _ALIAS_SETS.items():
        if canon in mapping.values():
            continue
        for original in columns:
            if _norm(original) in alias_set and original not in mapping:
                mapping[original] = canon
                break
    if "close" not in mapping.values() and "adj_close" in mapping.values():
        # Only an adjusted close: it is the best close there is.
        mapping = {k: "close" if v == "adj_close" else v for k, v in mapping.items()}
    return mapping


def expand_paths(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Files, directories (their CSV/Parquet files) and glob patterns -> a list of files.

    Raises:
        DataError: when a pattern matches nothing or a folder holds no data files.
        ArtifactNotFound: when a path does not exist.
    """
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if any(ch in str(raw) for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(p), recursive=True))
            files = [m for m in matches if m.is_file()]
            if not files:
                raise DataError(
                    f"{raw}: the pattern matches no file",
                    hint="check the pattern; quote it so the shell does not expand it",
                )
            out.extend(files)
        elif p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not files:
                raise _no_files_error(p)
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise ArtifactNotFound(f"{p}: no such file or folder", hint="check the path")
    seen: dict[Path, None] = {}
    for f in out:
        seen.setdefault(f.resolve(), None)
    return list(seen)


def _no_files_error(folder: Path) -> DataError:
    """The error for a folder without data files, naming its subfolders that have some (a folder is
    not searched recursively: ``daily/`` and ``hourly/`` may hold the same symbols)."""
    subs: list[tuple[str, int]] = []
    for sub in sorted(d for d in folder.iterdir() if d.is_dir()):
        n = sum(1 for f in sub.rglob("*") if f.is_file() and f.suffix.lower() in SUFFIXES)
        if n:
            subs.append((sub.name, n))
    if not subs:
        return DataError(
            f"{folder}: no CSV or Parquet files in this folder",
            hint="point at the files (*.csv, *.parquet) or their folder",
        )
    listed = ", ".join(f"{name}/ ({n} file{'s' if n > 1 else ''})" for name, n in subs[:6]) + (
        ", ..." if len(subs) > 6 else ""
    )
    first = folder / subs[0][0]
    return DataError(
        f"{folder}: no CSV or Parquet files in this folder itself; its subfolders have some: {listed}",
        hint=(
            f"import a subfolder (mqc data import {first}), or every file below with a quoted glob: mqc data import"
            f" '{folder}/**/*.csv'"
        ),
    )


def normalise_symbol(symbol: str) -> str:
    """Upper-case symbol; ``/`` becomes ``-`` (``BTC/USDT`` -> ``BTC-USDT``).

    Raises:
        DataError: for an empty symbol or one with characters other than letters, digits and ._-=^.
    """
    s = str(symbol).strip().upper().replace("/", "-")
    if not s or not re.match(r"^[A-Z0-9^][A-Z0-9._=^-]*$", s) or len(s) > 40:
        raise DataError(f"invalid symbol {symbol!r}: use letters, digits and . _ - = ^", hint="pass --symbol NAME")
    return s


# ---------------------------------------------------------------------------------------------- CSV


def _looks_binary(head: bytes) -> bool:
    if head.startswith(b"PAR1"):
        return True
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4 KiB boundary is fine; garbage earlier is not.
        return exc.start < len(head) - 4
    return False


def _open_text(path: Path):
    if path.suffix.lower() == ".gz":
        import gzip

        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="")
    return open(path, encoding="utf-8", errors="replace", newline="")


def _head_bytes(path: Path, n: int = 4096) -> bytes:
    if path.suffix.lower() == ".gz":
        import gzip

        try:
            with gzip.open(path, "rb") as fh:
                return fh.read(n)
        except OSError as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc})", hint="pass a .csv.gz made by gzip") from exc
    with open(path, "rb") as fh:
        return fh.read(n)


def file_stem(path: Path) -> str:
    """``BTCUSD.csv`` / ``BTCUSD.csv.gz`` -> ``BTCUSD``."""
    name = path.name
    for suffix in (".gz", *SUFFIXES):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name


# The longest line read whole by the Python side (header, yfinance rows, the number-format sample):
# a bar line is ~100 characters, so a longer one is cut there instead of read into memory whole.
MAX_LINE = 1 << 16


def _header_lines(path: Path, n: int = 3) -> list[list[str]]:
    with _open_text(path) as fh:
        lines = [fh.readline(MAX_LINE) for _ in range(n)]
    delim = _delimiter(lines[0])
    try:
        return [next(csv.reader([ln], delimiter=delim), []) if ln else [] for ln in lines]
    except csv.Error as exc:
        raise DataError(
            f"{path}: cannot read the first lines as CSV ({exc})",
            hint="pass a CSV with one header line, then one bar per line",
        ) from exc


def _check_lines(path: Path, head: bytes) -> None:
    """Refuse, from the first ``MAX_LINE`` bytes, a file that is one long line: a CSV of bars has a
    short header line, then one line per bar (a 200 MB line would otherwise be parsed whole)."""
    if b"\n" in head or b"\r" in head:
        return
    if len(head) >= MAX_LINE:
        raise DataError(
            f"{path}: no line break in the first {MAX_LINE // 1024} KiB: not a CSV of bars",
            hint="pass a CSV with one header line (timestamp,open,high,low,close,volume), then one bar per line",
        )
    shown = head[:40].decode("utf-8", errors="replace") + ("..." if len(head) > 40 else "")
    raise DataError(
        f"{path}: one line and no line break ({shown!r}): no bars",
        hint="pass a CSV with one header line (timestamp,open,high,low,close,volume), then one bar per line",
    )


def _delimiter(line: str) -> str:
    counts = {d: line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _read_csv(path: Path):
    """pyarrow table of the file, the bad lines it skipped, the line number of the first data row,
    and the ticker named by a yfinance header (or None)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    head = _head_bytes(path, MAX_LINE)
    if not head.strip():
        raise DataError(f"{path}: the file is empty", hint="export the bars again; the file has no header and no rows")
    if _looks_binary(head[:4096]):
        raise DataError(f"{path}: binary content, not a CSV text file", hint="pass a CSV or Parquet file of OHLCV bars")
    _check_lines(path, head)
    first = head.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    delim = _delimiter(first)
    hdr = _header_lines(path)
    ticker = None
    read_opts = pacsv.ReadOptions(block_size=1 << 24)
    first_line = 2
    if len(hdr) >= 2 and hdr[0] and _norm(hdr[0][0]) == "price" and hdr[1] and _norm(hdr[1][0]) == "ticker":
        # yfinance: 'Price,Close,High,...' / 'Ticker,AAPL,AAPL,...' / 'Date,,,,' then the rows.
        tickers = sorted({t.strip() for t in hdr[1][1:] if t.strip()})
        if len(tickers) > 1:
            raise DataError(
                f"{path}: a yfinance file with several tickers ({', '.join(tickers[:5])})",
                hint="download one ticker per file, e.g. yf.download('AAPL').to_csv('AAPL.csv')",
            )
        ticker = tickers[0] if tickers else None
        skip = 3 if len(hdr) >= 3 and hdr[2] and _norm(hdr[2][0]) in ("date", "datetime") else 2
        names = ["timestamp", *hdr[0][1:]]
        read_opts = pacsv.ReadOptions(block_size=1 << 24, skip_rows=skip, column_names=names)
        first_line = skip + 1
    else:
        names = hdr[0]
    number_format = _number_format(path, names, delim, first_line)
    bad: list[tuple[int | None, str]] = []

    def on_bad(row) -> str:
        bad.append((row.number, row.text))
        return "skip"

    parse = pacsv.ParseOptions(delimiter=delim, invalid_row_handler=on_bad)
    convert = pacsv.ConvertOptions(
        strings_can_be_null=True, quoted_strings_can_be_null=True, decimal_point=number_format.decimal
    )
    try:
        table = pacsv.read_csv(path, read_options=read_opts, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        msg = str(exc).splitlines()[0]
        if "Empty CSV file" in msg:
            raise DataError(
                f"{path}: the file is empty", hint="export the bars again; the file has no header and no rows"
            ) from exc
        raise DataError(
            f"{path}: cannot parse as CSV ({msg[:160]})", hint="check the file is a text CSV with one header line"
        ) from exc

    def column_as_text(name: str):
        """The column ``name`` re-read as text (same rows), for offsets pyarrow folded into UTC."""
        opts = pacsv.ConvertOptions(include_columns=[name], column_types={name: pa.string()}, strings_can_be_null=True)
        return pacsv.read_csv(
            path,
            read_options=read_opts,
            parse_options=pacsv.ParseOptions(delimiter=delim, invalid_row_handler=lambda _r: "skip"),
            convert_options=opts,
        ).column(name)

    return table, bad, first_line, ticker, delim, column_as_text, number_format


def _number_format(path: Path, names: list[str], delim: str, first_line: int) -> NumberFormat:
    """The decimal mark and thousands separator of the file's price and volume columns."""
    mapping = _map_columns(names)
    number_cols = [k for k, name in enumerate(names) if mapping.get(name) in (*COLUMNS, "adj_close")]
    with _open_text(path) as fh:
        for _ in range(first_line - 1):
            fh.readline(MAX_LINE)
        lines = sample_lines(iter(lambda: fh.readline(MAX_LINE), ""))
    return sniff_number_format(path, lines, delim, number_cols, first_line)


def _scan_lines(path: Path, delim: str, n_fields: int, first_line: int) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Slow path, only after pyarrow skipped malformed rows: the line number of every good row and
    the (line, text) of every bad one."""
    good: list[int] = []
    bad: list[tuple[int, str]] = []
    with _open_text(path) as fh:
        for lineno, line in enumerate(iter(lambda: fh.readline(MAX_LINE), ""), start=1):
            if len(line) >= MAX_LINE and not line.endswith("\n"):
                # An overlong line: bad, and the rest of it is skipped without being kept in memory.
                while (rest := fh.readline(MAX_LINE)) and not rest.endswith("\n"):
                    pass
                if lineno >= first_line:
                    bad.append((lineno, line[:60]))
                continue
            if lineno < first_line or not line.strip():
                continue
            try:
                fields = next(csv.reader([line], delimiter=delim), [])
            except csv.Error:
                fields = []
            if len(fields) == n_fields:
                good.append(lineno)
            else:
                bad.append((lineno, line.rstrip("\r\n")))
    return np.asarray(good, dtype=np.int64), bad


def _number_failure(rows, bad: np.ndarray, name: str, texts, number_format: NumberFormat):
    """The fail-mode ``Failure`` of a column's cells that are not numbers."""
    from mqc.core.data.validate import Failure

    at = np.flatnonzero(bad)

    def describe(k: int) -> str:
        text = str(texts[int(at[k])])[:40]
        mark = f" (this file's {number_format.describe()})" if re.search(r"\d[.,]\d", text) else ""
        return f"{text!r} is not a number{mark}"

    return Failure(rows[at], name, describe)


def _numeric(col, name: str, number_format: NumberFormat = US) -> tuple[np.ndarray, np.ndarray, object]:
    """Arrow column -> (float64 values, mask of cells that are text but not numbers, the cells as
    text (indexable; None for a numeric column)).

    Text cells are read under the file's ``number_format`` (see ``dialect.parse_numbers``)."""
    import pyarrow as pa

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t) or pa.types.is_null(t):
        v = col.cast(pa.float64()).to_numpy(zero_copy_only=False)
        return v, np.zeros(v.size, dtype=bool), None
    strings = pd.Series(col.cast(pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    v, bad = parse_numbers(strings, number_format)
    return v, bad, strings


def read_file(
    path: str | os.PathLike[str],
    *,
    symbol: str | None = None,
    on_error: str = "fail",
    adjusted: bool = False,
    defer: bool = False,
) -> list[Bars]:
    """Read one CSV/Parquet file into one ``Bars`` per symbol (file order, not yet validated).

    A file with a symbol column (a "long" file) yields one Bars per symbol (only ``symbol``'s rows
    when it is given); otherwise the symbol is ``symbol``, the ticker of a yfinance header, or the file's stem
    (``trainingdata/BTCUSD.csv`` -> ``BTCUSD``). Cells that are not numbers or dates and malformed
    lines fail under ``on_error='fail'`` and are marked invalid (dropped by validation) otherwise.

    A file with both Close and Adj Close stores Close (with a warning saying Adj Close was ignored);
    ``adjusted=True`` scales open/high/low/close by Adj Close / Close instead, so returns include
    dividends. Times written with a UTC offset keep that offset in ``Bars.offsets`` (daily bars
    are moved to their local calendar date by validation).

    Under ``on_error='fail'`` every bad cell and line is collected; the error names the first few
    rows and counts the rest. ``defer=True`` hands them to ``validate_arrays`` in ``Bars.failures``
    instead, which raises them together with its own findings.

    Raises:
        DataError: empty, binary or unparseable file, missing columns, or (fail mode, not deferred)
            bad cells; the message names the file, the rows (line numbers) and the fields.
    """
    from mqc.core.data.validate import Failure, Issue, raise_failures

    path = Path(path)
    if not path.is_file():
        raise ArtifactNotFound(f"{path}: no such file", hint="check the path")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="export the bars again; the file has no header and no rows")
    ticker = None
    column_as_text = None
    number_format = US
    notes: list[Issue] = []
    failures: list[Failure] = []  # fail mode: every bad row, raised together (here or by validation)
    if path.suffix.lower() in PARQUET_SUFFIXES:
        table = _read_parquet(path)
        rows: np.ndarray | LineNumbers = LineNumbers(1, table.num_rows)
    else:
        table, bad_lines, first_line, ticker, delim, column_as_text, number_format = _read_csv(path)
        rows = LineNumbers(first_line, table.num_rows)
        if bad_lines:
            rows, bad = _scan_lines(path, delim, table.num_columns, first_line)
            if rows.size != table.num_rows:  # quoted multi-line fields: fall back to positions
                rows = LineNumbers(first_line, table.num_rows)
            found = bad or [(0, t) for _, t in bad_lines]
            if on_error == "fail":
                n = table.num_columns
                failures.append(
                    Failure(
                        np.array([ln for ln, _ in found], dtype=np.int64),
                        "*",
                        lambda k: f"expected {n} fields, got a malformed line {found[k][1][:60]!r}",
                    )
                )
            else:
                for ln, tx in found:
                    notes.append(Issue("malformed", int(ln), "*", f"malformed line {tx[:60]!r}", "dropped"))
    names = list(table.column_names)
    mapping = _map_columns(names)
    missing = [c for c in ("timestamp", *PRICE_COLUMNS) if c not in mapping.values()]
    if missing:
        found = ", ".join(str(c) for c in names[:10])
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found})",
            hint=(
                "rename the columns to timestamp,open,high,low,close,volume (aliases like Date/Datetime/Adj Close work)"
            ),
        )
    if table.num_rows == 0:
        raise_failures(str(path), failures)  # only malformed lines: name them
        raise DataError(f"{path}: no rows of bars (only a header)", hint="the file has a header but no data")
    by_canon = {v: k for k, v in mapping.items()}
    invalid = np.zeros(table.num_rows, dtype=bool)
    stamps = timestamps_ns(table.column(by_canon["timestamp"]), path, rows)
    ts, ts_null = stamps.ns, stamps.null
    if ts_null.any():
        if on_error == "fail" and ts_null.all():
            # When no value parses, dropping rows would drop them all: the fix is the format.
            bad_at = stamps.first_wrong()
            i = bad_at if bad_at >= 0 else 0
            raise DataError(f"{path}: row {rows[i]}, field 'timestamp': {stamps.why(i)}", hint=ISO_HINT)
        if on_error == "fail":
            at = np.flatnonzero(ts_null)
            failures.append(Failure(rows[at], "timestamp", lambda k: stamps.why(int(at[k]))))
        else:
            notes.extend(
                Issue("timestamp", int(rows[k]), "timestamp", stamps.why(int(k)), "dropped")
                for k in np.flatnonzero(ts_null)
            )
        invalid |= ts_null
    offsets = local_offsets(
        table.column(by_canon["timestamp"]),
        ts,
        ts_null,
        column_as_text and (lambda: column_as_text(by_canon["timestamp"])),
    )
    cols: dict[str, np.ndarray] = {}
    for name in COLUMNS:
        if name not in by_canon:  # volume may be absent (indices): validation stores 0 with a warning
            cols[name] = np.full(table.num_rows, np.nan)
            continue
        v, bad, texts = _numeric(table.column(by_canon[name]), name, number_format)
        if bad.any():
            if on_error == "fail":
                failures.append(_number_failure(rows, bad, name, texts, number_format))
            else:
                notes.extend(Issue("number", int(r), name, "not a number", "dropped") for r in rows[bad & ~invalid])
            invalid |= bad
        cols[name] = v
    file_notes, adjustment = _adjust(table, by_canon, cols, path, adjusted, number_format)
    source = str(path)
    if "symbol" in by_canon:
        import pyarrow as pa

        enc = table.column(by_canon["symbol"]).combine_chunks().cast(pa.string()).dictionary_encode()
        codes = enc.indices.fill_null(-1).to_numpy(zero_copy_only=False)
        out = []
        for k, name in enumerate(enc.dictionary.to_pylist()):
            idx = np.flatnonzero(codes == k)
            own = set(rows[idx].tolist())
            part_notes = [n for n in notes if n.row in own] + list(file_notes)
            part_off = None if offsets is None else offsets[idx]
            part_cols = {c: v[idx] for c, v in cols.items()}
            out.append(
                Bars(
                    normalise_symbol(name),
                    source,
                    ts[idx],
                    part_cols,
                    rows[idx],
                    invalid[idx],
                    part_notes,
                    part_off,
                    adjustment,
                    bad_ts=ts_null[idx],
                )
            )
        if (codes < 0).any():
            r = int(rows[np.flatnonzero(codes < 0)[0]])
            raise DataError(f"{path}: row {r}, field 'symbol': missing symbol", hint="fill in the symbol column")
        if not defer:
            raise_failures(source, failures)
        out = sorted(out, key=lambda b: b.symbol)
        if symbol is not None:  # --symbol on a long file picks that symbol's rows
            out = [b for b in out if b.symbol == normalise_symbol(symbol)]
            if not out:
                have = ", ".join(sorted(normalise_symbol(n) for n in enc.dictionary.to_pylist())[:8])
                raise DataError(
                    f"{path}: no rows for symbol {normalise_symbol(symbol)} (the file has {have})",
                    hint="pass one of the file's symbols to --symbol",
                )
        # Malformed lines name no symbol, and fail-mode failures must stop the import whichever
        # symbol is validated first: the first returned symbol carries (and counts) them.
        out[0].notes.extend(n for n in notes if n.kind == "malformed")
        out[0].failures = list(failures)
        return out
    sym = normalise_symbol(symbol or ticker or file_stem(path))
    if not defer:
        raise_failures(source, failures)
    return [Bars(sym, source, ts, cols, rows, invalid, notes + file_notes, offsets, adjustment, failures, ts_null)]


ADJUSTED = "scaled by Adj Close / Close"


def _adjust(
    table,
    by_canon: dict[str, str],
    cols: dict[str, np.ndarray],
    path: Path,
    adjusted: bool,
    number_format: NumberFormat = US,
) -> tuple[list, str]:
    """Apply (``adjusted``) or flag (otherwise) a file's Adj Close column. Scales ``cols`` in place.

    Returns the file-level notes and the adjustment label ("" when prices are as in the file).
    """
    from mqc.core.data.validate import Issue

    if "adj_close" not in by_canon:
        if adjusted:
            return [
                Issue(
                    "adjusted",
                    -1,
                    "adj_close",
                    "no Adj Close column: prices stored as in the file (--adjusted had nothing to apply)",
                    "warning",
                )
            ], ""
        return [], ""
    if not adjusted:
        detail = (
            "the file also has Adj Close, which was ignored: close is unadjusted, so returns miss dividends; "
            "import with --adjusted to scale open/high/low/close by Adj Close / Close"
        )
        return [Issue("adjusted", -1, "adj_close", detail, "warning")], ""
    adj, _, _ = _numeric(table.column(by_canon["adj_close"]), "adj_close", number_format)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = adj / cols["close"]
    for name in PRICE_COLUMNS:
        cols[name] = cols[name] * ratio
    return [
        Issue("adjusted", -1, "close", f"open/high/low/close {ADJUSTED} (dividend- and split-adjusted)", "note")
    ], ADJUSTED


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path)
    except Exception as exc:
        raise DataError(
            f"{path}: not a readable Parquet file ({type(exc).__name__}: {str(exc)[:120]})",
            hint="check the file; re-export it",
        ) from exc


def read_bars(path: str | os.PathLike[str], symbol: str | None = None) -> dict[str, pd.DataFrame]:
    """Read one file into ``{symbol: canonical frame}`` (see ``read_file``; fails on any bad cell).

    Rows are kept in file order and not validated here: see ``validate.validate_bars``.
    """
    return {b.symbol: b.to_frame() for b in read_file(path, symbol=symbol, on_error="fail")}
