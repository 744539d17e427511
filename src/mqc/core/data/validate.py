"""Validate OHLCV bars; fail, repair or drop bad rows and report every change.

All checks are vectorised numpy over the whole file (``validate_arrays``); ``validate_bars`` is the
same on a canonical pandas frame. Rules, in order:

* rows the reader rejected (a cell that is not a number / date, a malformed line)
* prices finite, > 0 and within ``MIN_PRICE .. MAX_PRICE``; volume <= ``MAX_VOLUME`` (unfixable: fail or drop)
* volume finite and >= 0 (missing -> 0, negative -> |v| under repair; a file with no volume at all
  is stored with volume 0 and a warning)
* high >= max(open, close) and low <= min(open, close) (repair widens high / low to cover the bar)
* timestamps in order (repair and drop sort them) and unique (the last row of a duplicate wins)
* warnings only: gaps against the inferred bar size, isolated spikes (a jump that reverts next bar),
  closes ``JUMP_FACTOR`` times the previous one or more, a bar size guessed from too few steps (it is
  read from every row with a good timestamp, including rows dropped for their prices)

Under ``fail`` every rule still runs; the bad rows of all of them (and the reader's, see
``Bars.failures``) are raised together by ``raise_failures``, naming the first few by line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from mqc.core.data.bars import PRICE_COLUMNS, Bars
from mqc.core.data.timeframe import (
    DAY_NS,
    format_span,
    infer_bar_seconds_ns,
    infer_bar_size_ns,
    label_for_seconds,
)
from mqc.core.errors import DataError

# Bounds of a plausible bar. Beyond them a value is a unit error or garbage (1e308 overflows every
# return computed from it): a bad row under every --on-error. Wide enough for a micro-cap token quoted
# in BTC (1e-10) and for share classes priced in the hundreds of thousands.
MIN_PRICE, MAX_PRICE, MAX_VOLUME = 1e-15, 1e12, 1e18
# A close at least this many times the previous one (or at most its inverse) is warned about: 100x
# is a price written in cents after dollars, which no market does in one bar.
JUMP_FACTOR = 100.0

OnError = Literal["fail", "repair", "drop"]
ON_ERROR_CHOICES = ("fail", "repair", "drop")
_HINT = "fix the file, or import with --on-error repair (fix what can be fixed) or --on-error drop (drop bad rows)"


@dataclass
class Issue:
    kind: str
    row: int  # 1-based line in the source file (header is line 1), or -1 when not tied to one row
    field: str
    detail: str
    action: str  # "error", "repaired", "dropped", "warning", "note" (a normalisation, nothing lost)

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
    # The longest step between consecutive bars, in bar lengths of clock time (not missing bars).
    largest_gap_bars: float = 0.0
    # False when the bar size was inferred from too few bars to trust (2 bars: one step).
    timeframe_reliable: bool = True

    @property
    def repaired(self) -> int:
        """Rows with at least one repaired field (a bar with a bad high and a bad low counts once)."""
        return len({i.row for i in self.issues if i.action == "repaired" and i.row >= 0})

    @property
    def repaired_fields(self) -> int:
        """Individual repairs (one per field per row)."""
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
            "timeframe_reliable": self.timeframe_reliable,
            "repaired": self.repaired,
            "repaired_fields": self.repaired_fields,
            "dropped": self.dropped,
            "gaps": self.gaps,
            "largest_gap_bars": self.largest_gap_bars,
            "issues": [i.__dict__ for i in self.issues],
        }


def _fmt_ts(ns: int) -> str:
    return str(np.datetime64(int(ns), "ns").astype("datetime64[s]")).replace("T", " ")


def _fmt_many(ns: np.ndarray) -> list[str]:
    """``_fmt_ts`` of many timestamps in one numpy call (a per-value call costs ~3 us each)."""
    text = np.datetime_as_string(ns.view("datetime64[ns]").astype("datetime64[s]"), unit="s")
    return [t.replace("T", " ") for t in text.tolist()]


@dataclass
class Failure:
    """Rows that break one rule under ``--on-error fail``, described only when a message names them
    (a broken file may have millions)."""

    rows: np.ndarray  # source line of each bad row
    field: str
    describe: Callable[[int], str]  # what is wrong with the k-th of ``rows``


# Bad rows named in a fail-mode message; the rest are counted.
FAILURES_SHOWN = 3


def raise_failures(source: str, failures: list[Failure], hint: str = _HINT) -> None:
    """Raise one DataError naming the first ``FAILURES_SHOWN`` bad rows (by line) of ``failures``
    and counting the others; do nothing when there are none."""
    failures = [f for f in failures if len(f.rows)]
    if not failures:
        return
    cand: list[tuple[int, int, int]] = []
    for j, f in enumerate(failures):
        rows = np.asarray(f.rows, dtype=np.int64)
        for k in np.argsort(rows, kind="stable")[:FAILURES_SHOWN].tolist():
            cand.append((int(rows[k]), j, k))
    cand.sort()
    shown = cand[:FAILURES_SHOWN]
    # A malformed line has no field ("*").
    parts = [
        f"row {r}{'' if failures[j].field == '*' else f', field {failures[j].field!r}'}: {failures[j].describe(k)}"
        for r, j, k in shown
    ]
    n_rows = np.unique(np.concatenate([np.asarray(f.rows, dtype=np.int64) for f in failures])).size
    more = n_rows - len({r for r, _, _ in shown})
    tail = f" (and {more} more bad row{'s' if more > 1 else ''})" if more > 0 else ""
    raise DataError(f"{source}: " + "; ".join(parts) + tail, hint=hint)


class _Checker:
    """Applies one rule at a time, recording issues (fail mode: collecting failures, raised together
    once every rule has run, so the message names the first bad rows of the file whatever their rule)."""

    def __init__(self, bars: Bars, report: ValidationReport, on_error: OnError) -> None:
        self.rows = bars.rows
        self.report = report
        self.on_error = on_error
        self.failures: list[Failure] = list(bars.failures)

    def flag(
        self, mask: np.ndarray, kind: str, fld: str, detail: str, *, fixable: bool, values: np.ndarray | None = None
    ) -> str:
        """Record ``mask`` rows. Returns "none", "repaired" or "dropped" (fail mode: the rows are
        collected as failures and dropped from the rules still to run)."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return "none"
        if self.on_error == "fail":
            got = values[idx] if values is not None else None
            self.failures.append(
                Failure(self.rows[idx], fld, lambda k: detail + (f", got {got[k]:g}" if got is not None else ""))
            )
            return "dropped"
        action = "repaired" if (self.on_error == "repair" and fixable) else "dropped"
        rows = self.rows[idx].tolist()
        if values is None:
            self.report.issues.extend(Issue(kind, r, fld, detail, action) for r in rows)
        else:
            self.report.issues.extend(
                Issue(kind, r, fld, f"{detail}, got {x:g}", action)
                for r, x in zip(rows, values[idx].tolist(), strict=True)
            )
        return action


