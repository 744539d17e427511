"""Forecast origins of a rolling-origin evaluation: per symbol, or joint (one timestamp for every symbol).

A univariate model forecasts each symbol from its own bars, so each symbol gets its own origins: its
latest ``n_origins`` bars (every ``step``-th) with ``min_context`` bars before them and the longest
horizon after them, whether or not other symbols traded then. Histories that do not overlap
(one symbol 1998-2017, another 2020-2026) are evaluated side by side. Joint origins, timestamps
every symbol has, are kept for models that use the other series of a call (Chronos-2 with
cross-learning) and for ``joint_origins`` (a comparison across symbols at the same dates).

The grid is a table: column j holds symbol j's origins, rows aligned at each symbol's latest
origin; a symbol with fewer origins than the others is padded at the top (``index`` -1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mqc.core.errors import DataError
from mqc.core.forecast.calendar import utc_ns

# What to change when a symbol has too little history for an origin (options that exist on eval/tune/select).
_SHORT_HINT = (
    "import more history (mqc data import), score a shorter --horizon, or lower min_context ([forecast] min_context in"
    " a profile, or MQC_FORECAST_MIN_CONTEXT)"
)


@dataclass
class OriginGrid:
    index: np.ndarray  # int64 [O, S]: row of each origin in its symbol's frame; -1 = padding (fewer origins)
    stamps: np.ndarray  # int64 [O, S]: origin time, UTC nanoseconds (0 where padded)
    symbols: tuple[str, ...]
    joint: bool = False  # one timestamp per row, shared by every symbol
    requested: int | None = None  # origins asked for (``origins`` of EvalConfig); None = not recorded
    available: dict[str, int] | None = None  # origins each symbol's history allows at most; None = not recorded

    @property
    def valid(self) -> np.ndarray:
        """bool [O, S]: where a symbol has an origin."""
        return self.index >= 0

    @property
    def counts(self) -> dict[str, int]:
        """Origins per symbol."""
        return {s: int(n) for s, n in zip(self.symbols, self.valid.sum(axis=0), strict=True)}

    @property
    def cross_rows(self) -> np.ndarray:
        """bool [O]: rows where every symbol has an origin at one shared timestamp (a cross-section)."""
        if not len(self.symbols):
            return np.zeros(len(self.index), dtype=bool)
        return self.valid.all(axis=1) & (self.stamps == self.stamps[:, :1]).all(axis=1)

    def timestamps_of(self, symbol: str) -> pd.DatetimeIndex:
        """Origin timestamps (UTC) of one symbol, oldest first."""
        j = self.symbols.index(symbol)
        return pd.DatetimeIndex(self.stamps[self.valid[:, j], j].astype("datetime64[ns]")).tz_localize("UTC")

    @property
    def timestamps(self) -> pd.DatetimeIndex:
        """Every origin timestamp of any symbol, sorted (the row timestamps of a joint grid)."""
        ns = np.unique(self.stamps[self.valid])
        return pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC")

    def columns(self, cols: Sequence[int]) -> OriginGrid:
        """The origins of a subset of the symbols (by position)."""
        cols = list(cols)
        return OriginGrid(
            self.index[:, cols], self.stamps[:, cols], tuple(self.symbols[j] for j in cols), self.joint, self.requested
        )

    def common(self) -> OriginGrid:
        """The joint grid of the timestamps that are an origin of every symbol here.

        Raises:
            DataError: no timestamp is an origin of every symbol.
        """
        shared: np.ndarray | None = None
        for j in range(len(self.symbols)):
            ns = self.stamps[self.valid[:, j], j]
            shared = ns if shared is None else np.intersect1d(shared, ns)
        if shared is None or not len(shared):
            raise DataError(
                f"no origin common to {', '.join(self.symbols)}", hint="evaluate symbols whose histories overlap"
            )
        index = np.empty((len(shared), len(self.symbols)), dtype=np.int64)
        for j in range(len(self.symbols)):
            keep = self.valid[:, j]  # a column's origins are in time order
            index[:, j] = self.index[keep, j][np.searchsorted(self.stamps[keep, j], shared)]
        return OriginGrid(
            index, np.repeat(shared[:, None], len(self.symbols), axis=1), self.symbols, True, self.requested
        )


def _pack(
    symbols: tuple[str, ...], rows: list[np.ndarray], stamps: list[np.ndarray], joint: bool, requested: int | None
) -> OriginGrid:
    """Per-symbol origin rows -> a grid aligned at the latest origin (shorter columns padded at the top)."""
    n = max((len(r) for r in rows), default=0)
    index = np.full((n, len(symbols)), -1, dtype=np.int64)
    ns = np.zeros((n, len(symbols)), dtype=np.int64)
    for j, (r, t) in enumerate(zip(rows, stamps, strict=True)):
        if len(r):
            index[n - len(r) :, j] = r
            ns[n - len(r) :, j] = t
    return OriginGrid(index, ns, symbols, joint, requested)


def origin_grid(
    frames: Mapping[str, pd.DataFrame],
    n_origins: int,
    step: int,
    min_context: int,
    max_horizon: int,
    *,
    joint: bool = False,
    why: str | None = None,
) -> OriginGrid:
    """Each symbol's latest ``n_origins`` usable bars (every ``step``-th), or with ``joint`` the latest common ones.

    A bar is usable when ``min_context`` bars end at it and ``max_horizon`` bars follow it.

    Args:
        frames: per-symbol canonical frames.
        n_origins, step, min_context, max_horizon: see ``EvalConfig`` / ``ForecastConfig``.
        joint: origins are timestamps every symbol has (one row = one timestamp).
        why: for a joint grid, the reason it is joint (named in the error when there is none).

    Raises:
        DataError: a symbol has no usable bar, or (joint) no timestamp is usable by every symbol.
    """
    symbols = tuple(frames)
    ts = {s: pd.DatetimeIndex(frames[s]["timestamp"]) for s in symbols}
    for s in symbols:
        if len(ts[s]) < min_context + max_horizon:
            raise DataError(
                f"{s}: {len(ts[s])} bars, too few for one origin with {min_context} context bars and {max_horizon}"
                " bar(s) after it",
                hint=_SHORT_HINT,
            )
    if not joint:
        usable = {s: np.arange(min_context - 1, len(ts[s]) - max_horizon)[::-1][::step] for s in symbols}
        rows = [usable[s][:n_origins][::-1] for s in symbols]
        grid = _pack(symbols, rows, [utc_ns(ts[s][r]) for s, r in zip(symbols, rows, strict=True)], False, n_origins)
        grid.available = {s: len(u) for s, u in usable.items()}
        return grid
    ok: pd.DatetimeIndex | None = None
    for s in symbols:
        usable = ts[s][min_context - 1 : len(ts[s]) - max_horizon]
        ok = usable if ok is None else ok.intersection(usable)
    if ok is None or len(ok) == 0:
        spans = "; ".join(f"{s} {ts[s][0]:%Y-%m-%d} .. {ts[s][-1]:%Y-%m-%d}" for s in symbols)
        raise DataError(
            f"no common origin for {', '.join(symbols)} with {min_context} context bars and {max_horizon} bar(s) after"
            f" it ({spans})",
            hint=(why or "joint origins were asked for") + "; evaluate symbols whose histories overlap",
        )
    every = ok.sort_values()[::-1][::step]
    chosen = every[:n_origins][::-1]
    rows = [ts[s].get_indexer(chosen) for s in symbols]
    ns = utc_ns(chosen)
    grid = _pack(symbols, rows, [ns] * len(symbols), True, n_origins)
    grid.available = dict.fromkeys(symbols, len(every))
    return grid


# Validation origins that tune and select need per symbol: a setting or model chosen on fewer
# scores is chosen on noise (one origin is one forecast).
MIN_VALIDATION_ORIGINS = 20


def _split_sizes(n_orig: int, test_frac: float, embargo: int) -> tuple[int, int]:
    """(validation, test) origins of ``n_orig`` split with ``test_frac`` and ``embargo``."""
    n_test = max(1, int(round(n_orig * test_frac)))
    return n_orig - n_test - embargo, n_test


def origins_needed(min_val: int, test_frac: float, embargo: int) -> int:
    """The fewest origins whose split leaves ``min_val`` validation origins."""
    n = min_val + embargo + 1
    while _split_sizes(n, test_frac, embargo)[0] < min_val:
        n += 1
    return n


def split_origins(
    grid: OriginGrid,
    test_frac: float,
    max_horizon: int,
    step: int,
    *,
    min_val: int = MIN_VALIDATION_ORIGINS,
    bars: Mapping[str, int] | None = None,
) -> tuple[OriginGrid, OriginGrid]:
    """Each symbol's validation origins first, test origins last, with an embargo so no validation outcome is a test
    bar.

    Every symbol is split on its own origins (the latest ``test_frac`` for test); a joint grid
    stays joint (every symbol has the same origins, so the same split).

    Args:
        min_val: validation origins each symbol must keep (``MIN_VALIDATION_ORIGINS`` for tune/select).
        bars: each symbol's history length, named in the error when the history is what limits the origins.

    Raises:
        DataError: a symbol has fewer than ``min_val`` validation origins; the message says whether
            ``--origins`` or the history is the limit, and the fix.
    """
    embargo = -(-max_horizon // step)
    val_rows, val_ns, test_rows, test_ns = [], [], [], []
    for j, s in enumerate(grid.symbols):
        keep = grid.valid[:, j]
        rows, ns = grid.index[keep, j], grid.stamps[keep, j]
        n_orig = len(rows)
        n_val, n_test = _split_sizes(n_orig, test_frac, embargo)
        if n_val < max(1, min_val):
            raise _too_few_origins(s, grid, n_orig, max(n_val, 0), n_test, embargo, max(1, min_val), test_frac, bars)
        val_rows.append(rows[:n_val])
        val_ns.append(ns[:n_val])
        test_rows.append(rows[n_orig - n_test :])
        test_ns.append(ns[n_orig - n_test :])
    return (
        _pack(grid.symbols, val_rows, val_ns, grid.joint, grid.requested),
        _pack(grid.symbols, test_rows, test_ns, grid.joint, grid.requested),
    )


def _too_few_origins(
    symbol: str,
    grid: OriginGrid,
    n_orig: int,
    n_val: int,
    n_test: int,
    embargo: int,
    min_val: int,
    test_frac: float,
    bars: Mapping[str, int] | None,
) -> DataError:
    """The error for a split short of validation origins, naming what limits them and the fix."""
    need = origins_needed(min_val, test_frac, embargo)
    what = (
        f"{symbol}: {n_val} validation origin(s) ({n_orig} origins: {n_test} test, an embargo of {embargo}); tune and"
        f" select need at least {min_val} validation origins, i.e. {need} origins"
    )
    if grid.available is not None and grid.available.get(symbol, 0) >= need:
        return DataError(what, hint=f"raise --origins to {need} or more")
    history = f"{bars[symbol]:,}-bar history" if bars and symbol in bars else "history"
    where = "the history common to the symbols" if grid.joint else f"the {history}"
    return DataError(
        f"{what}, and {where} allows only {grid.available[symbol] if grid.available else n_orig} (--origins cannot"
        " help)",
        hint=(
            f"import more history for {symbol} (mqc data import), score a shorter --horizon (the embargo is the longest"
            " horizon), or lower min_context ([forecast] min_context in a profile, or MQC_FORECAST_MIN_CONTEXT)"
        ),
    )
