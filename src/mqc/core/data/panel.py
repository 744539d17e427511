"""Aligned multi-asset panels ``[T, A, F]`` and time splits with an embargo.

Alignment never back-fills: the panel starts at the latest first bar among the symbols. Inside the
common range, a bar a symbol lacks is forward-filled from its previous close (open = high = low =
close, volume 0) and marked in ``Panel.filled`` (``align='union'``), or the timestamp is dropped
for every symbol (``align='inner'``). ``PanelReport`` says what was dropped and filled.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core.data.catalog import Catalog, guess_asset_class
from mqc.core.data.config import DataConfig
from mqc.core.data.reader import COLUMNS, expand_paths, read_bars
from mqc.core.data.timeframe import bars_per_year, infer_timeframe
from mqc.core.errors import DataError

FIELDS = COLUMNS  # open, high, low, close, volume


@dataclass
class PanelReport:
    rows_before_common_start: dict[str, int] = field(default_factory=dict)
    rows_after_common_end: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    dropped_timestamps: int = 0
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "rows_before_common_start": self.rows_before_common_start,
            "rows_after_common_end": self.rows_after_common_end,
            "filled": self.filled,
            "dropped_timestamps": self.dropped_timestamps,
            "sources": self.sources,
        }


@dataclass
class Panel:
    """Aligned bars. ``values[t, a, f]`` is field ``fields[f]`` of ``symbols[a]`` at ``timestamps[t]``."""

    timestamps: np.ndarray  # datetime64[ns], UTC, strictly increasing, [T]
    symbols: tuple[str, ...]
    values: np.ndarray  # float64 [T, A, 5]
    filled: np.ndarray  # bool [T, A]: True where the bar was forward-filled (no real bar)
    timeframe: str
    asset_classes: tuple[str, ...]
    report: PanelReport = field(default_factory=PanelReport)
    fields: tuple[str, ...] = FIELDS

    def __post_init__(self) -> None:
        T, A = len(self.timestamps), len(self.symbols)
        if self.values.shape != (T, A, len(self.fields)):
            raise DataError(f"panel values shape {self.values.shape} != {(T, A, len(self.fields))}")

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    def field(self, name: str) -> np.ndarray:
        return self.values[:, :, self.fields.index(name)]

    @property
    def close(self) -> np.ndarray:
        return self.field("close")

    @property
    def open(self) -> np.ndarray:
        return self.field("open")

    @property
    def bars_per_year(self) -> float:
        return bars_per_year(self.timestamps)

    @property
    def fingerprint(self) -> str:
        """Content hash of the panel: symbols, timestamps and values. Stored in every run directory."""
        h = hashlib.sha256()
        h.update(",".join(self.symbols).encode())
        h.update(self.timestamps.astype("datetime64[ns]").astype(np.int64).tobytes())
        h.update(np.ascontiguousarray(self.values).tobytes())
        return h.hexdigest()[:16]

    def slice(self, start: int, stop: int) -> Panel:
        return Panel(
            timestamps=self.timestamps[start:stop],
            symbols=self.symbols,
            values=self.values[start:stop],
            filled=self.filled[start:stop],
            timeframe=self.timeframe,
            asset_classes=self.asset_classes,
            report=self.report,
            fields=self.fields,
        )

    def select(self, symbols: Sequence[str]) -> Panel:
        idx = [self.symbols.index(s) for s in symbols]
        return Panel(
            timestamps=self.timestamps,
            symbols=tuple(symbols),
            values=self.values[:, idx],
            filled=self.filled[:, idx],
            timeframe=self.timeframe,
            asset_classes=tuple(self.asset_classes[i] for i in idx),
            report=self.report,
            fields=self.fields,
        )

    def describe(self) -> dict:
        return {
            "symbols": list(self.symbols),
            "timeframe": self.timeframe,
            "bars": len(self),
            "first": str(pd.Timestamp(self.timestamps[0], tz="UTC")) if len(self) else None,
            "last": str(pd.Timestamp(self.timestamps[-1], tz="UTC")) if len(self) else None,
            "fingerprint": self.fingerprint,
            "asset_classes": list(self.asset_classes),
            **self.report.to_dict(),
        }


def align_frames(
    frames: dict[str, pd.DataFrame],
    *,
    timeframe: str | None = None,
    align: str = "union",
    asset_classes: dict[str, str] | None = None,
) -> Panel:
    """Align canonical per-symbol frames into a Panel (see module docstring for the rules)."""
    if not frames:
        raise DataError("no symbols to load", hint="pass --symbols or import bars with mqc data import")
    symbols = tuple(frames)
    report = PanelReport()
    start = max(f["timestamp"].iloc[0] for f in frames.values())
    end = min(f["timestamp"].iloc[-1] for f in frames.values())
    if start > end:
        spans = ", ".join(f"{s} {f['timestamp'].iloc[0]:%Y-%m-%d}..{f['timestamp'].iloc[-1]:%Y-%m-%d}" for s, f in frames.items())
        raise DataError(f"the symbols' date ranges do not overlap ({spans})", hint="choose symbols whose histories overlap")
    clipped = {}
    for s, f in frames.items():
        report.rows_before_common_start[s] = int((f["timestamp"] < start).sum())
        report.rows_after_common_end[s] = int((f["timestamp"] > end).sum())
        clipped[s] = f[(f["timestamp"] >= start) & (f["timestamp"] <= end)].set_index("timestamp")
    if align == "inner":
        index = clipped[symbols[0]].index
        for f in clipped.values():
            index = index.intersection(f.index)
        union = clipped[symbols[0]].index
        for f in clipped.values():
            union = union.union(f.index)
        report.dropped_timestamps = int(len(union) - len(index))
    else:
        index = clipped[symbols[0]].index
        for f in clipped.values():
            index = index.union(f.index)
    index = index.sort_values()
    T, A = len(index), len(symbols)
    values = np.empty((T, A, len(FIELDS)), dtype=np.float64)
    filled = np.zeros((T, A), dtype=bool)
    for a, s in enumerate(symbols):
        f = clipped[s].reindex(index)
        miss = f["close"].isna().to_numpy()
        if miss.any():
            close = f["close"].ffill()
            for col in ("open", "high", "low"):
                f[col] = f[col].where(~miss, close)
            f["close"] = close
            f["volume"] = f["volume"].where(~miss, 0.0)
        values[:, a, :] = f[list(FIELDS)].to_numpy(dtype=np.float64)
        filled[:, a] = miss
        report.filled[s] = int(miss.sum())
    ts = index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[ns]")
    tf = timeframe or infer_timeframe(ts)
    classes = tuple((asset_classes or {}).get(s) or guess_asset_class(s) for s in symbols)
    return Panel(ts, symbols, values, filled, tf, classes, report)


def _clip_dates(df: pd.DataFrame, start: str | None, end: str | None) -> pd.DataFrame:
    if start:
        df = df[df["timestamp"] >= pd.Timestamp(start, tz="UTC")]
    if end:
        e = pd.Timestamp(end, tz="UTC")
        if len(end) <= 10:  # a plain date: include the whole day
            e = e + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        df = df[df["timestamp"] <= e]
    return df


def load_panel(
    symbols: Sequence[str] = (),
    timeframe: str = "1d",
    start: str | None = None,
    end: str | None = None,
    *,
    config: DataConfig | None = None,
    catalog: Catalog | None = None,
) -> Panel:
    """Load aligned bars for ``symbols`` from the catalog, or from ``config.data_root`` when set.

    Returns a Panel whose ``report`` lists rows outside the common range, forward-filled bars and
    dropped timestamps. Raises ArtifactNotFound for a symbol the catalog lacks and DataError when
    ranges do not overlap or a file is invalid.
    """
    cfg = config or DataConfig(symbols=tuple(symbols), timeframe=timeframe, start=start, end=end)
    syms = [s.upper() for s in (cfg.symbols or symbols)]
    frames: dict[str, pd.DataFrame] = {}
    classes: dict[str, str] = {}
    report_sources: dict[str, str] = {}
    if cfg.data_root:
        from mqc.core.data.validate import validate_bars

        files = expand_paths([cfg.data_root])
        for path in files:
            for sym, df in read_bars(path).items():
                if syms and sym not in syms:
                    continue
                if sym in cfg.exclude:
                    continue
                clean, _ = validate_bars(df, symbol=sym, source=str(path), on_error=cfg.on_error)
                frames[sym] = clean
                report_sources[sym] = str(path)
        missing = [s for s in syms if s not in frames]
        if missing:
            raise DataError(f"{cfg.data_root}: no file for symbol(s) {', '.join(missing)}")
        if syms:
            frames = {s: frames[s] for s in syms}
    else:
        cat = catalog or Catalog()
        if not syms:
            syms = [e.symbol for e in cat.entries(cfg.timeframe)]
            if not syms:
                raise DataError(
                    f"the catalog has no {cfg.timeframe} bars",
                    hint="mqc data sample (offline sample) or mqc data import PATH",
                )
        for s in syms:
            if s in cfg.exclude:
                continue
            entry = cat.find(s, cfg.timeframe)
            frames[entry.symbol] = cat.load(entry.symbol, entry.timeframe)
            classes[entry.symbol] = entry.asset_class
            report_sources[entry.symbol] = f"catalog:{entry.key}"
    if cfg.max_assets:
        frames = dict(list(frames.items())[: cfg.max_assets])
    for s in list(frames):
        frames[s] = _clip_dates(frames[s], cfg.start, cfg.end).reset_index(drop=True)
        if len(frames[s]) == 0:
            raise DataError(f"{s}: no bars between {cfg.start or 'the start'} and {cfg.end or 'the end'}")
    panel = align_frames(frames, timeframe=cfg.timeframe if not cfg.data_root else None, align=cfg.align, asset_classes=classes)
    panel.report.sources = report_sources
    return panel


@dataclass(frozen=True)
class Split:
    """Index ranges into a panel: ``train``, ``val``, ``test`` as (start, stop) half-open pairs."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]
    embargo: int

    def to_dict(self) -> dict:
        return {"train": list(self.train), "val": list(self.val), "test": list(self.test), "embargo": self.embargo}

    def segment(self, name: str) -> tuple[int, int]:
        if name == "all":
            return (self.train[0], self.test[1])
        return getattr(self, name)