def validate_arrays(
    bars: Bars,
    *,
    on_error: OnError = "fail",
    spike_sigma: float = 12.0,
    bar_seconds: int | None = None,
) -> tuple[Bars, ValidationReport]:
    """Check one symbol's bars and return a clean copy sorted by time, plus the report.

    Args:
        bars: arrays as read (see ``reader.read_file``).
        on_error: ``fail`` raises naming the first bad rows; ``repair`` fixes what can be fixed (and drops
            the rest); ``drop`` drops every bad row.
        spike_sigma: robust z-score (both ways) beyond which a one-bar reversal is flagged.
        bar_seconds: the bar size when known (``--timeframe``); inferred from the data otherwise.

    Returns:
        (clean bars, ValidationReport listing every repair, drop and warning).

    Raises:
        DataError: in fail mode when any row is bad (naming file, the first rows and fields, and how
            many more), or when no valid row is left.
    """
    if on_error not in ON_ERROR_CHOICES:
        raise DataError(f"on_error must be one of {', '.join(ON_ERROR_CHOICES)}, got {on_error!r}")
    # Malformed lines never became bars, but they are rows of the file that are not stored.
    malformed = sum(1 for n in bars.notes if n.kind == "malformed" and n.action == "dropped")
    report = ValidationReport(symbol=bars.symbol, source=bars.source, rows_in=len(bars) + malformed)
    if len(bars) == 0:
        raise DataError(f"{bars.source}: no rows of bars", hint="the file has a header but no data")
    report.issues.extend(bars.notes)
    # The bar size is read from every row with a good timestamp, before any is dropped for its prices.
    guess = None if bar_seconds else _guess_bar_size(bars)
    chk = _Checker(bars, report, on_error)
    keep = np.ones(len(bars), dtype=bool) if bars.invalid is None else ~bars.invalid
    cols = dict(bars.cols)

    for name in PRICE_COLUMNS:
        p = cols[name]
        lo_p, hi_p = p.min(), p.max()
        if lo_p >= MIN_PRICE and hi_p <= MAX_PRICE:  # NaN propagates through min/max and fails both
            continue  # the usual clean column: two reductions, no masks
        bad = ~np.isfinite(p) & keep
        chk.flag(bad, "nan", name, "missing or non-finite price", fixable=False)
        keep &= ~bad
        with np.errstate(invalid="ignore"):
            bad = (p <= 0) & keep
        chk.flag(bad, "nonpositive", name, "price must be > 0", fixable=False, values=p)
        keep &= ~bad
        with np.errstate(invalid="ignore"):
            bad = ((p > MAX_PRICE) | (p < MIN_PRICE)) & keep
        chk.flag(
            bad,
            "absurd",
            name,
            f"not a plausible price (outside {MIN_PRICE:g} .. {MAX_PRICE:g})",
            fixable=False,
            values=p,
        )
        keep &= ~bad

    vol = cols["volume"]
    low_vol = vol.min()
    if vol.max() > MAX_VOLUME:  # inf is a missing volume (below), not an absurd one
        with np.errstate(invalid="ignore"):
            bad = (vol > MAX_VOLUME) & np.isfinite(vol) & keep
        chk.flag(bad, "absurd", "volume", f"not a plausible volume (above {MAX_VOLUME:g})", fixable=False, values=vol)
        keep &= ~bad
    # The usual clean column (every volume present and >= 0) skips both rules below.
    all_present = bool(np.isfinite(low_vol) and np.isfinite(vol.max()))
    if not all_present and (missing := ~np.isfinite(vol))[keep].all():
        report.issues.append(Issue("nan", -1, "volume", "no volume in this file; stored as 0", "warning"))
        vol = np.zeros_like(vol)
    elif not all_present and missing.any():
        action = chk.flag(missing & keep, "nan", "volume", "missing volume (repair: 0)", fixable=True)
        if action == "repaired":
            vol = np.where(missing, 0.0, vol)
        keep &= ~(missing & (action == "dropped"))
    if not (np.isfinite(low_vol) and low_vol >= 0):
        with np.errstate(invalid="ignore"):
            neg = (vol < 0) & keep
        action = chk.flag(neg, "negative", "volume", "volume must be >= 0 (repair: |volume|)", fixable=True, values=vol)
        if action == "repaired":
            vol = np.abs(vol)
        elif action == "dropped":
            keep &= ~neg
    cols["volume"] = vol

    o, h, lo, c = (cols[n] for n in PRICE_COLUMNS)
    if not _high_low_ok(o, h, lo, c):  # the screen found a broken bar: apply both rules in full
        with np.errstate(invalid="ignore"):
            bad_h = (h < np.maximum(o, c)) & keep
        action = chk.flag(
            bad_h,
            "ohlc",
            "high",
            "high is below max(open, close) (repair: high = max of the bar)",
            fixable=True,
            values=h,
        )
        if action == "repaired":
            cols["high"] = np.where(bad_h, np.maximum(np.maximum(o, c), np.maximum(h, lo)), h)
        elif action == "dropped":
            keep &= ~bad_h
        with np.errstate(invalid="ignore"):
            bad_l = (lo > np.minimum(o, c)) & keep
        action = chk.flag(
            bad_l,
            "ohlc",
            "low",
            "low is above min(open, close) (repair: low = min of the bar)",
            fixable=True,
            values=lo,
        )
        if action == "repaired":
            cols["low"] = np.where(bad_l, np.minimum(np.minimum(o, c), np.minimum(h, lo)), lo)
        elif action == "dropped":
            keep &= ~bad_l

    clean = Bars(bars.symbol, bars.source, bars.ts, cols, bars.rows, offsets=bars.offsets, adjustment=bars.adjustment)
    if not keep.all():
        clean = clean.take(keep)
    if len(clean) == 0:
        raise_failures(bars.source, chk.failures)
        raise DataError(
            f"{bars.source}: no valid rows left after validation", hint="check the file; every row was invalid"
        )
    clean = _calendar_dates(clean, report, bar_seconds or (guess[0] if guess else None))
    clean = _order_and_dedupe(clean, chk)
    raise_failures(bars.source, chk.failures)
    report.rows_out = len(clean)
    if guess:
        _set_guessed_bar_size(report, *guess)
    elif bar_seconds:
        report.bar_seconds, report.timeframe = bar_seconds, label_for_seconds(bar_seconds)
    if len(clean) >= 2:
        _gaps_and_spikes(clean, report, spike_sigma, bar_seconds)
    return clean, report


