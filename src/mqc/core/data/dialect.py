"""How a CSV writes its numbers: the decimal mark (``10.03`` or ``10,03``) and thousands separator.

A file is read under one number format, decided from the text of its number columns before they
are parsed: a ``;``- or tab-separated export from a European spreadsheet writes ``10,03`` and
``1.234,56``, a US one ``1,234.56``. Reading ``10,03`` as ``1003`` (or as a malformed line) would
store prices 100x off without a word, so a file whose mark cannot be told, or that mixes both, is
refused with a message naming a value and the row it is on.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mqc.core.errors import DataError

__all__ = ["NumberFormat", "parse_numbers", "sniff_number_format"]

_SAMPLE_LINES = 2000
_DECIDED_AFTER = 200  # lines read at least, before a proven mark ends the sniffing
_SAMPLE_CHARS = 1 << 20
_FIX_HINT = (
    "re-export the file with '.' as the decimal mark and no thousands separators (e.g. 1234.56), comma- or"
    " tab-separated"
)


@dataclass(frozen=True)
class NumberFormat:
    """The decimal mark and thousands separator of a file's numbers."""

    decimal: str = "."
    thousands: str = ","

    def describe(self) -> str:
        example = "1,234.56" if self.decimal == "." else "1.234,56"
        return f"decimal mark {self.decimal!r} (numbers like {example})"


US = NumberFormat(".", ",")
EUROPEAN = NumberFormat(",", ".")


def _evidence(value: str) -> str | None:
    """The decimal mark ``value`` proves ("." or ","), "?," / "?." when it is ambiguous, None when
    it says nothing (no separator, or not a number)."""
    v = value.strip().lstrip("+-")
    if not v or not v[0].isdigit() or not re.fullmatch(r"[\d.,]+(?:[eE][+-]?\d+)?", v):
        return None
    dots, commas = v.count("."), v.count(",")
    if dots and commas:
        return "." if v.rfind(".") > v.rfind(",") else ","
    if not dots and not commas:
        return None
    mark = "." if dots else ","
    if dots + commas > 1:  # 1.234.567 / 1,234,567: the repeated mark groups thousands
        return "," if mark == "." else "."
    after = len(re.split(r"[.,]", v, maxsplit=1)[1].split("e")[0].split("E")[0])
    return mark if after != 3 else "?" + mark  # 10,5 is a decimal comma; 1,234 could be either


def sniff_number_format(
    path: Path, lines: list[str], delimiter: str, columns: list[int], first_line: int
) -> NumberFormat:
    """Decide the file's number format from ``lines`` (the first data lines) in ``columns``.

    ``.`` is the decimal mark unless a value proves ``,`` (``10,03``, ``1.234,56``, ``1.234.567``).
    Bare ``1,234`` values in a ``;``/tab-separated file (1.234 or 1234?) are refused, as are files
    whose values prove both marks.

    Raises:
        DataError: both marks in one file, or a decimal comma that cannot be told from a thousands
            separator; the message names a value and its row.
    """
    seen: dict[str, tuple[int, str]] = {}
    for k, fields in enumerate(csv.reader(lines, delimiter=delimiter)):
        if k >= _DECIDED_AFTER and ("." in seen or "," in seen):
            # Decided: a later cell that breaks the format is a bad row when parsed (parse_numbers).
            break
        for c in columns:
            if c < len(fields):
                ev = _evidence(fields[c])
                if ev is not None and ev not in seen:
                    seen[ev] = (first_line + k, fields[c].strip())
    if "." in seen and "," in seen:
        (ra, va), (rb, vb) = seen["."], seen[","]
        raise DataError(
            f"{path}: numbers written with two decimal marks: {va!r} (row {ra}) uses '.', {vb!r} (row {rb}) uses ','",
            hint=_FIX_HINT,
        )
    if "," in seen:
        return EUROPEAN
    if "." in seen:
        return US
    # Only values like 1,234 or 1.234 (three digits after the one mark): 1.234 is 1234 to a European
    # spreadsheet and 1.234 to a US one. A comma inside a field of a ;/tab file, a dot in a
    # ;-separated file (a European export), or both marks cannot be told apart.
    ambiguous = [
        ev
        for ev in ("?,", "?.")
        if ev in seen and (delimiter != "," if ev == "?," else delimiter == ";" or "?," in seen)
    ]
    if ambiguous:
        row, value = seen[ambiguous[0]]
        mark = ambiguous[0][1]
        raise DataError(
            f"{path}: row {row}: cannot tell whether {value!r} means {value.replace(mark, '.')} (decimal"
            f" {'comma' if mark == ',' else 'point'}) or {value.replace(mark, '')} (thousands separator)",
            hint=_FIX_HINT,
        )
    return US


def sample_lines(path_lines, n: int = _SAMPLE_LINES, chars: int = _SAMPLE_CHARS) -> list[str]:
    """Up to ``n`` lines (``chars`` characters in all) from an open text file."""
    out: list[str] = []
    total = 0
    for line in path_lines:
        out.append(line)
        total += len(line)
        if len(out) >= n or total >= chars:
            break
    return out


def parse_numbers(strings: pd.Series, fmt: NumberFormat) -> tuple[np.ndarray, np.ndarray]:
    """Number text under ``fmt`` -> (float64 values, mask of non-empty cells that are not numbers).

    Thousands separators are accepted only in groups of three (``1,234,567.5``); any other use of
    the thousands character (``10,03`` in a ``.`` file) makes the cell not a number, never a
    different number.
    """
    s = strings.astype("string").str.strip()
    t, d = re.escape(fmt.thousands), re.escape(fmt.decimal)
    grouped = s.str.fullmatch(rf"[+-]?\d{{1,3}}(?:{t}\d{{3}})+(?:{d}\d*)?").fillna(False).to_numpy(dtype=bool)
    if grouped.any():
        s = s.where(~grouped, s.str.replace(fmt.thousands, "", regex=False))
    stray = s.str.contains(fmt.thousands, regex=False).fillna(False).to_numpy(dtype=bool)
    if fmt.decimal != ".":
        s = s.str.replace(fmt.decimal, ".", regex=False)
    v = pd.to_numeric(s.where(~stray, None), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = (strings.notna() & (s.fillna("") != "")).to_numpy(dtype=bool)

    return v, np.isnan(v) & present
