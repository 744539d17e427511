"""Timestamp columns -> int64 nanoseconds UTC, one parsing rule per column.

pyarrow-typed columns (and dates) are taken as they are; numeric columns are epochs in the unit most
of their values have; text is parsed by pandas under one format per column (ISO-8601, else the
explicit format that fits the most values; day-first and month-first are told apart by time
order), so a row is never read under a different rule from its neighbours. Values that do not fit
the column's rule, or fall outside the nanosecond range (1677-09-21 .. 2262-04-11), are bad rows
with a reason; ``reader.read_file`` turns them into errors or dropped rows per ``--on-error``.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from mqc.core.dates import DAY_NS
from mqc.core.errors import DataError

__all__ = ["local_offsets", "parse_timestamps", "timestamps_ns"]


_I64_MAX = np.iinfo(np.int64).max


def _epoch_unit(mx: float) -> str:
    return "s" if mx < 1e11 else "ms" if mx < 1e14 else "us" if mx < 1e17 else "ns"


_STORABLE = "outside 1677-09-21 .. 2262-04-11, the dates that can be stored"
_PER_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_UNIT_WORDS = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}


class _Stamps(NamedTuple):
    """A timestamp column as int64 ns UTC, with every unusable value and what is wrong with it."""

    ns: np.ndarray
    null: np.ndarray  # unusable: missing, or one of the ``wrong`` masks
    wrong: list[tuple[np.ndarray, Callable[[int], str]]]  # (mask, what is wrong with value i), by kind

    def first_wrong(self) -> int:
        """Index of the first value that is wrong rather than merely missing, or -1."""
        firsts = [int(np.flatnonzero(m)[0]) for m, _ in self.wrong if m.any()]
        return min(firsts) if firsts else -1

    def why(self, i: int) -> str:
        """What is wrong with unusable value ``i`` (one line, names the value)."""
        for mask, describe in self.wrong:
            if mask[i]:
                return describe(i)
        return "missing timestamp"


def _ticks_to_ns(ticks: np.ndarray, null: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Scale int64 ``ticks`` of ``unit`` to ns; ticks whose ns value would not fit int64 become null.

    Returns (ns, null mask including the out-of-range ticks, mask of the out-of-range ticks or None).
    """
    per_ns = _PER_NS[unit]
    if per_ns == 1:
        return ticks, null, None
    lim = _I64_MAX // per_ns
    wide = None
    if ticks.size and (ticks.max() > lim or ticks.min() < -lim):
        wide = ((ticks > lim) | (ticks < -lim)) & ~null
        if wide.any():
            ticks = np.where(wide, 0, ticks)
            null = null | wide
        else:
            wide = None
    ns = ticks * per_ns if not ticks.flags.writeable else np.multiply(ticks, per_ns, out=ticks)
    return ns, null, wide