def _guess_bar_size(bars: Bars) -> tuple[int, bool, int] | None:
    """(seconds, backed, steps) of the bar size read from every row whose timestamp parsed (a row
    dropped for a bad price still has a good time); None when fewer than 2 distinct times."""
    ts = bars.ts if bars.bad_ts is None or not bars.bad_ts.any() else bars.ts[~bars.bad_ts]
    if ts.size > 1 and _step_screen(ts)[0] <= 0:
        ts = np.unique(ts)  # out of order or duplicated: the steps of the sorted distinct times
    if ts.size < 2:
        return None
    try:
        secs, backed = infer_bar_size_ns(ts)
    except DataError:
        return None  # bars less than a second apart: _gaps_and_spikes raises on the clean bars
    return secs, backed, int(ts.size - 1)


def _set_guessed_bar_size(report: ValidationReport, secs: int, backed: bool, steps: int) -> None:
    """Record an inferred bar size, warning when too few steps back it (see ``infer_bar_size_ns``)."""
    report.bar_seconds, report.timeframe = secs, label_for_seconds(secs)
    if backed:
        return
    report.timeframe_reliable = False
    basis = "the one step between 2 bars" if steps == 1 else f"{steps} unrelated steps between bars"
    report.issues.append(
        Issue(
            "timeframe",
            -1,
            "timestamp",
            f"bar size {report.timeframe} is a guess from {basis}; pass --timeframe to set it",
            "warning",
        )
    )


