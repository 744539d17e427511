"""Aligned multi-asset panels ``[T, A, F]`` and time splits with an embargo.

Alignment never back-fills: the panel starts at the latest first bar among the symbols. Inside the
common range, a bar a symbol lacks is forward-filled from its previous close (open = high = low =
close, volume 0) and marked in ``Panel.filled`` (``align='union'``), or the timestamp is dropped
for every symbol (``align='inner'``). ``PanelReport`` says what was dropped and filled, and warns
(``warnings``) when more than 10% of a symbol's bars are forward-filled, which usually means its
timestamps do not line up with the others'.

Daily (or longer) bars align on the date, but a crypto day closes at 24:00 UTC while an equity day
of the same date closes at 16:00 New York (20:00-21:00 UTC). In a panel mixing the two, a decision
"at the close of bar D" would see 3-4 hours of crypto prices the equities cannot trade on.
``mixed_close`` says what to do: ``warn`` (a ``PanelReport`` warning), ``lag_crypto`` (every crypto
series is shifted one of its own bars later, so the value at date D is crypto bar D-1, closed at
00:00 UTC of D, before any equity close of D; the price is that crypto acts a day late) or
``error``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mqc.core.data.bars import Bars
from mqc.core.data.catalog import Catalog, guess_asset_class
from mqc.core.data.config import DataConfig
from mqc.core.data.reader import COLUMNS, expand_paths
from mqc.core.data.timeframe import bars_per_year, infer_bar_seconds_ns, infer_timeframe, parse_timeframe
from mqc.core.errors import DataError

FIELDS = COLUMNS  # open, high, low, close, volume
FILL_WARN_FRAC = 0.10  # forward-filled share of a symbol's union bars above which PanelReport warns


@dataclass
class PanelReport:
    rows_before_common_start: dict[str, int] = field(default_factory=dict)
    rows_after_common_end: dict[str, int] = field(default_factory=dict)
    filled: dict[str, int] = field(default_factory=dict)
    dropped_timestamps: int = 0
    sources: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # for callers to surface (e.g. heavy forward-filling)
    lagged: list[str] = field(default_factory=list)  # symbols shifted one bar later (mixed_close="lag_crypto")

    def to_dict(self) -> dict:
        return {
            "warnings": self.warnings,
            "rows_before_common_start": self.rows_before_common_start,
            "rows_after_common_end": self.rows_after_common_end,
            "filled": self.filled,
            "dropped_timestamps": self.dropped_timestamps,
            "sources": self.sources,
            "lagged": self.lagged,
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
    mixed_close: str = "warn",
) -> Panel:
    """Align canonical per-symbol frames into a Panel (see module docstring for the rules)."""
    series = {}
    for s, f in frames.items():
        b = Bars.from_frame(f, symbol=s, source="")
        order = np.argsort(b.ts, kind="stable")
        series[s] = (b.ts[order], {c: v[order] for c, v in b.cols.items()})
    return align_arrays(series, timeframe=timeframe, align=align, asset_classes=asset_classes, mixed_close=mixed_close)


def _day(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[D]"))


def align_arrays(
    series: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    *,
    timeframe: str | None = None,
    align: str = "union",
    asset_classes: dict[str, str] | None = None,
    mixed_close: str = "warn",
) -> Panel:
    """Align ``{symbol: (int64 ns timestamps sorted, {column: float64})}`` into a Panel.

    The common range runs from the latest first bar to the earliest last bar (nothing is ever
    back-filled). ``union`` keeps every timestamp any symbol has and forward-fills the others from
    their previous close (marked in ``Panel.filled``); ``inner`` keeps timestamps all symbols share.
    ``mixed_close`` handles daily+ panels mixing crypto with equities (module docstring).

    Raises:
        DataError: no symbols, histories that do not overlap, or a mixed-close panel with
            ``mixed_close="error"``.
    """
    if not series:
        raise DataError("no symbols to load", hint="pass --symbols or import bars with mqc data import")
    if align not in ("union", "inner"):
        raise DataError(f"align must be 'union' or 'inner', got {align!r}")
    symbols = tuple(series)
    report = PanelReport()
    for s, (ts, _) in series.items():
        if ts.size == 0:
            raise DataError(f"{s}: no bars to align")
    classes = tuple((asset_classes or {}).get(s) or guess_asset_class(s) for s in symbols)
    series = _mixed_close(series, classes, timeframe, mixed_close, report)
    start = max(int(ts[0]) for ts, _ in series.values())
    end = min(int(ts[-1]) for ts, _ in series.values())
    if start > end:
        spans = ", ".join(f"{s} {_day(ts[0])}..{_day(ts[-1])}" for s, (ts, _) in series.items())
        raise DataError(
            f"the symbols' date ranges do not overlap ({spans})", hint="choose symbols whose histories overlap"
        )
    clipped = {}
    for s, (ts, cols) in series.items():
        lo, hi = np.searchsorted(ts, start, "left"), np.searchsorted(ts, end, "right")
        report.rows_before_common_start[s] = int(lo)
        report.rows_after_common_end[s] = int(ts.size - hi)
        clipped[s] = (ts[lo:hi], {c: v[lo:hi] for c, v in cols.items()})
    union = np.unique(np.concatenate([ts for ts, _ in clipped.values()]))
    if align == "inner":
        index = union
        for ts, _ in clipped.values():
            index = index[np.isin(index, ts, assume_unique=True)]
        report.dropped_timestamps = int(union.size - index.size)
    else:
        index = union
    T, A = index.size, len(symbols)
    values = np.empty((T, A, len(FIELDS)), dtype=np.float64)
    filled = np.zeros((T, A), dtype=bool)
    for a, s in enumerate(symbols):
        ts, cols = clipped[s]
        pos = np.searchsorted(ts, index)
        present = (pos < ts.size) & (ts[np.minimum(pos, ts.size - 1)] == index)
        # Index of the last real bar at or before each timestamp; the first timestamp is always real.
        last = np.maximum.accumulate(np.where(present, np.arange(T), -1))
        src = pos[last]
        for f, name in enumerate(FIELDS):
            col = cols[name][src]
            if name != "close" and not present.all():
                col = np.where(present, col, 0.0 if name == "volume" else cols["close"][src])
            values[:, a, f] = col
        filled[:, a] = ~present
        report.filled[s] = int((~present).sum())
        if T and report.filled[s] > FILL_WARN_FRAC * T:
            report.warnings.append(
                f"{s}: {report.filled[s]} of {T} bars ({report.filled[s] / T:.0%}) are forward-filled: its timestamps "
                "do not line up with the other symbols' (different calendar or time of day?)"
            )
    stamps = index.view("datetime64[ns]")
    tf = timeframe or (infer_timeframe(stamps) if T >= 2 else "1d")
    return Panel(stamps, symbols, values, filled, tf, classes, report)


DAY_SECONDS = 86_400


def _mixed_close(
    series: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]],
    classes: tuple[str, ...],
    timeframe: str | None,
    mode: str,
    report: PanelReport,
) -> dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Warn about, lag, or refuse crypto mixed with equities in a daily-or-longer panel."""
    if mode not in ("warn", "lag_crypto", "error"):
        raise DataError(f"mixed_close must be 'warn', 'lag_crypto' or 'error', got {mode!r}")
    crypto = [s for s, c in zip(series, classes, strict=True) if c == "crypto"]
    equity = [s for s, c in zip(series, classes, strict=True) if c == "equity"]
    if not crypto or not equity:
        return series
    if timeframe:
        bar_seconds = parse_timeframe(timeframe)
    else:
        sizes = [infer_bar_seconds_ns(ts) for ts, _ in series.values() if ts.size >= 2]
        bar_seconds = min(sizes) if sizes else DAY_SECONDS
    if bar_seconds < DAY_SECONDS:  # intraday bars carry their exact time: nothing to reconcile
        return series
    names = f"crypto ({', '.join(crypto)}) with equities ({', '.join(equity)})"
    why = (
        "a crypto day closes at 24:00 UTC but an equity day of the same date closes at 16:00 New York (20:00-21:00 UTC)"
    )
    if mode == "error":
        raise DataError(
            f"the daily panel mixes {names}: {why}, so bar D would show equity decisions 3-4 hours of later crypto"
            " prices",
            hint=(
                'set mixed_close = "lag_crypto" in the [data] profile table (crypto at D = its bar D-1), or load crypto'
                " and equities in separate panels"
            ),
        )
    if mode == "warn":
        report.warnings.append(
            f"the daily panel mixes {names}: {why}, so a decision at the close of bar D sees 3-4 hours of crypto prices"
            ' the equities cannot trade on (look-ahead). Fix: mixed_close = "lag_crypto" in the [data] profile table'
            " (each date uses the previous crypto bar; crypto then acts a day late), or separate panels"
        )
        return series
    out = dict(series)
    for s in crypto:
        ts, cols = series[s]
        # Re-stamp bar i-1 at bar i's time: the value at date D is the bar that closed at 00:00 UTC of D.
        out[s] = (ts[1:], {c: v[:-1] for c, v in cols.items()})
    report.lagged = list(crypto)
    report.warnings.append(
        f"mixed_close=lag_crypto: {', '.join(crypto)} shifted one bar later ({why}), so every crypto value at date D "
        "was known before the equity close of D; crypto decisions act a day late"
    )
    return out