def timestamps_ns(col, path: Path, rows) -> _Stamps:
    """Arrow column -> ``_Stamps`` (int64 ns UTC, mask of unusable values, what is wrong with each).

    Raises:
        DataError: a text column of dates whose day/month order cannot be told (see ``_choose_format``).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_dictionary(t):
        col = col.cast(t.value_type)
        t = col.type
    if pa.types.is_date(t):
        col, t = col.cast(pa.timestamp("s")), pa.timestamp("s")
    if pa.types.is_timestamp(t):
        # Arrow stores UTC ticks whatever the zone: one copy of the int64 ticks, scaled to ns in
        # place (combine + cast + fill_null + to_numpy would be four passes over the column).
        null = col.is_null().to_numpy(zero_copy_only=False) if col.null_count else np.zeros(len(col), dtype=bool)
        ticks = col.cast(pa.int64())
        ticks = (ticks.fill_null(0) if col.null_count else ticks).to_numpy(zero_copy_only=False)
        ns, null, wide = _ticks_to_ns(ticks, null, t.unit)
        if wide is None:
            return _Stamps(ns, null, [])

        def beyond(i: int) -> str:
            when = str(np.datetime64(int(col[i].cast(pa.int64()).as_py()), t.unit)).replace("T", " ")
            return f"{when} is {_STORABLE}"

        return _Stamps(ns, null, [(wide, beyond)])
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        fmt = _numeric_date_format(col)
        if fmt is not None:
            # 20200102 is a date written as a number, not 1970-08-22 in epoch seconds.
            digits = col.drop_null().to_numpy(zero_copy_only=False).astype(np.int64).astype(str)
            strings = pd.Series(np.full(len(col), None, dtype=object))
            strings[~col.is_null().to_numpy(zero_copy_only=False)] = digits
            return _string_stamps(strings, path, fmt=fmt)
        return _epoch_stamps(col)
    strings = pd.Series(pc.cast(col, pa.string()).to_numpy(zero_copy_only=False), dtype=object)
    return _string_stamps(strings, path)


_NUMERIC_DATES = {8: "%Y%m%d", 12: "%Y%m%d%H%M", 14: "%Y%m%d%H%M%S"}


def _numeric_date_format(col) -> str | None:
    """``%Y%m%d[%H%M[%S]]`` when every value is a whole number of 8, 12 or 14 digits whose fields are
    a valid date (years 1800-2299) and time; None otherwise. As epochs these would be 1970 dates
    (8 digits: seconds) or 1976 ones (12 digits: milliseconds), which no market history needs."""
    v = col.drop_null().to_numpy(zero_copy_only=False)
    if v.size == 0 or not np.isfinite(v).all() or (v != np.round(v)).any() or v.min() < 18000101:
        return None
    v = v.astype(np.int64)
    n_digits = len(str(int(v.max())))
    fmt = _NUMERIC_DATES.get(n_digits)
    if fmt is None or len(str(int(v.min()))) != n_digits:
        return None
    day = v // 10 ** (n_digits - 8)
    rest = v % 10 ** (n_digits - 8)
    ok = (
        (day // 10000 >= 1800)
        & (day // 10000 <= 2299)
        & ((day // 100) % 100 >= 1)
        & ((day // 100) % 100 <= 12)
        & (day % 100 >= 1)
        & (day % 100 <= 31)
    )
    if n_digits >= 12:
        hhmm = rest // 100 if n_digits == 14 else rest
        ok &= (hhmm // 100 <= 23) & (hhmm % 100 <= 59)
        if n_digits == 14:
            ok &= rest % 100 <= 59
    return fmt if bool(ok.all()) else None


def _epoch_stamps(col) -> _Stamps:
    """Epoch numbers -> ``_Stamps``. Each value's magnitude implies a unit (``_epoch_unit``); the
    column's unit is the one most values have (the larger on a tie), and a value of another unit is
    wrong (a bad row): one epoch-seconds value among milliseconds is not a 1970 bar."""
    import pyarrow as pa

    # Unsafe cast: nanosecond epochs exceed 2**53, which a safe cast refuses (precision is kept in the int64 path).
    v = col.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
    null = ~np.isfinite(v)
    mag = np.abs(v[~null] if null.any() else v)
    lo, hi = (_epoch_unit(float(mag.min())), _epoch_unit(float(mag.max()))) if mag.size else ("s", "s")
    unit, other = hi, None
    if lo != hi:  # only a column of mixed magnitudes pays for per-value units
        with np.errstate(invalid="ignore"):
            codes = np.searchsorted(np.array([1e11, 1e14, 1e17]), np.abs(v), side="right")
        counts = np.bincount(codes[~null], minlength=4)
        code = int(np.flatnonzero(counts == counts.max())[-1])
        unit = ("s", "ms", "us", "ns")[code]
        other = (codes != code) & ~null
        null = null | other
    wrong: list[tuple[np.ndarray, Callable[[int], str]]] = []

    def shown(i: int) -> str:
        x = float(v[i])
        return f"{int(x)}" if x.is_integer() else repr(x)

    if other is not None:
        words = _UNIT_WORDS[unit]
        wrong.append(
            (
                other,
                lambda i: (
                    f"{shown(i)} looks like epoch {_UNIT_WORDS[_epoch_unit(abs(float(v[i])))]}, "
                    f"but the column holds epoch {words}"
                ),
            )
        )
    if pa.types.is_integer(col.type):
        # Integer epochs are exact in int64; those whose nanoseconds overflow it are out of range.
        ticks = col.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
        if other is not None:
            ticks = np.where(other, 0, ticks)
        ns, null, wide = _ticks_to_ns(ticks, null, unit)
    else:
        # Float epochs (with fractions) round to the nanosecond.
        scaled = np.where(null, 0.0, v) * float(_PER_NS[unit])
        wide = np.abs(scaled) >= 2.0**63
        wide = wide if wide.any() else None
        if wide is not None:
            scaled[wide], null = 0.0, null | wide
        ns = np.round(scaled).astype(np.int64)
    if wide is not None:
        wrong.append((wide, lambda i: f"{shown(i)} (epoch {_UNIT_WORDS[unit]}) is {_STORABLE}"))
    return _Stamps(ns, null, wrong)


# ------------------------------------------------------------------------------ date formats

_ISO = "ISO8601"
# Layouts tried besides those guessed from the values (a guess can miss, e.g. on a first value like
# 01/02/2020 that fits several). Day-first and month-first both, each with and without a time.
_DATE_LAYOUTS = (
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%d.%m.%Y",
    "%m.%d.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%Y/%m/%d",
    "%Y.%m.%d",
    "%Y%m%d",
    "%d-%b-%Y",
    "%d %b %Y",
    "%b %d, %Y",
    # two-digit years (pandas/strptime: 00-68 -> 20xx, 69-99 -> 19xx)
    "%m/%d/%y",
    "%d/%m/%y",
    "%d.%m.%y",
    "%m-%d-%y",
    "%d-%m-%y",
    "%d-%b-%y",
    "%d %b %y",
)
_TIME_LAYOUTS = ("", " %H:%M", " %H:%M:%S", " %H:%M:%S.%f")
_SAMPLE = 1000  # values screened per candidate format before full parses
_FORMAT_WORDS = {
    "%Y": "YYYY",
    "%y": "YY",
    "%m": "MM",
    "%d": "DD",
    "%H": "hh",
    "%I": "hh",
    "%M": "mm",
    "%S": "ss",
    "%f": "ffffff",
    "%b": "Mon",
    "%B": "Month",
    "%p": "AM/PM",
    "%z": "+hh:mm",
    "%Z": "TZ",
    "%j": "DDD",
}
ISO_HINT = "write the dates as ISO YYYY-MM-DD (e.g. 2020-01-31, or 2020-01-31 09:30:00 with a time)"


def describe_format(fmt: str) -> str:
    """A strptime format as people write it (``%d/%m/%Y`` -> ``DD/MM/YYYY``)."""
    if fmt == _ISO:
        return "ISO-8601, like 2020-01-31 or 2020-01-31 09:30:00"
    return re.sub(r"%[A-Za-z]", lambda m: _FORMAT_WORDS.get(m.group(0), m.group(0)), fmt)


def _candidate_formats(strings: pd.Series, valid: np.ndarray) -> list[str]:
    """Explicit formats worth trying on a column: pandas' guesses from a spread of its values (month-
    and day-first, each with its day/month swap) and the common layouts."""
    from pandas.tseries.api import guess_datetime_format

    idx = np.flatnonzero(valid)
    picks = idx[np.linspace(0, idx.size - 1, min(idx.size, 8)).astype(int)] if idx.size else idx
    found: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in picks:
            for dayfirst in (False, True):
                fmt = guess_datetime_format(str(strings[i]).strip(), dayfirst=dayfirst)
                if fmt:
                    found.extend((fmt, _swap_day_month(fmt)))
    found.extend(d + t for d in _DATE_LAYOUTS for t in _TIME_LAYOUTS)
    out: list[str] = []
    for fmt in found:
        # Year, day, month order (2020-31-01) is nobody's layout; it only makes ISO dates ambiguous.
        if fmt not in out and not re.search(r"%Y\W?%d\W?%m", fmt):
            out.append(fmt)
    return out


def _swap_day_month(fmt: str) -> str:
    if "%d" not in fmt or "%m" not in fmt:
        return fmt
    return fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")


def _parse_as(strings: pd.Series, fmt: str) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pd.to_datetime(strings, utc=True, format=fmt, errors="coerce")


def _is_sorted(parsed: pd.Series, descending: bool = False) -> bool:
    d = np.diff(pd.DatetimeIndex(parsed.dropna()).asi8)
    return bool((d <= 0).all() if descending else (d >= 0).all())


def _choose_format(strings: pd.Series, missing: np.ndarray, path: Path) -> tuple[str, pd.Series]:
    """One format for the whole column (and the column parsed under it): ISO-8601 unless an explicit
    format parses more values.

    Formats are screened on a spread sample of the values (the whole column up to 1,000 values);
    those parsing at least half as many sample values as the best are parsed in full, and the one
    parsing the most values wins (ISO on a tie). Two formats that parse equally many (month-first
    and day-first) are told apart by which reading is in time order (ascending, else descending);
    identical readings are the same answer.

    Raises:
        DataError: when the day/month order cannot be told.
    """
    valid = ~missing
    idx = np.flatnonzero(valid)
    sample = (
        strings.iloc[idx[np.linspace(0, idx.size - 1, min(idx.size, _SAMPLE)).astype(int)]]
        if idx.size
        else strings.iloc[:0]
    )
    iso_hits = int(_parse_as(sample, _ISO).notna().sum())
    parsed: dict[str, pd.Series] = {}
    if iso_hits == len(sample):  # the usual column: ISO fits the sample, so it is parsed in full first
        parsed[_ISO] = _parse_as(strings, _ISO)
        if not (parsed[_ISO].isna().to_numpy() & valid).any():
            return _ISO, parsed[_ISO]
    # Off the fast path, values are compared without surrounding blanks (an explicit format has no room for them).
    strings, sample, parsed = strings.str.strip(), sample.str.strip(), {}
    iso_hits = int(_parse_as(sample, _ISO).notna().sum())
    # Two screens: 50 values weed out the many layouts that fit nothing, then the whole sample counts.
    few = sample.iloc[np.linspace(0, len(sample) - 1, min(len(sample), 50)).astype(int)]
    fitting = [fmt for fmt in _candidate_formats(strings, valid) if _parse_as(few, fmt).notna().any()]
    screened = {_ISO: iso_hits, **{fmt: int(_parse_as(sample, fmt).notna().sum()) for fmt in fitting}}
    top = max(screened.values())
    for fmt, n in screened.items():
        if fmt not in parsed and (n > 0 and 2 * n >= top or (fmt == _ISO and top == 0)):
            parsed[fmt] = _parse_as(
                strings, fmt
            )  # ISO always when nothing fits: the values it names are "not a date/time"
    counts = {fmt: int((p.notna().to_numpy() & valid).sum()) for fmt, p in parsed.items()}
    best = max(counts.values())
    if counts.get(_ISO, -1) == best:
        return _ISO, parsed[_ISO]
    tied = [fmt for fmt, n in counts.items() if n == best]
    in_order = "neither reading is in time order"
    for descending in (False, True):
        ordered = [fmt for fmt in tied if _is_sorted(parsed[fmt], descending)]
        if ordered:
            tied, in_order = ordered, "both readings are in time order"
            break
    first = tied[0]
    if all(parsed[fmt].equals(parsed[first]) for fmt in tied[1:]):
        return first, parsed[first]
    # Name a value the readings disagree on, and both readings of it.
    a, b = parsed[tied[0]], parsed[tied[1]]
    fits = "all values" if best == int(valid.sum()) else f"{best} of {int(valid.sum())} values"
    i = int(np.flatnonzero((a != b).to_numpy() & a.notna().to_numpy())[0])
    raise DataError(
        f"{path}: column 'timestamp': the day/month order is ambiguous: {strings.iloc[i]!r} reads as"
        f" {a.iloc[i]:%Y-%m-%d} ({describe_format(tied[0])}) or {b.iloc[i]:%Y-%m-%d} ({describe_format(tied[1])});"
        f" {fits} fit both and {in_order}",
        hint=ISO_HINT,
    )


def _string_stamps(strings: pd.Series, path: Path, fmt: str | None = None) -> _Stamps:
    """Date/time text -> ``_Stamps``, every value under ONE format (``fmt``, else ISO-8601, else the
    explicit format that parses the most values; see ``_choose_format``). Values that do not fit it
    are wrong, never parsed under another rule and sorted into a different place."""
    missing = strings.isna().to_numpy()
    if fmt is None:
        fmt, parsed = _choose_format(strings, missing, path)
    else:
        parsed = _parse_as(strings, fmt)
    null = parsed.isna().to_numpy()
    naive = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    # pandas may parse at s/ms/us resolution, where years outside 1677-2262 are representable;
    # converting those to ns would wrap around silently, so they are checked like typed columns.
    ticks = naive.to_numpy().view(np.int64).copy()
    ticks[null] = 0
    ns, null_all, wide = _ticks_to_ns(ticks, null, np.datetime_data(naive.dtype)[0])
    wrong: list[tuple[np.ndarray, Callable[[int], str]]] = []
    unparseable = null & ~missing
    if unparseable.any():
        # No "expected" when nothing in the column parses: there is no format to name.
        expected = f" in the column's format ({describe_format(fmt)})" if fmt != _ISO or (~null).any() else ""
        wrong.append((unparseable, lambda i: f"{str(strings[i])[:40]!r} is not a date/time{expected}"))
    if wide is not None:
        wrong.append((wide, lambda i: f"{str(strings[i])[:40]!r} is {_STORABLE}"))
    return _Stamps(ns, null_all, wrong)


def parse_timestamps(values: pd.Series, path: str | os.PathLike[str] = "<values>") -> pd.Series:
    """Strings, datetimes or epoch seconds/milliseconds/microseconds -> UTC timestamps (ns).

    Raises:
        DataError: naming the first value that is not a date/time.
    """
    import pyarrow as pa

    arr = pa.array(values.reset_index(drop=True), from_pandas=True)
    st = timestamps_ns(arr, Path(path), np.arange(len(values)) + 2)
    bad_at = st.first_wrong()
    if bad_at >= 0:
        raise DataError(f"{path}: column 'timestamp': {st.why(bad_at)}")
    out = pd.Series(pd.DatetimeIndex(st.ns.view("datetime64[ns]"), tz="UTC"), index=values.index)
    out[st.null] = pd.NaT
    return out


_OFFSET = re.compile(r"([+-])(\d{2}):?(\d{2})$")


def local_offsets(col, ts: np.ndarray, null: np.ndarray, as_text=None) -> np.ndarray | None:
    """Per-row UTC offset (ns) of times written with a non-zero offset or time zone, else None.

    Only computed for bars about a day apart or more (the only ones whose calendar date depends on
    the offset), so large intraday files pay nothing. ``as_text`` re-reads a CSV's column as text:
    pyarrow parses ``...-05:00`` straight to UTC, dropping the offset.
    """
    import pyarrow as pa

    good = ts[~null][:64]
    if good.size < 2 or np.median(np.abs(np.diff(good))) < 0.8 * DAY_NS:
        return None  # intraday: checked before touching the column, so big files pay nothing
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    t = col.type
    if pa.types.is_timestamp(t) and t.tz and as_text is not None:
        col = as_text()  # CSV: the offsets are in the text only
        col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
        t = col.type
    if pa.types.is_timestamp(t):
        if not t.tz or t.tz.upper() in ("UTC", "Z", "+00:00", "ETC/UTC", "GMT"):
            return None
        idx = pd.DatetimeIndex(ts.view("datetime64[ns]"), tz="UTC").tz_convert(t.tz)
        return (idx.tz_localize(None).asi8 - ts).astype(np.int64)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        return None
    strings = pd.Series(col.to_numpy(zero_copy_only=False), dtype=object)
    first = next((str(v).strip() for v in strings[:64] if v is not None and v == v), "")
    if not _OFFSET.search(first):
        return None
    parts = strings.astype("string").str.strip().str.extract(_OFFSET.pattern)
    sign = np.where(parts[0].to_numpy(dtype=object) == "-", -1, 1)
    hours = pd.to_numeric(parts[1], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    minutes = pd.to_numeric(parts[2], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    off = sign * (hours * 3600 + minutes * 60) * 1_000_000_000
    return None if not off.any() else off.astype(np.int64)


# ------------------------------------------------------------------------------------- reading