def time_split(n_bars: int, val_frac: float = 0.15, test_frac: float = 0.15, embargo: int = 0) -> Split:
    """Split ``n_bars`` by time into train / val / test with ``embargo`` bars dropped between them.

    The embargo keeps features whose windows straddle a boundary (and labels of the last training
    bars) from leaking into the next segment.
    """
    if n_bars <= 0:
        raise DataError("cannot split an empty panel")
    n_test = int(round(n_bars * test_frac))
    n_val = int(round(n_bars * val_frac))
    test_start = n_bars - n_test
    val_stop = test_start - (embargo if n_test else 0)
    val_start = val_stop - n_val
    train_stop = val_start - (embargo if n_val else 0)
    if train_stop <= 0 or val_start > val_stop or (n_val and val_stop - val_start < 1):
        raise DataError(
            f"{n_bars} bars are too few for val_frac={val_frac}, test_frac={test_frac} and an embargo of {embargo}",
            hint="load more history (--start earlier) or lower --lookback",
        )
    return Split((0, train_stop), (val_start, val_stop), (test_start, n_bars), embargo)


def data_root_symbols(root: str | Path) -> list[str]:
    """Symbols a ``--data-root`` folder provides (file stems), without reading the files."""
    return [p.stem.upper() for p in expand_paths([root])]
