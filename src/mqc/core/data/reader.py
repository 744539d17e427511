"""Read OHLCV files (CSV or Parquet) of many shapes into one canonical frame.

Canonical frame: columns ``timestamp`` (datetime64[ns, UTC]), ``open high low close volume`` (float64),
one symbol per frame. Column names are matched case-insensitively with common aliases; epoch seconds
or milliseconds and time-zone-aware strings are converted to UTC.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
COLUMNS = ("open", "high", "low", "close", "volume")
SUFFIXES = (".csv", ".parquet", ".pq", ".txt")

ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("timestamp", "date", "datetime", "time", "ts", "date_time", "open_time", "opentime", "unix", "index"),
    "open": ("open", "o", "open_price"),
    "high": ("high", "h", "high_price"),
    "low": ("low", "l", "low_price"),
    "close": ("close", "c", "close_price", "last", "price"),
    "adj_close": ("adj close", "adj_close", "adjclose", "adjusted_close", "adjusted close"),
    "volume": ("volume", "v", "vol", "volume_base", "base_volume", "volume btc"),
    "symbol": ("symbol", "ticker", "asset", "pair", "instrument", "name"),
}


def _norm(name: object) -> str:
    return re.sub(r"\s+", " ", str(name).strip().lower().replace("-", "_"))


def _map_columns(columns: list[object], path: Path) -> dict[object, str]:
    normed = {c: _norm(c) for c in columns}
    mapping: dict[object, str] = {}
    for canon, aliases in ALIASES.items():
        alias_set = {_norm(a) for a in aliases}
        for original, n in normed.items():
            if n in alias_set and canon not in mapping.values() and original not in mapping:
                mapping[original] = canon
                break
    return mapping


def expand_paths(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Files, directories (their CSV/Parquet files) and glob patterns -> a sorted list of files."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw).expanduser()
        if any(ch in str(raw) for ch in "*?["):
            matches = sorted(Path(m) for m in glob.glob(str(p)))
            if not matches:
                raise DataError(f"{raw}: the pattern matches no file")
            out.extend(m for m in matches if m.is_file())
        elif p.is_dir():
            files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in SUFFIXES)
            if not files:
                raise DataError(f"{p}: no CSV or Parquet files in this folder")
            out.extend(files)
        elif p.is_file():
            out.append(p)
        else:
            raise DataError(f"{p}: no such file or folder")
    return out


def _looks_binary(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head.startswith(b"PAR1"):
        return False
    return b"\x00" in head


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty", hint="export the bars again; the file has no header and no rows")
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as exc:
            raise DataError(f"{path}: not a readable Parquet file ({type(exc).__name__}: {exc})") from exc
    if _looks_binary(path):
        raise DataError(f"{path}: binary content, not a CSV text file", hint="pass a CSV or Parquet file of OHLCV bars")
    try:
        df = pd.read_csv(path, engine="pyarrow")
    except Exception:
        try:
            df = pd.read_csv(path, sep=None, engine="python")
        except Exception as exc:
            raise DataError(f"{path}: cannot parse as CSV ({type(exc).__name__}: {exc})") from exc
    # yfinance writes a multi-row header: 'Price,Close,High,...' then 'Ticker,AAPL,...' then 'Date,,,'
    if len(df) >= 2 and _norm(df.columns[0]) in ("price", "") and _norm(str(df.iloc[0, 0])) == "ticker":
        df = pd.read_csv(path, header=0, skiprows=[1, 2])
        df = df.rename(columns={df.columns[0]: "timestamp"})
    return df


def parse_timestamps(values: pd.Series, path: Path) -> pd.Series:
    """Strings, datetimes or epoch seconds/milliseconds/microseconds -> UTC timestamps."""
    if pd.api.types.is_datetime64_any_dtype(values):
        ts = pd.to_datetime(values)
        return ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
    if pd.api.types.is_numeric_dtype(values):
        v = values.astype("float64")
        mx = np.nanmax(np.abs(v.to_numpy())) if len(v) else 0
        unit = "s" if mx < 1e11 else "ms" if mx < 1e14 else "us" if mx < 1e17 else "ns"
        return pd.to_datetime(v, unit=unit, utc=True)
    try:
        return pd.to_datetime(values.astype(str), utc=True, format="mixed")
    except (ValueError, TypeError) as exc:
        bad = _first_bad_timestamp(values)
        raise DataError(f"{path}: column 'timestamp', {bad}: not a date/time ({exc.__class__.__name__})") from exc


def _first_bad_timestamp(values: pd.Series) -> str:
    for i, v in enumerate(values):
        try:
            pd.Timestamp(str(v))
        except (ValueError, TypeError):
            return f"row {i + 2} value {str(v)[:40]!r}"
    return "some row"


def read_bars(path: str | os.PathLike[str], symbol: str | None = None) -> dict[str, pd.DataFrame]:
    """Read one file into ``{symbol: canonical frame}``.

    A file with a symbol column (a "long" file) yields one frame per symbol; otherwise the symbol is
    ``symbol`` or the file name's stem (``trainingdata/BTCUSD.csv`` -> ``BTCUSD``). Rows are kept in
    file order and not validated here: see ``validate.validate_bars``.
    """
    path = Path(path)
    df = _read_raw(path)
    if df.shape[1] == 1 and df.shape[0] >= 0 and "," not in str(df.columns[0]):
        raise DataError(
            f"{path}: only one column ({str(df.columns[0])[:40]!r}); expected timestamp,open,high,low,close,volume",
        )
    if isinstance(df.index, pd.DatetimeIndex):
        df = df.reset_index()
    mapping = _map_columns(list(df.columns), path)
    if "close" not in mapping.values() and "adj_close" in mapping.values():
        # Only an adjusted close: treat it as the close.
        for k, v in list(mapping.items()):
            if v == "adj_close":
                mapping[k] = "close"
    missing = [c for c in ("timestamp", *PRICE_COLUMNS) if c not in mapping.values()]
    if missing:
        found = ", ".join(str(c) for c in df.columns[:10])
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)} (found: {found})",
            hint="rename the columns to timestamp,open,high,low,close,volume (case-insensitive aliases like Date/Datetime work)",
        )
    df = df.rename(columns=mapping)
    if "volume" not in df.columns:
        df["volume"] = np.nan
    for col in COLUMNS:
        if not pd.api.types.is_numeric_dtype(df[col]):
            converted = pd.to_numeric(df[col], errors="coerce")
            bad = converted.isna() & df[col].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{path}: row {i + 2}, field {col!r}: {str(df[col].iloc[i])[:40]!r} is not a number",
                    hint="fix or delete that row, then import again",
                )
            df[col] = converted
    df["timestamp"] = parse_timestamps(df["timestamp"], path)
    keep = ["timestamp", *COLUMNS]
    if "symbol" in df.columns:
        out = {}
        for sym, part in df.groupby(df["symbol"].astype(str), sort=True):
            out[normalise_symbol(sym)] = part[keep].reset_index(drop=True).astype({c: "float64" for c in COLUMNS})
        return out
    sym = normalise_symbol(symbol or path.stem)
    return {sym: df[keep].reset_index(drop=True).astype({c: "float64" for c in COLUMNS})}


def normalise_symbol(symbol: str) -> str:
    s = str(symbol).strip().upper()
    if not s or not re.match(r"^[A-Z0-9][A-Z0-9._=^-]*$", s.replace("/", "-")):
        raise DataError(f"invalid symbol {symbol!r}: use letters, digits and . _ - = ^")
    return s.replace("/", "-")
