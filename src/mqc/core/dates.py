"""Time constants, and date/time strings in configs and flags: checked once, where the config is built.

The constants sit here, below every package (``market`` annualises with them, ``data`` sizes bars
with them), so no layer has to import a higher one for a number of seconds. Light module: pandas is imported only when
a value is actually checked, so config modules that
call it stay free of pandas at import time.
"""

from __future__ import annotations

from mqc.core.errors import ConfigError

SECONDS_PER_YEAR = 365.25 * 86400  # the year of every annualisation (bar lengths, bars per year)
DAY_NS = 86_400_000_000_000  # one day in nanoseconds: int64 ns timestamps // DAY_NS = days since 1970-01-01


def iso_seconds(value: object) -> str:
    """A timestamp as ``YYYY-MM-DDTHH:MM:SS`` (UTC, to the second): the one spelling in reports and messages.

    Takes a numpy ``datetime64``, int64 nanoseconds since 1970, a pandas ``Timestamp`` (tz-aware ones
    are converted to UTC) or an ISO string (cut to the second).
    """
    if isinstance(value, str):
        return value[:19]
    import numpy as np

    if hasattr(value, "to_datetime64"):
        value = value.to_datetime64()
    return str(np.datetime64(value, "ns"))[:19]


def iso_day(value: object) -> str:
    """The ``YYYY-MM-DD`` day of a timestamp (see ``iso_seconds`` for what it takes)."""
    return iso_seconds(value)[:10]


FORMATS = "YYYY-MM-DD, YYYY-MM-DD HH:MM[:SS] or ISO-8601 (2020-01-31T14:30:00Z)"


def check_timestamp(value: str | None, where: str) -> str | None:
    """Validate a timestamp string (``None`` passes through unchanged).

    Args:
        value: the string as the user gave it (flag, profile or env).
        where: the field it belongs to, e.g. ``data.start`` or ``--end``; named in the error.

    Returns:
        ``value`` unchanged (stripped), so callers keep the user's spelling (date-only strings mean
        the whole day to some loaders).

    Raises:
        ConfigError: the string is not a date/time pandas can parse, or names an impossible date.
    """
    if value is None:
        return None
    text = str(value).strip()
    # Relative words ("now", "today", "yesterday") parse in pandas but make runs irreproducible.
    if not text or not any(c.isdigit() for c in text):
        raise _bad(value, where)
    import pandas as pd

    try:
        stamp = pd.Timestamp(text)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(value, where, str(exc).split(":")[0]) from exc
    if stamp is pd.NaT:
        raise _bad(value, where)
    return text


def check_range(start: str | None, end: str | None, where: str) -> None:
    """Raise ConfigError when both ``start`` and ``end`` are set and ``start`` is after ``end``."""
    if start is None or end is None:
        return
    import pandas as pd

    a, b = pd.Timestamp(start), pd.Timestamp(end)
    if a.tzinfo is None:
        a = a.tz_localize("UTC")
    if b.tzinfo is None:
        b = b.tz_localize("UTC")
    if a > b:
        raise ConfigError(f"{where}: start {start!r} is after end {end!r}", hint="swap them, or widen the range")


def _bad(value: object, where: str, reason: str = "") -> ConfigError:
    why = f" ({reason})" if reason and "unknown" not in reason.lower() else ""
    return ConfigError(f"{where}: invalid date/time {value!r}{why}", hint=f"use {FORMATS}")
