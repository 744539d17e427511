"""Validate canonical OHLCV frames; fail, repair or drop bad rows and report every change."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mqc.core.data.timeframe import epoch_seconds, infer_bar_seconds, label_for_seconds, to_datetime64
from mqc.core.errors import DataError

OnError = Literal["fail", "repair", "drop"]


@dataclass
class Issue:
    kind: str
    row: int  # 1-based line in the source file (header is line 1), or -1 when not tied to one row
    field: str
    detail: str
    action: str  # "error", "repaired", "dropped", "warning"

    def line(self) -> str:
        where = f"row {self.row}" if self.row >= 0 else "file"
        return f"{where}, field {self.field!r}: {self.detail} [{self.action}]"


@dataclass
class ValidationReport:
    symbol: str
    source: str
    rows_in: int = 0
    rows_out: int = 0
    bar_seconds: int | None = None
    timeframe: str | None = None
    issues: list[Issue] = field(default_factory=list)
    gaps: int = 0
    largest_gap_bars: float = 0.0

    @property
    def repaired(self) -> int:
        return sum(1 for i in self.issues if i.action == "repaired")

    @property
    def dropped(self) -> int:
        return self.rows_in - self.rows_out

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.action == "warning"]

    def to_dict(self) -> dict:
        return {
            "symbol": self.symbol,
            "source": self.source,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "timeframe": self.timeframe,
            "repaired": self.repaired,
            "dropped": self.dropped,
            "gaps": self.gaps,
            "largest_gap_bars": self.largest_gap_bars,
            "issues": [i.__dict__ for i in self.issues],
        }


def _fail_or(
    report: ValidationReport, on_error: OnError, kind: str, rows: np.ndarray, fld: str, detail: str, fixable: bool
) -> str:
    """Record an issue for each row; raise on ``fail``. Returns the action taken."""
    if rows.size == 0:
        return "none"
    if on_error == "fail":
        more = f" (and {rows.size - 1} more rows)" if rows.size > 1 else ""
        raise DataError(
            f"{report.source}: row {int(rows[0])}, field {fld!r}: {detail}{more}",
            hint="fix the file, or import with --on-error repair (fix what can be fixed) or --on-error drop",
        )
    action = "repaired" if (on_error == "repair" and fixable) else "dropped"
    for r in rows:
        report.issues.append(Issue(kind, int(r), fld, detail, action))
    return action


def validate_bars(
    df: pd.DataFrame,
    *,
    symbol: str,
    source: str,
    on_error: OnError = "fail",
    spike_sigma: float = 12.0,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check a canonical frame (see ``reader.read_bars``) and return a clean, sorted copy.

    Checks: required columns, NaNs, prices > 0, high >= max(open, close), low <= min(open, close),
    volume >= 0, duplicate and out-of-order timestamps, gaps against the inferred bar size, and
    isolated spikes (a close that jumps away and straight back, reported as a warning).

    Raises:
        DataError: on the first problem when ``on_error='fail'``, or when nothing valid is left.
    """
    report = ValidationReport(symbol=symbol, source=source, rows_in=len(df))
    if len(df) == 0:
        raise DataError(f"{source}: no rows of bars", hint="the file has a header but no data")
    df = df.reset_index(drop=True).copy()
    df["_row"] = np.arange(len(df)) + 2
    keep = np.ones(len(df), dtype=bool)

    # Missing timestamps.
    bad = df["timestamp"].isna().to_numpy()
    if _fail_or(report, on_error, "nan", df["_row"].to_numpy()[bad], "timestamp", "missing timestamp", False) != "none":
        keep &= ~bad

    prices = df[["open", "high", "low", "close"]].to_numpy(dtype="float64")
    for j, col in enumerate(("open", "high", "low", "close")):
        bad = ~np.isfinite(prices[:, j]) & keep
        _fail_or(report, on_error, "nan", df["_row"].to_numpy()[bad], col, "missing or non-finite price", False)
        keep &= ~bad
        bad = (prices[:, j] <= 0) & keep
        _fail_or(report, on_error, "nonpositive", df["_row"].to_numpy()[bad], col, f"price must be > 0, got {_first(prices[bad, j])}", False)
        keep &= ~bad

    vol = df["volume"].to_numpy(dtype="float64")
    bad = ~np.isfinite(vol) & keep
    if bad.any():
        # A missing volume is common in index data; it is repairable to 0 in any mode but fail.
        if on_error == "fail" and not np.isnan(vol[keep]).all():
            _fail_or(report, on_error, "nan", df["_row"].to_numpy()[bad], "volume", "missing volume", True)
        if np.isnan(vol[keep]).all():
            report.issues.append(Issue("nan", -1, "volume", "no volume in this file; stored as 0", "warning"))
        else:
            _fail_or(report, "repair" if on_error == "repair" else on_error, "nan", df["_row"].to_numpy()[bad], "volume", "missing volume", True)
            if on_error == "drop":
                keep &= ~bad
        vol = np.where(np.isfinite(vol), vol, 0.0)
    bad = (vol < 0) & keep
    action = _fail_or(report, on_error, "negative", df["_row"].to_numpy()[bad], "volume", f"volume must be >= 0, got {_first(vol[bad])}", True)
    if action == "repaired":
        vol = np.abs(vol)
    elif action == "dropped":
        keep &= ~bad
    df["volume"] = vol

    o, h, lo, c = (prices[:, j] for j in range(4))
    with np.errstate(invalid="ignore"):
        bad_h = (h < np.maximum(o, c)) & keep
        bad_l = (lo > np.minimum(o, c)) & keep
    action = _fail_or(report, on_error, "ohlc", df["_row"].to_numpy()[bad_h], "high", "high is below max(open, close)", True)
    if action == "repaired":
        df.loc[bad_h, "high"] = np.maximum.reduce([o, h, lo, c])[bad_h]
    elif action == "dropped":
        keep &= ~bad_h
    action = _fail_or(report, on_error, "ohlc", df["_row"].to_numpy()[bad_l & keep], "low", "low is above min(open, close)", True)
    if action == "repaired":
        df.loc[bad_l, "low"] = np.minimum.reduce([o, h, lo, c])[bad_l]
    elif action == "dropped":
        keep &= ~bad_l

    df = df[keep]
    ts = to_datetime64(df["timestamp"]).astype(np.int64)
    order_bad = np.flatnonzero(np.diff(ts) < 0)
    if order_bad.size:
        rows = df["_row"].to_numpy()[order_bad + 1]
        if on_error == "fail":
            _fail_or(report, on_error, "order", rows, "timestamp", "timestamp earlier than the row before (out of order)", True)
        for r in rows:
            report.issues.append(Issue("order", int(r), "timestamp", "out of order; rows sorted", "repaired"))
        df = df.sort_values("timestamp", kind="stable")
    dup = df["timestamp"].duplicated(keep="last").to_numpy()
    if dup.any():
        rows = df["_row"].to_numpy()[dup]
        if on_error == "fail":
            _fail_or(report, on_error, "duplicate", rows, "timestamp", f"duplicate timestamp {df['timestamp'].to_numpy()[dup][0]}", True)
        for r in rows:
            report.issues.append(Issue("duplicate", int(r), "timestamp", "duplicate timestamp; kept the last row", "dropped"))
        df = df[~dup]

    if len(df) == 0:
        raise DataError(f"{source}: no valid rows left after validation", hint="check the file; every row was invalid")

    if len(df) >= 2:
        secs = infer_bar_seconds(df["timestamp"])
        report.bar_seconds = secs
        report.timeframe = label_for_seconds(secs)
        gaps = np.diff(epoch_seconds(df["timestamp"])) / secs
        # Weekends/holidays in daily equity data are 3-4 bars; only count gaps beyond a long weekend.
        threshold = 4.5 if secs >= 86400 else 1.5
        big = gaps > threshold
        if secs < 86400:
            # Intraday: overnight and weekend session gaps are normal; count gaps that skip > 4 days.
            big = gaps * secs > 4.5 * 86400
        report.gaps = int(big.sum())
        report.largest_gap_bars = float(gaps.max()) if gaps.size else 0.0
        for i in np.flatnonzero(big)[:20]:
            report.issues.append(
                Issue("gap", int(df["_row"].iloc[i + 1]), "timestamp", f"gap of {gaps[i]:.0f} bars before this row", "warning")
            )
        _flag_spikes(df, report, spike_sigma)

    report.rows_out = len(df)
    out = df.drop(columns="_row").reset_index(drop=True)
    return out, report


def _first(values: np.ndarray) -> str:
    return f"{values[0]:g}" if values.size else "?"


def _flag_spikes(df: pd.DataFrame, report: ValidationReport, sigma: float) -> None:
    """Warn about isolated spikes: a close far from both neighbours that reverts next bar."""
    c = np.log(df["close"].to_numpy(dtype="float64"))
    if c.size < 30:
        return
    r = np.diff(c)
    mad = np.median(np.abs(r - np.median(r))) * 1.4826
    if not np.isfinite(mad) or mad <= 0:
        return
    up = r[:-1] / mad
    down = r[1:] / mad
    spikes = np.flatnonzero((np.abs(up) > sigma) & (np.abs(down) > sigma) & (np.sign(up) != np.sign(down)))
    for i in spikes[:20]:
        report.issues.append(
            Issue("spike", int(df["_row"].iloc[i + 1]), "close", f"isolated spike ({up[i]:+.0f} then {down[i]:+.0f} robust sigmas)", "warning")
        )