def _clip_ns(ts: np.ndarray, cols: dict[str, np.ndarray], start: str | None, end: str | None):
    lo, hi = 0, ts.size
    if start:
        lo = int(np.searchsorted(ts, pd.Timestamp(start, tz="UTC").value, "left"))
    if end:
        e = pd.Timestamp(end, tz="UTC")
        if len(end) <= 10:  # a plain date: include the whole day
            e = e + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
        hi = int(np.searchsorted(ts, e.value, "right"))
    return ts[lo:hi], {c: v[lo:hi] for c, v in cols.items()}


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
    ranges do not overlap or a file is invalid. Every catalog file is checked against the manifest's
    content hash (``catalog.DamagedFile`` when it differs, unless ``config.allow_altered``: then the
    bars are used and ``report.warnings`` says which files differ).
    """
    cfg = config or DataConfig(symbols=tuple(symbols), timeframe=timeframe, start=start, end=end)
    syms = [s.upper() for s in cfg.symbols or symbols]
    series: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]] = {}
    classes: dict[str, str] = {}
    report_sources: dict[str, str] = {}
    warnings: list[str] = []  # catalog files read despite a changed content hash (cfg.allow_altered)
    if cfg.data_root:
        from mqc.core.data.reader import read_file
        from mqc.core.data.validate import validate_arrays

        files = expand_paths([cfg.data_root])
        for path in files:
            for bars in read_file(path, on_error=cfg.on_error):
                if (syms and bars.symbol not in syms) or bars.symbol in cfg.exclude:
                    continue
                if bars.symbol in report_sources:
                    raise DataError(
                        f"{cfg.data_root}: symbol {bars.symbol} comes from two files: {report_sources[bars.symbol]} and"
                        f" {path}",
                        hint="keep one file per symbol in the folder (move or rename the other)",
                    )
                clean, _ = validate_arrays(bars, on_error=cfg.on_error)
                series[bars.symbol] = (clean.ts, clean.cols)
                report_sources[bars.symbol] = str(path)
        missing = [s for s in syms if s not in series]
        if missing:
            raise DataError(
                f"{cfg.data_root}: no file for symbol(s) {', '.join(missing)}",
                hint="check the folder holds SYMBOL.csv for each symbol",
            )
        if syms:
            series = {s: series[s] for s in syms if s in series}
    else:
        cat = catalog or Catalog()
        if not syms:
            syms = [e.symbol for e in cat.entries(cfg.timeframe)]
            if not syms:
                raise DataError(
                    f"the catalog has no {cfg.timeframe} bars",
                    hint="mqc data sample (offline sample) or mqc data import PATH",
                )
        stored = {e.symbol: e for e in cat.entries(cfg.timeframe)}  # one manifest read for every symbol
        for s in syms:
            if s in cfg.exclude:
                continue
            found = stored.get(s) or cat.find(s, cfg.timeframe)  # find raises the "not stored" error
            entry, ts, cols = cat.read_entry(found, allow_altered=cfg.allow_altered, warnings=warnings)
            series[entry.symbol] = (ts, cols)
            classes[entry.symbol] = entry.asset_class
            report_sources[entry.symbol] = f"catalog:{entry.key}"
    if cfg.max_assets:
        series = dict(list(series.items())[: cfg.max_assets])
    for s in list(series):
        series[s] = _clip_ns(*series[s], cfg.start, cfg.end)
        if series[s][0].size == 0:
            raise DataError(
                f"{s}: no bars between {cfg.start or 'the start'} and {cfg.end or 'the end'}",
                hint="widen --start/--end",
            )
    panel = align_arrays(
        series,
        timeframe=cfg.timeframe if not cfg.data_root else None,
        align=cfg.align,
        asset_classes=classes,
        mixed_close=cfg.mixed_close,
    )
    panel.report.sources = report_sources
    panel.report.warnings[:0] = warnings
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
