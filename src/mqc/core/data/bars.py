"""``Bars``: one symbol's OHLCV as plain numpy arrays, the fast internal form of a canonical frame.

The import path (read -> validate -> store) works on these arrays end to end so a multi-million-row
file is never copied through pandas. ``to_frame``/``from_frame`` convert to and from the canonical
pandas frame (``timestamp`` datetime64[ns, UTC] + five float64 columns) that the public API returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mqc.core.data.timeframe import to_datetime64

COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass
class Bars:
    """Bars of one symbol in file order.

    ``ts`` holds int64 nanoseconds since the epoch (UTC); ``cols`` the five float64 columns; ``rows``
    the 1-based source line of each bar (header = line 1) so messages can name it; ``invalid`` rows the
    reader already rejected (a cell that is not a number), which validation drops or fails on.
    """

    symbol: str
    source: str
    ts: np.ndarray
    cols: dict[str, np.ndarray]
    rows: np.ndarray
    invalid: np.ndarray | None = None
    notes: list = field(default_factory=list)  # reader-level Issues (validate.Issue)
    # Per-bar UTC offset (ns) the file wrote its times in, when it wrote one: daily bars are moved
    # to their local calendar date (see validate.validate_arrays). None: times were UTC or naive.
    offsets: np.ndarray | None = None
    adjustment: str = ""  # how the reader adjusted prices ("" = as in the file)

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


def table_arrays(table) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Inverse of ``bars_table``: (int64 ns timestamps, {column: float64 array})."""
    import pyarrow as pa

    stamp = table.column("timestamp")
    if stamp.type != pa.timestamp("ns", tz="UTC"):
        stamp = stamp.cast(pa.timestamp("ns", tz="UTC"))
    ts = stamp.combine_chunks().cast(pa.int64()).to_numpy()
    cols = {c: table.column(c).combine_chunks().to_numpy(zero_copy_only=False).astype(np.float64, copy=False) for c in COLUMNS}
    return ts, cols
