"""Bar sizes: labels like ``15m``/``1h``/``1d``, inference from timestamps, bars per year."""

from __future__ import annotations

import re

import numpy as np

from mqc.core.dates import DAY_NS, SECONDS_PER_YEAR  # noqa: F401  (DAY_NS re-exported: validate.py, forecast/calendar.py)
from mqc.core.errors import ConfigError, DataError, UsageError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_LABEL = re.compile(r"^(\d+)\s*([a-z]+)$")
# Unit spellings accepted case-insensitively (1H, 1hr, 4 hours, 15min, 1D, 1day). A bare upper-case
# ``M`` is refused: pandas and many providers read it as month, most people as minute.
_UNIT_ALIASES = {
    "s": "s",
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "m": "m",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "t": "m",
    "h": "h",
    "hr": "h",
    "hrs": "h",
    "hour": "h",
    "hours": "h",
    "d": "d",
    "day": "d",
    "days": "d",
    "w": "w",
    "wk": "w",
    "week": "w",
    "weeks": "w",
}
_WORDS = {"daily": "1d", "hourly": "1h", "weekly": "1w", "minutely": "1m"}
_TIMEFRAME_HELP = "use a number and a unit, e.g. 1m, 15m, 1h, 4h, 1d, 1w (or daily, hourly)"
TIMEFRAME_HINT = (
    "valid bar sizes: 1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w (a number and a unit s, m, h, d, w; also spelled 15min, 1hr,"
    " 1day, or daily, hourly, weekly)"
)


class TimeframeError(DataError, ConfigError):
    """An invalid bar-size label. Also a ConfigError, so ``config.resolve`` reports one given by a
    command-line flag as a usage error (exit 2) and one from a profile or the environment as exit 1."""


def check_timeframe_flag(label: str | None, flag: str = "--timeframe") -> None:
    """Check a bar size given on the command line (``flag``); None (not given) passes.

    Raises:
        UsageError: not a bar size (exit 2, like any bad flag value), with the valid spellings.
    """
    if label is None:
        return
    try:
        parse_timeframe(label)
    except DataError as exc:
        raise UsageError(f"{exc} ({flag})", hint=exc.hint) from exc


def to_datetime64(timestamps) -> np.ndarray:
    """Timestamps (numpy, pandas Series/Index, tz-aware or naive UTC) -> naive UTC ``datetime64[ns]``."""
    import pandas as pd

    idx = pd.DatetimeIndex(timestamps)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return idx.to_numpy(dtype="datetime64[ns]")


def epoch_seconds(timestamps) -> np.ndarray:
    return to_datetime64(timestamps).astype("datetime64[s]").astype(np.int64)


def parse_timeframe(label: str) -> int:
    """Seconds in a bar of ``label`` (``15m`` -> 900; ``1H``, ``1hr``, ``hourly`` -> 3600).

    Raises:
        DataError: not a bar size (``1M`` is refused as ambiguous: month or minute).
    """
    if not isinstance(label, str):
        raise TimeframeError(f"invalid timeframe {label!r}: {_TIMEFRAME_HELP}", hint=TIMEFRAME_HINT)
    text = label.strip()
    if re.fullmatch(r"\d+\s*M", text):
        raise TimeframeError(
            f"invalid timeframe {label!r}: ambiguous (month or minute?)",
            hint=f"minutes are {text[:-1].strip()}m; months are not supported",
        )
    text = _WORDS.get(text.lower(), text.lower())
    m = _LABEL.match(text)
    unit = _UNIT_ALIASES.get(m.group(2)) if m else None
    if unit is None or int(m.group(1)) < 1:
        raise TimeframeError(f"invalid timeframe {label!r}: {_TIMEFRAME_HELP}", hint=TIMEFRAME_HINT)
    return int(m.group(1)) * _UNITS[unit]


def normalise_timeframe(label: str) -> str:
    """The canonical label of ``label`` (``1H`` -> ``1h``, ``daily`` -> ``1d``, ``60m`` -> ``1h``).

    Raises:
        DataError: not a bar size.
    """
    return label_for_seconds(parse_timeframe(label))


def label_for_seconds(seconds: float) -> str:
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def format_span(seconds: float) -> str:
    """A length of clock time in its two largest units (``4d 18h``, ``1h 30m``, ``1m 31s``, ``2d``)."""
    left = int(round(seconds))
    if left <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
        elif parts:
            parts.append("")  # a skipped unit still counts as one of the two shown
        if len(parts) == 2:
            break
    return " ".join(p for p in parts if p)


def infer_bar_seconds(timestamps: np.ndarray) -> int:
    """The typical bar size: the most common positive gap between consecutive timestamps.

    Daily equity bars have 1-day gaps on weekdays and 3-day gaps over weekends; the mode is 1 day.

    Raises:
        DataError: with fewer than 2 bars or when all timestamps are equal.
    """
    return infer_bar_seconds_ns(to_datetime64(timestamps).view(np.int64))


def infer_bar_seconds_ns(ts_ns: np.ndarray) -> int:
    """``infer_bar_seconds`` on int64 nanoseconds since the epoch (the import path's form)."""
    return infer_bar_size_ns(ts_ns)[0]


def infer_bar_size_ns(ts_ns: np.ndarray) -> tuple[int, bool]:
    """(bar size in seconds, whether enough steps back it) of int64 ns timestamps.

    The bar size is the most common positive step. It is backed when at least 2 steps have it, or
    when there are at least 2 steps and each is a whole number of the smallest one (Thu, Fri, Mon:
    1 day and a weekend). One step (2 bars: 3 days may be a weekend) or unrelated steps make it a
    guess. Long series use a strided sample of up to ~200k gaps: the mode of a regular sample is the
    mode of the series, and it spares sorting millions of gaps.

    Raises:
        DataError: with fewer than 2 bars or when all timestamps are equal.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.size < 2:
        raise DataError("need at least 2 bars to infer the bar size", hint="pass --timeframe")
    # The sampled gaps diff(ts)[::stride], taken without differencing the whole series first.
    stride = max(1, (ts.size - 1) // 200_000)
    gaps = ts[1::stride] - ts[:-1:stride]
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        raise DataError("cannot infer the bar size: all timestamps are equal", hint="pass --timeframe")
    values, counts = np.unique(gaps // 1_000_000_000, return_counts=True)
    values, counts = values[values > 0], counts[values > 0]
    if values.size == 0:
        raise DataError("cannot infer the bar size: bars are less than a second apart")
    best = int(np.argmax(counts))
    size = int(values[best])
    backed = bool(counts[best] >= 2 or (counts.sum() >= 2 and best == 0 and not (values % size).any()))
    return size, backed


def infer_timeframe(timestamps: np.ndarray) -> str:
    return label_for_seconds(infer_bar_seconds(timestamps))


def bars_per_year(timestamps: np.ndarray) -> float:
    """Observed bars per year of a series (252-ish for equity days, 365 for crypto days).

    Measured from the data rather than assumed, so annualisation is right for gapped calendars.
    """
    ts = epoch_seconds(timestamps)
    if ts.size < 2:
        return 252.0
    span = float(ts[-1] - ts[0])
    if span <= 0:
        return 252.0
    return (ts.size - 1) * SECONDS_PER_YEAR / span
