"""Inspect and export stored bars: ``mqc data show`` and ``mqc data export``."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mqc.core import atomic
from mqc.core.data.bars import Bars, bars_table
from mqc.core.data.catalog import Catalog, Entry
from mqc.core.data.integrity import repair_hint
from mqc.core.data.timeframe import format_span, parse_timeframe
from mqc.core.data.validate import validate_arrays
from mqc.core.dates import SECONDS_PER_YEAR
from mqc.core.errors import DataError
from mqc.core.metrics import compute_metrics, max_drawdown

_BLOCKS = "▁▂▃▄▅▆▇█"


@dataclass
class SymbolSummary:
    """Statistics of one stored symbol (``stats`` and ``last_bars`` are JSON-ready)."""

    entry: Entry
    stats: dict
    gaps: list[dict]
    last_bars: list[dict]
    closes: list[float] = field(default_factory=list)  # downsampled closes for a chart
    verified: bool = True
    also: list[str] = field(default_factory=list)  # other timeframes the symbol is stored at

    def to_dict(self) -> dict:
        return {
            "entry": self.entry.__dict__,
            "stats": self.stats,
            "gaps": self.gaps,
            "last_bars": self.last_bars,
            "closes": self.closes,
            "verified": self.verified,
            "also_stored_at": self.also,
        }


def _iso(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")).replace("T", " ")


def _downsample(x: np.ndarray, width: int) -> np.ndarray:
    if x.size <= width:
        return x
    # Last close of each of ``width`` equal buckets: keeps the chart's end at the latest close.
    edges = np.linspace(0, x.size, width + 1).astype(int)[1:] - 1
    return x[edges]


def sparkline(values: list[float] | np.ndarray, width: int = 60) -> str:
    """A one-line chart of ``values`` in Unicode blocks (``▁▂▃▄▅▆▇█``)."""
    v = _downsample(np.asarray(values, dtype=np.float64), width)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return ""
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        return _BLOCKS[0] * v.size
    idx = np.round((v - lo) / (hi - lo) * (len(_BLOCKS) - 1)).astype(int)
    return "".join(_BLOCKS[i] for i in idx)


def summarize(
    symbol: str,
    timeframe: str | None = None,
    *,
    catalog: Catalog | None = None,
    last: int = 5,
    width: int = 60,
    prefer: str | None = None,
) -> SymbolSummary:
    """Summary statistics, gaps, the last ``last`` bars and chart points of a stored symbol.

    Args:
        timeframe: the bar size to show; when None, the only one stored, else ``prefer`` (the
            configured default, ``1d`` unless a profile says otherwise, as train and forecast use).

    Raises:
        ArtifactNotFound: the symbol is not stored.
        DataError: stored at several timeframes, none given and ``prefer`` not among them.
    """
    from mqc.core.data.reader import normalise_symbol

    cat = catalog or Catalog()
    stored = [e.timeframe for e in cat.entries() if e.symbol == normalise_symbol(symbol)]
    if timeframe is None and prefer and len(stored) > 1 and prefer in stored:
        timeframe = prefer
    altered: list[str] = []  # shown (marked MISMATCH, with the repair) rather than refused: show is for looking
    entry, ts, cols = cat.load_arrays(symbol, timeframe, allow_altered=True, warnings=altered)
    close = cols["close"]
    # Rows are numbered like import's (the header is line 1, the first bar line 2): the line of the
    # bar in `mqc data export`'s CSV, and in the imported file when the import dropped no row.
    bars = Bars(entry.symbol, entry.key, ts, cols, np.arange(ts.size, dtype=np.int64) + 2)
    bar_seconds = parse_timeframe(entry.timeframe)
    _, report = validate_arrays(bars, on_error="repair", bar_seconds=bar_seconds)
    years = (ts[-1] - ts[0]) / 1e9 / SECONDS_PER_YEAR if ts.size > 1 else 0.0
    bpy = (ts.size - 1) / years if years > 0 else float("nan")
    # Buy-and-hold of the symbol through the one metrics module, as backtests and training report
    # figures: compounded simple returns, CAGR over the bars held, volatility of simple returns.
    held = close[1:] / close[:-1] - 1.0
    m = compute_metrics(held, float(bpy)) if np.isfinite(bpy) else {}
    stats = {
        "rows": int(ts.size),
        "first": _iso(ts[0]),
        "last": _iso(ts[-1]),
        "timeframe": entry.timeframe,
        "bars_per_year": round(float(bpy), 1) if np.isfinite(bpy) else None,
        "last_close": float(close[-1]),
        "min_close": float(close.min()),
        "max_close": float(close.max()),
        "total_return": float(close[-1] / close[0] - 1.0),
        "annual_return": m["annual_return"] if m else None,
        "annual_volatility": m["volatility"] if m and held.size > 1 else None,
        # A positive loss fraction (0.65 = 65% below the peak), as backtest and train report it.
        "max_drawdown": max_drawdown(held),
        "mean_volume": float(cols["volume"].mean()),
        "zero_volume_bars": int((cols["volume"] == 0).sum()),
        "gaps": report.gaps,
        "largest_gap_bars": round(report.largest_gap_bars, 1),  # in bar lengths of clock time
        "largest_gap": format_span(report.largest_gap_bars * bar_seconds),
        "warnings": [
            *(f"{w}; repair: {repair_hint(entry)}" for w in altered),
            *(i.line() for i in report.issues if i.kind not in ("gap",)),
        ],
    }
    gaps = [
        {"row": i.row, "before": _iso(ts[i.row - 2]), "detail": i.detail}
        for i in report.issues
        if i.kind == "gap" and i.row > 0
    ]
    n = min(last, ts.size)
    last_bars = [
        {"timestamp": _iso(ts[k]), **{c: float(cols[c][k]) for c in cols}} for k in range(ts.size - n, ts.size)
    ]
    also = [tf for tf in stored if tf != entry.timeframe]
    return SymbolSummary(
        entry, stats, gaps, last_bars, [float(x) for x in _downsample(close, width)], not altered, also
    )


def export_symbol(
    symbol: str,
    to: str = "csv",
    out: str | Path | None = None,
    *,
    timeframe: str | None = None,
    catalog: Catalog | None = None,
) -> Path:
    """Write a stored symbol to CSV (``timestamp,open,high,low,close,volume``, UTC) or Parquet.

    Daily bars at midnight are written as plain dates; others as ISO-8601 ``...Z``. The file can be
    imported again unchanged (the round trip is exact).

    Args:
        out: a file, or a folder (an existing one, or any path ending in ``/``, created when missing)
            that receives ``<SYMBOL>_<timeframe>.<ext>``.

    Returns:
        The written path (default ``./<SYMBOL>_<timeframe>.<ext>``).

    Raises:
        DataError: unknown format. ArtifactNotFound: the symbol is not stored.
    """
    if to not in ("csv", "parquet"):
        raise DataError(f"unknown export format {to!r}", hint="use --to csv or --to parquet")
    cat = catalog or Catalog()
    entry, ts, cols = cat.load_arrays(symbol, timeframe)
    name = f"{entry.symbol}_{entry.timeframe}.{to}"
    path = Path(out) if out else Path(name)
    # "exports/" (trailing separator) or an existing folder means: write into that folder.
    if out and (str(out).endswith(("/", os.sep)) or path.is_dir()):
        path.mkdir(parents=True, exist_ok=True)
        path = path / name
    if to == "parquet":
        import pyarrow.parquet as pq

        with atomic.atomic_path(path) as tmp:
            pq.write_table(bars_table(ts, cols), tmp)
        return path
    day = 86_400_000_000_000
    daily = bool((ts % day == 0).all())
    stamps = ts.view("datetime64[ns]").astype("datetime64[D]" if daily else "datetime64[s]").astype(str)
    if not daily:
        stamps = np.char.add(stamps, "Z")
    import pyarrow as pa
    import pyarrow.csv as pacsv

    # pyarrow prints floats in their shortest round-trip form, so re-importing gives identical bars.
    table = pa.table(
        {"timestamp": pa.array(stamps), **{c: pa.array(cols[c]) for c in ("open", "high", "low", "close", "volume")}}
    )
    with atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(b"timestamp,open,high,low,close,volume\n")
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))
    return path
