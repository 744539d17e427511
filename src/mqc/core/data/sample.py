"""``mqc data sample``: real bars shipped inside installed PyPI packages, imported with no network.

The files are read straight from the packages' folders (found with ``importlib.util.find_spec``,
without importing the packages, which would pull in scipy / bokeh) and go through the normal
read -> validate -> catalog path, so the sample is checked like any user file.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import ImportConfig
from mqc.core.data.importer import ImportResult, read_and_validate
from mqc.core.errors import DataError, DependencyMissing
from mqc.core.progress import NULL, Progress


@dataclass(frozen=True)
class SampleSpec:
    symbol: str
    package: str
    resource: str  # path inside the package folder
    timeframe: str
    asset_class: str
    description: str


SAMPLES: tuple[SampleSpec, ...] = (
    SampleSpec("SP500", "arch", "data/sp500/sp500.csv.gz", "1d", "equity", "S&P 500 index, daily OHLCV 1999-2018"),
    SampleSpec(
        "NASDAQ", "arch", "data/nasdaq/nasdaq.csv.gz", "1d", "equity", "NASDAQ Composite index, daily OHLCV 1999-2018"
    ),
    SampleSpec("GOOG", "backtesting", "test/GOOG.csv", "1d", "equity", "Alphabet (GOOG) stock, daily OHLCV 2004-2013"),
    SampleSpec(
        "EURUSD", "backtesting", "test/EURUSD.csv", "1h", "equity", "EUR/USD, hourly OHLC 2017-2018 (fees as equity)"
    ),
)

# The daily symbols ``mqc quickstart`` and the README demo train on (aligned 2004-08-19 .. 2013-03-01).
DAILY_SAMPLE_SYMBOLS: tuple[str, ...] = tuple(s.symbol for s in SAMPLES if s.timeframe == "1d")


def _package_dir(package: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sample_files(symbols: Sequence[str] | None = None) -> list[tuple[SampleSpec, Path | None]]:
    """Each wanted sample with its file (``None`` when the package providing it is not installed).

    Raises:
        DataError: a requested symbol is not part of the sample.
    """
    wanted = [s.upper() for s in symbols] if symbols else [s.symbol for s in SAMPLES]
    unknown = [s for s in wanted if s not in {x.symbol for x in SAMPLES}]
    if unknown:
        names = ", ".join(x.symbol for x in SAMPLES)
        raise DataError(
            f"{', '.join(unknown)}: not in the sample (it has {names})", hint="mqc data sample --symbols SP500,GOOG"
        )
    out: list[tuple[SampleSpec, Path | None]] = []
    for spec in SAMPLES:
        if spec.symbol not in wanted:
            continue
        root = _package_dir(spec.package)
        path = root / spec.resource if root else None
        out.append((spec, path if path and path.is_file() else None))
    return out


def import_sample(
    symbols: Sequence[str] | None = None,
    *,
    catalog: Catalog | None = None,
    progress: Progress = NULL,
) -> ImportResult:
    """Import the sample into the catalog (idempotent: a second run reports ``unchanged``).

    Returns:
        ImportResult; ``errors`` lists samples skipped because their package is missing.

    Raises:
        DependencyMissing: when no sample package is installed at all.
    """
    cat = catalog or Catalog()
    result = ImportResult(written=True, catalog=str(cat.root))
    checked = []
    files = sample_files(symbols)
    progress.start(len(files), "reading the sample")
    for spec, path in files:
        if path is None:
            result.errors.append(
                {
                    "path": spec.package,
                    "error": f"{spec.symbol}: package {spec.package!r} is not installed",
                    "hint": f"pip install {spec.package}",
                }
            )
            continue
        version = importlib.metadata.version(spec.package)
        cfg = ImportConfig(on_error="fail", asset_class=spec.asset_class)
        for si, item in read_and_validate([path], cfg, symbol=spec.symbol, timeframe=spec.timeframe):
            item.source = f"{spec.package}=={version}:{Path(spec.resource).name}"
            checked.append((si, item))
        progress.advance(1, symbol=spec.symbol)
    progress.finish()
    if not checked:
        raise DependencyMissing(
            "no sample package is installed (arch, backtesting)", hint="pip install arch backtesting"
        )
    for (si, _), res in zip(checked, cat.write_many([w for _, w in checked]), strict=True):
        si.status, si.added, si.rows, si.timeframe = res.status, res.added, res.entry.rows, res.entry.timeframe
        si.path = res.entry.source
        result.items.append(si)
    return result
