"""Weights files: a ``timestamp,SYM1,SYM2,...`` CSV of target weights, read, checked and placed on a
panel's bars (``mqc backtest --weights``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mqc.core.data.panel import Panel
from mqc.core.dates import iso_day, iso_seconds
from mqc.core.errors import ArtifactNotFound, DataError


def read_weights_file(path: str | Path) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """Read a ``timestamp,SYM1,SYM2,...`` CSV of target weights.

    Returns:
        (timestamps datetime64[ns] UTC [R], symbols, weights [R, S] with NaN for empty cells).
    Raises:
        ArtifactNotFound: no such file. DataError: no timestamp column, unparsable or repeated
        timestamps, non-numeric weights.
    """
    import pandas as pd

    p = Path(path).expanduser()
    if not p.is_file():
        raise ArtifactNotFound(
            f"weights file {p} not found", hint="pass a CSV with a timestamp column and one column per symbol"
        )
    try:
        df = pd.read_csv(p)
    except Exception as exc:
        raise DataError(f"{p}: not a readable CSV ({exc})") from exc
    cols = [str(c).strip() for c in df.columns]
    if not cols or cols[0].lower() not in ("timestamp", "date", "datetime", "time"):
        raise DataError(f"{p}: the first column must be 'timestamp', got {cols[0] if cols else 'nothing'!r}")
    symbols = tuple(c.upper() for c in cols[1:])
    if not symbols:
        raise DataError(f"{p}: no symbol columns after the timestamp")
    if len(set(symbols)) != len(symbols):
        raise DataError(f"{p}: repeated symbol columns")
    try:
        ts = pd.to_datetime(df.iloc[:, 0], utc=True)
    except Exception as exc:
        raise DataError(
            f"{p}: unparsable timestamp ({exc})", hint="use ISO 8601, e.g. 2024-01-31 or 2024-01-31T15:00:00Z"
        ) from exc
    values = df.iloc[:, 1:].apply(pd.to_numeric, errors="coerce")
    bad = values.isna() & df.iloc[:, 1:].notna()
    if bad.to_numpy().any():
        r, c = np.argwhere(bad.to_numpy())[0]
        raise DataError(f"{p}: row {r + 2}, column {symbols[c]}: {df.iloc[r, c + 1]!r} is not a number")
    stamps = ts.dt.tz_localize(None).to_numpy().astype("datetime64[ns]")
    if len(stamps) > 1 and not (np.diff(stamps.astype(np.int64)) > 0).all():
        i = int(np.flatnonzero(np.diff(stamps.astype(np.int64)) <= 0)[0])
        raise DataError(f"{p}: timestamps must be strictly increasing (row {i + 3}: {stamps[i + 1]} after {stamps[i]})")
    return stamps, symbols, values.to_numpy(dtype=np.float64)


def align_weights(
    stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel, where: str = "weights"
) -> np.ndarray:
    """Place weight rows on the panel's bars: ``[T, A]`` with NaN (hold) between rows.

    Every row's timestamp must be a bar of the panel (the close the decision is taken at). Before
    the first row the book is cash; after a row its weights are held without trading (they drift)
    until the next row; never back-filled. Columns the file lacks are 0 on every row it has.
    A target on a bar where the asset's close is forward-filled (``panel.filled``: a weekend or
    holiday for an equity in a mixed panel) cannot trade there: it stays pending and is placed on
    the asset's next real bar, unless a later row for that asset gets there first (see
    ``deferred_targets``).
    """
    return place_weights(stamps, symbols, values, panel, where)[0]


def deferred_targets(stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel) -> tuple[int, int]:
    """(targets moved to the asset's next real bar, targets with no real bar left to trade on)."""
    _, moved, lost = place_weights(stamps, symbols, values, panel, "weights")
    return moved, lost


def place_weights(
    stamps: np.ndarray, symbols: tuple[str, ...], values: np.ndarray, panel: Panel, where: str
) -> tuple[np.ndarray, int, int]:
    """``align_weights``'s targets, plus (targets deferred to a later real bar, targets never traded)."""
    idx = np.searchsorted(panel.timestamps, stamps)
    ok = (idx < len(panel)) & (panel.timestamps[np.minimum(idx, len(panel) - 1)] == stamps)
    if not ok.all():
        bad = stamps[~ok]
        first, last = iso_seconds(panel.timestamps[0]), iso_seconds(panel.timestamps[-1])
        raise DataError(
            f"{where}: {bad.size} row timestamp(s) match no {panel.timeframe} bar, first {iso_seconds(bad[0])} "
            f"(bars run {first} .. {last})",
            hint="each row must be the UTC timestamp of a bar whose close the decision is taken at",
        )
    if len(idx) == 0:
        raise DataError(f"{where}: no weight rows", hint="add at least one row: timestamp,SYM1,...")
    out = np.full((len(panel), panel.n_assets), np.nan)
    out[: idx[0]] = 0.0
    rows = np.zeros((len(stamps), panel.n_assets))
    for j, s in enumerate(symbols):
        rows[:, panel.symbols.index(s)] = values[:, j]
    nxt = _next_real_bars(np.asarray(panel.filled, dtype=bool))
    moved = lost = 0
    # Rows in time order: a later row landing on the same (deferred) bar overrides an earlier one.
    for i, t in enumerate(idx):
        pos = nxt[t]
        live = pos < len(panel)
        lost += int((~live).sum())
        moved += int((pos[live] != t).sum())
        cols = np.flatnonzero(live)
        out[pos[live], cols] = rows[i, live]
    return out, moved, lost


def check_columns(path: str | Path, symbols: tuple[str, ...], loaded: tuple[str, ...] | list[str]) -> None:
    """Every column of the weights file must be a loaded symbol (with a "did you mean")."""
    from mqc.core.config import did_you_mean

    unknown = [s for s in symbols if s not in loaded]
    if unknown:
        guess = did_you_mean(unknown[0], loaded) if len(unknown) == 1 else ""
        raise DataError(
            f"{path}: column(s) {', '.join(unknown)} are not among the loaded symbols {', '.join(loaded)}{guess}",
            hint="add them to --symbols, or remove those columns from the file",
        )


def drop_rows_outside(
    stamps: np.ndarray, values: np.ndarray, panel: Panel, path: str | Path
) -> tuple[np.ndarray, np.ndarray, dict[str, Any] | None]:
    """Drop weight rows before the first or after the last bar (a file spanning its symbols' union of
    dates is routine). Rows inside the bars that match none stay an error (``place_weights``)."""
    first, last = panel.timestamps[0], panel.timestamps[-1]
    keep = (stamps >= first) & (stamps <= last)
    if keep.all():
        return stamps, values, None
    if not keep.any():
        raise DataError(
            f"{path}: none of its {len(stamps)} rows ({iso_day(stamps[0])} .. {iso_day(stamps[-1])}) fall within the "
            f"{panel.timeframe} bars, which run {iso_seconds(first)} .. {iso_seconds(last)}",
            hint="load bars covering the file's dates (--symbols, --data-root, --timeframe)",
        )
    parts = []
    for mask in (stamps < first, stamps > last):
        if mask.any():
            d = stamps[mask]
            parts.append(f"{int(mask.sum())} from {iso_seconds(d[0])} to {iso_seconds(d[-1])}")
    n = int((~keep).sum())
    warning = (
        f"{Path(path).name}: {n} of {len(stamps)} weight rows lie outside the {panel.timeframe} bars "
        f"({iso_seconds(first)} .. {iso_seconds(last)}) and were dropped: {'; '.join(parts)}"
    )
    return stamps[keep], values[keep], {"rows": n, "warning": warning}


def _next_real_bars(filled: np.ndarray) -> np.ndarray:
    """``[T, A]``: for each bar and asset, the first bar >= t whose close is real (not forward-filled);
    ``T`` where none is left."""
    T = len(filled)
    pos = np.where(filled, T, np.arange(T)[:, None])
    # a running minimum from the end: the nearest real bar at or after t
    return np.minimum.accumulate(pos[::-1], axis=0)[::-1]


def carry_into_segment(targets: np.ndarray, panel: Panel, lo: int, hi: int) -> tuple[np.ndarray, int]:
    """Start a segment ``[lo, hi)`` from the target in force at its first bar, not from cash.

    For each asset without a target of its own at ``lo``, the last target at or before ``lo``
    (0 before the file's first row) is placed on the asset's first real bar in the segment, unless a
    newer target already sits between ``lo`` and that bar. Returns the new targets and how many
    assets were carried in with a non-zero weight.
    """
    out = targets.copy()
    nxt = _next_real_bars(np.asarray(panel.filled[lo:hi], dtype=bool)) + lo
    carried = 0
    for a in range(panel.n_assets):
        col = targets[: lo + 1, a]
        have = np.flatnonzero(~np.isnan(col))
        if not have.size or have[-1] == lo:
            continue
        pos = int(nxt[0, a])
        if pos >= hi or not np.isnan(targets[lo : pos + 1, a]).all():
            continue
        out[pos, a] = col[have[-1]]
        carried += bool(col[have[-1]] != 0.0)
    return out, carried