# Rows per block of the screening passes below. Block-sized temporaries (2 MiB) are reused by the
# allocator; full-length ones (40 MB each at 5M rows) are fresh pages on every import, and faulting
# them in costs more than the arithmetic. A screen only proves a rule has nothing to report; when it
# finds something, the rule runs in full as before, so messages and reports cannot differ.
_BLOCK = 1 << 18


def _high_low_ok(o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray) -> bool:
    """True when no bar has high < max(open, close) or low > min(open, close) (NaN compares False)."""
    with np.errstate(invalid="ignore"):
        for a in range(0, o.size, _BLOCK):
            b = slice(a, a + _BLOCK)
            if (h[b] < np.maximum(o[b], c[b])).any() or (lo[b] > np.minimum(o[b], c[b])).any():
                return False
    return True


def _step_screen(ts: np.ndarray, above_ns: int | None = None) -> tuple[int, int, np.ndarray]:
    """(min, max) of ``np.diff(ts)`` and the positions ``i`` with ``ts[i + 1] - ts[i] > above_ns``,
    computed block by block without differencing the whole series."""
    n = ts.size - 1
    lo_step, hi_step = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    found: list[np.ndarray] = []
    for a in range(0, n, _BLOCK):
        d = ts[a + 1 : min(n, a + _BLOCK) + 1] - ts[a : min(n, a + _BLOCK)]
        lo_step, hi_step = min(lo_step, int(d.min())), max(hi_step, int(d.max()))
        if above_ns is not None:
            idx = np.flatnonzero(d > above_ns)
            if idx.size:
                found.append(idx + a)
    return lo_step, hi_step, np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _calendar_dates(bars: Bars, report: ValidationReport, bar_seconds: int | None) -> Bars:
    """Bars of a day or longer sit at 00:00 UTC of their calendar date (the date in the file's own
    UTC offset, i.e. the local trading date), so a file written as ``2020-01-23T00:00-05:00`` lines
    up with a plain ``2020-01-23`` file instead of landing 5 hours later and doubling a panel."""
    if len(bars) < 2 and not bar_seconds:
        return bars
    try:
        secs = bar_seconds or infer_bar_seconds_ns(bars.ts)
    except DataError:
        return bars  # equal timestamps: the duplicate check reports them
    if secs < 86400:
        return bars
    local = bars.ts if bars.offsets is None else bars.ts + bars.offsets
    day = (local // DAY_NS) * DAY_NS
    moved = int((day != bars.ts).sum())
    if moved == 0:
        return bars
    why = "local times with a UTC offset" if bars.offsets is not None and bars.offsets.any() else "a time of day"
    report.issues.append(
        Issue(
            "calendar",
            -1,
            "timestamp",
            f"{moved} daily timestamps written as {why} moved to their calendar date at 00:00 UTC",
            "note",
        )
    )
    out = Bars(bars.symbol, bars.source, day, bars.cols, bars.rows, bars.invalid, bars.notes, None, bars.adjustment)
    return out


def _order_and_dedupe(bars: Bars, chk: _Checker) -> Bars:
    """Sort (repair/drop) or fail on out-of-order rows, then drop or fail on duplicate timestamps."""
    if len(bars) < 2 or _step_screen(bars.ts)[0] > 0:
        return bars  # strictly increasing: nothing to sort or drop
    d = np.diff(bars.ts)
    back = np.flatnonzero(d < 0) + 1
    if back.size:
        if chk.on_error == "fail":
            ts = bars.ts
            chk.failures.append(
                Failure(
                    bars.rows[back],
                    "timestamp",
                    lambda k: (
                        f"{_fmt_ts(ts[back[k]])} is earlier than the row before ({_fmt_ts(ts[back[k] - 1])}): out of"
                        " order"
                    ),
                )
            )
            return bars  # no duplicate check on unsorted rows: it would name rows the sort moves
        chk.report.issues.extend(
            Issue("order", r, "timestamp", "out of order; rows sorted by time", "repaired")
            for r in bars.rows[back].tolist()
        )
        bars = bars.take(np.argsort(bars.ts, kind="stable"))
        d = np.diff(bars.ts)
    dup = np.flatnonzero(d == 0)  # row dup is followed by a row with the same time: keep the later one
    if dup.size:
        if chk.on_error == "fail":
            ts, rows = bars.ts, bars.rows
            chk.failures.append(
                Failure(
                    rows[dup + 1],
                    "timestamp",
                    lambda k: f"duplicate timestamp {_fmt_ts(ts[dup[k]])} (also at row {int(rows[dup[k]])})",
                )
            )
            return bars
        chk.report.issues.extend(
            Issue("duplicate", r, "timestamp", f"duplicate timestamp {t}; kept the last row", "dropped")
            for r, t in zip(bars.rows[dup].tolist(), _fmt_many(bars.ts[dup]), strict=True)
        )
        mask = np.ones(len(bars), dtype=bool)
        mask[dup] = False
        bars = bars.take(mask)
    return bars


def _gaps_and_spikes(bars: Bars, report: ValidationReport, sigma: float, bar_seconds: int | None) -> None:
    """Warn about gaps against the bar size (already in ``report``) and about isolated spikes."""
    secs = int(report.bar_seconds or infer_bar_seconds_ns(bars.ts))
    if bar_seconds and (inferred := infer_bar_seconds_ns(bars.ts)) != bar_seconds:
        report.issues.append(
            Issue(
                "timeframe",
                -1,
                "timestamp",
                f"bars look like {label_for_seconds(inferred)}, stored as {label_for_seconds(bar_seconds)} as asked",
                "warning",
            )
        )
    # Markets that trade every day (crypto, 24/7 data) should have no holes; session markets
    # (equities) skip nights, weekends and holidays, so only holes longer than 4.5 days count there.
    stride = max(1, len(bars) // 200_000)
    weekday = ((bars.ts[::stride] // 86_400_000_000_000) + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    always_open = (weekday >= 5).mean() > 0.05
    # A gap is (step / 1e9) / secs > 1.5 bars (24/7) or step / 1e9 > 4.5 days (sessions). Screen the
    # int64 steps against the limit less 0.1 % (a margin far wider than float rounding), then apply
    # the exact float rule to the few candidates: no float copy of millions of steps.
    limit_s = 1.5 * secs if always_open else 4.5 * 86400
    _, longest, cand = _step_screen(bars.ts, int(limit_s * 0.999 * 1e9))
    step_ns = bars.ts[cand + 1] - bars.ts[cand]
    step = step_ns / 1e9
    gaps = step / secs
    big = cand[gaps > 1.5] if always_open else cand[step > 4.5 * 86400]
    if big.size and not always_open:
        # Whole days the NYSE was closed (holidays, 9/11, Hurricane Sandy) are no hole in a history
        # that keeps its calendar (no bar on any of its closures; see core/calendar.py).
        from mqc.core.calendar import closures_in_gaps

        closed = closures_in_gaps(bars.ts, big, daily=secs >= 86400)
        big = big[(bars.ts[big + 1] - bars.ts[big]) / 1e9 - 86400 * closed > 4.5 * 86400]
    report.gaps = int(big.size)
    # x -> (x / 1e9) / secs is monotone in floating point too, so this is the largest per-step ratio.
    report.largest_gap_bars = float(longest / 1e9 / secs)
    for i in big[:20]:
        report.issues.append(
            Issue(
                "gap",
                int(bars.rows[i + 1]),
                "timestamp",
                gap_detail((bars.ts[i + 1] - bars.ts[i]) / 1e9, secs),
                "warning",
            )
        )
    if report.gaps > 20:
        report.issues.append(Issue("gap", -1, "timestamp", f"{report.gaps - 20} more gaps not listed", "warning"))
    _flag_spikes(bars, report, sigma)
    _flag_jumps(bars, report)


def _flag_jumps(bars: Bars, report: ValidationReport) -> None:
    """Warn about closes ``JUMP_FACTOR`` times the previous bar's or more (or 1 / it or less):
    no market moves so in one bar, a unit change (cents for dollars) or a bad value does."""
    c = bars.cols["close"]
    found: list[np.ndarray] = []
    for a in range(0, c.size - 1, _BLOCK):
        end = min(c.size - 1, a + _BLOCK)
        ratio = c[a + 1 : end + 1] / c[a:end]
        idx = np.flatnonzero((ratio >= JUMP_FACTOR) | (ratio <= 1.0 / JUMP_FACTOR))
        if idx.size:
            found.append(idx + a + 1)
    if not found:
        return
    at = np.concatenate(found)
    for i in at[:20].tolist():
        report.issues.append(
            Issue(
                "jump",
                int(bars.rows[i]),
                "close",
                f"close {c[i]:.6g} is {c[i] / c[i - 1]:.3g} x the previous bar's {c[i - 1]:.6g}: a unit change or a bad"
                " value?",
                "warning",
            )
        )
    if at.size > 20:
        report.issues.append(
            Issue("jump", -1, "close", f"{at.size - 20} more jumps of {JUMP_FACTOR:g}x or more not listed", "warning")
        )


def gap_detail(step_seconds: float, bar_seconds: int) -> str:
    """The warning text of a gap: the clock time since the previous bar, also in bar lengths.

    It is clock time, not a count of missing bars: hours when the market was closed count too, so
    two closed sessions in an hourly equity series read like ``gap of 4d 18h (114 x 1h)``.
    """
    n = step_seconds / bar_seconds
    count = f"{n:.0f}" if abs(n - round(n)) < 0.05 else f"{n:.1f}"
    return f"gap of {format_span(step_seconds)} ({count} x {label_for_seconds(bar_seconds)}) before this row"


def _flag_spikes(bars: Bars, report: ValidationReport, sigma: float) -> None:
    """Warn about isolated spikes: a close far from both neighbours that reverts next bar (for
    intraday bars, only within a session)."""
    c = bars.cols["close"]
    if c.size < 30:
        return
    # A strided sample estimates the robust scale as well as the whole series, at a fraction of the cost.
    step = max(1, (c.size - 1) // 100_000)
    sample = np.log(c[1::step] / c[:-1:step])
    mad = float(np.median(np.abs(sample - np.median(sample)))) * 1.4826
    if not np.isfinite(mad) or mad <= 0:
        return
    # |log ratio| > sigma * mad without taking the log of every bar: compare ratios with exp(+-limit).
    # Bar i is a candidate when the moves into it (ratio i) and out of it (ratio i + 1) are both big;
    # ratios are computed a block at a time (plus one to pair across the block's end).
    upper, lower = np.exp(sigma * mad), np.exp(-sigma * mad)
    n_ratio = c.size - 1
    found: list[np.ndarray] = []
    for a in range(0, n_ratio - 1, _BLOCK):
        end = min(n_ratio, a + _BLOCK + 1)
        ratio = c[a + 1 : end + 1] / c[a:end]
        big = (ratio > upper) | (ratio < lower)
        idx = np.flatnonzero(big[:-1] & big[1:])
        if idx.size:
            found.append(idx + a)
    if not found:
        return
    cand = np.concatenate(found)
    bar = report.bar_seconds
    if bar and bar < 86400:
        # Intraday: a move across a closed session (overnight, weekend) is news, not a bad print, and
        # a close that an overnight gap reverses is not a spike either: both moves must be between
        # consecutive bars of one session.
        limit = int(1.5 * bar * 1e9)
        ts = bars.ts
        cand = cand[(ts[cand + 1] - ts[cand] <= limit) & (ts[cand + 2] - ts[cand + 1] <= limit)]
        if cand.size == 0:
            return
    up = np.log(c[cand + 1] / c[cand]) / mad
    down = np.log(c[cand + 2] / c[cand + 1]) / mad
    for i, u, d in _reverting(cand, up, down)[:20]:
        report.issues.append(
            Issue(
                "spike",
                int(bars.rows[i + 1]),
                "close",
                f"isolated spike ({u:+.0f} then {d:+.0f} robust sigmas)",
                "warning",
            )
        )


def _reverting(cand: np.ndarray, up: np.ndarray, down: np.ndarray) -> list[tuple[int, float, float]]:
    """The candidate bars whose move reverses on the next bar (a spike, not a trend)."""
    keep = np.sign(up) != np.sign(down)
    return list(zip(cand[keep].tolist(), up[keep].tolist(), down[keep].tolist(), strict=True))


def validate_bars(
    df: pd.DataFrame,
    *,
    symbol: str,
    source: str,
    on_error: OnError = "fail",
    spike_sigma: float = 12.0,
) -> tuple[pd.DataFrame, ValidationReport]:
    """``validate_arrays`` on a canonical frame (see ``reader.read_bars``); returns a clean sorted frame.

    Raises:
        DataError: as ``validate_arrays``.
    """
    if len(df) == 0:
        raise DataError(f"{source}: no rows of bars", hint="the file has a header but no data")
    bars = Bars.from_frame(df.reset_index(drop=True), symbol=symbol, source=source)
    if df["timestamp"].isna().any():
        bars.invalid = df["timestamp"].isna().to_numpy()
        for r in bars.rows[bars.invalid]:
            if on_error == "fail":
                raise DataError(f"{source}: row {int(r)}, field 'timestamp': missing timestamp", hint=_HINT)
            bars.notes.append(Issue("nan", int(r), "timestamp", "missing timestamp", "dropped"))
    clean, report = validate_arrays(bars, on_error=on_error, spike_sigma=spike_sigma)
    return clean.to_frame(), report
