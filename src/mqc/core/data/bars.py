"""``Bars``: one symbol's OHLCV as plain numpy arrays, the fast internal form of a canonical frame.

The import path (read -> validate -> store) works on these arrays end to end so a multi-million-row
file is never copied through pandas. ``to_frame``/``from_frame`` convert to and from the canonical
pandas frame (``timestamp`` datetime64[ns, UTC] + five float64 columns) that the public API returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from mqc.core.data.timeframe import to_datetime64

COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")

# How catalog files are written. Dictionary encoding is off: float prices of a long series have too
# many distinct values for a dictionary, so pyarrow would build one per column chunk only to throw
# it away (about 40 % of the write time). Sorted int64 timestamps delta-encode to almost nothing.
# Compression stays pyarrow's default (snappy). Files stay readable by any Parquet reader.
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    "use_dictionary": False,
    "column_encoding": {"timestamp": "DELTA_BINARY_PACKED"},
}


class LineNumbers:
    """The source line numbers ``first, first + 1, ...`` of ``size`` rows, computed on demand.

    A clean file needs a row's line number only when a message names it, so a multi-million-row
    import does not materialise (and page-fault) an int64 array of them. Indexing behaves like the
    equivalent ``np.arange(size) + first``: an int gives an int, a mask / index array / slice an array.
    """

    __slots__ = ("first", "size")

    def __init__(self, first: int, size: int) -> None:
        self.first, self.size = int(first), int(size)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            i = int(index) + (self.size if index < 0 else 0)
            if not 0 <= i < self.size:
                raise IndexError(f"row {index} out of range for {self.size} rows")
            return np.int64(self.first + i)
        if isinstance(index, slice):
            return np.arange(*index.indices(self.size), dtype=np.int64) + self.first
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (self.size,):
                raise IndexError(f"boolean index of shape {idx.shape} for {self.size} rows")
            return np.flatnonzero(idx).astype(np.int64) + self.first
        idx = idx.astype(np.int64, copy=False)
        if idx.size and (idx.min() < -self.size or idx.max() >= self.size):
            raise IndexError(f"row index out of range for {self.size} rows")
        return np.where(idx < 0, idx + self.size, idx) + self.first

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = np.arange(self.size, dtype=np.int64) + self.first
        return out if dtype is None else out.astype(dtype)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.first, self.first + self.size))

    def tolist(self) -> list[int]:
        return list(self)


@dataclass
class Bars:
    """Bars of one symbol in file order.

    ``ts`` holds int64 nanoseconds since the epoch (UTC); ``cols`` the five float64 columns; ``rows``
    the 1-based source line of each bar (header = line 1) so messages can name it (an int64 array, or
    a ``LineNumbers`` range when the lines are consecutive); ``invalid`` rows the
    reader already rejected (a cell that is not a number), which validation drops or fails on.
    """

    symbol: str
    source: str
    ts: np.ndarray
    cols: dict[str, np.ndarray]
    rows: np.ndarray | LineNumbers
    invalid: np.ndarray | None = None
    notes: list = field(default_factory=list)  # reader-level Issues (validate.Issue)
    # Per-bar UTC offset (ns) the file wrote its times in, when it wrote one: daily bars are moved
    # to their local calendar date (see validate.validate_arrays). None: times were UTC or naive.
    offsets: np.ndarray | None = None
    adjustment: str = ""  # how the reader adjusted prices ("" = as in the file)
    # Reader-level problems found under --on-error fail (validate.Failure), raised by validation
    # together with its own so one message names the file's first bad rows whatever their rule.
    failures: list = field(default_factory=list)
    # Rows whose timestamp did not parse (a subset of ``invalid``). The other invalid rows still have
    # a good time, which tells the bar size even though their prices are dropped.
    bad_ts: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ts.size)

    def take(self, index: np.ndarray) -> Bars:
        """A new Bars holding rows ``index`` (a bool mask or integer positions)."""
        return Bars(
            self.symbol,
            self.source,
            self.ts[index],
            {c: v[index] for c, v in self.cols.items()},
            self.rows[index],
            None if self.invalid is None else self.invalid[index],
            list(self.notes),
            None if self.offsets is None else self.offsets[index],
            self.adjustment,
            list(self.failures),
            None if self.bad_ts is None else self.bad_ts[index],
        )

    def to_frame(self) -> pd.DataFrame:
        """The canonical pandas frame (timestamp datetime64[ns, UTC], five float64 columns)."""
        ts = pd.DatetimeIndex(self.ts.view("datetime64[ns]"), tz="UTC")
        return pd.DataFrame({"timestamp": ts, **{c: self.cols[c] for c in COLUMNS}})

    @classmethod
    def from_frame(cls, df: pd.DataFrame, *, symbol: str, source: str) -> Bars:
        """Arrays from a canonical frame; ``rows`` numbers its rows 2, 3, ... like a CSV with a header."""
        ts = to_datetime64(df["timestamp"]).view(np.int64) if len(df) else np.empty(0, np.int64)
        cols = {c: np.ascontiguousarray(df[c].to_numpy(dtype=np.float64)) for c in COLUMNS}
        return cls(symbol, source, np.ascontiguousarray(ts), cols, np.arange(len(df), dtype=np.int64) + 2)


def bars_table(ts: np.ndarray, cols: dict[str, np.ndarray]):
    """A pyarrow Table (timestamp[ns, UTC] + five float64 columns) sharing the arrays' memory."""
    import pyarrow as pa

    stamp = pa.array(ts.view("datetime64[ns]"), type=pa.timestamp("ns")).cast(pa.timestamp("ns", tz="UTC"))
    return pa.table({"timestamp": stamp, **{c: pa.array(cols[c], type=pa.float64()) for c in COLUMNS}})


def write_bars(path, ts: np.ndarray, cols: dict[str, np.ndarray]) -> None:
    """Write bars to the Parquet file ``path`` (catalog layout and ``PARQUET_OPTIONS``); no fsync."""
    import pyarrow.parquet as pq

    pq.write_table(bars_table(ts, cols), path, **PARQUET_OPTIONS)


def table_arrays(table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Inverse of ``bars_table``: (int64 ns timestamps, {column: float64 array})."""
    import pyarrow as pa

    stamp = table.column("timestamp")
    if stamp.type != pa.timestamp("ns", tz="UTC"):
        stamp = stamp.cast(pa.timestamp("ns", tz="UTC"))
    ts = stamp.combine_chunks().cast(pa.int64()).to_numpy()
    cols = {
        c: table.column(c).combine_chunks().to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
        for c in COLUMNS
    }
    return ts, cols
