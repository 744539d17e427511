"""Import (and dry-run validate) OHLCV files into the catalog: every file is checked before anything
is written, then the batch is stored atomically (see ``Catalog.commit``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mqc.core.data.catalog import Catalog, WriteItem, WriteResult, check_timeframe
from mqc.core.data.config import ImportConfig
from mqc.core.data.reader import expand_paths, normalise_symbol, read_file
from mqc.core.data.timeframe import parse_timeframe
from mqc.core.data.validate import Issue, ValidationReport, validate_arrays
from mqc.core.errors import DataError
from mqc.core.progress import NULL, Progress


@dataclass
class SymbolImport:
    """What happened to one symbol of one file."""

    path: str
    symbol: str
    timeframe: str
    report: ValidationReport
    status: str = "validated"  # new | appended | unchanged | replaced | validated (dry run)
    added: int = 0
    rows: int = 0  # rows stored for the symbol after the import
    overwritten: int = 0  # stored bars replaced by differing new ones (--replace)
    rescaled: int = 0  # kept stored bars moved onto a re-adjusted delivery's basis (--replace)
    price_factor: float = 1.0  # their prices were multiplied by this
    volume_factor: float = 1.0  # their volume was multiplied by this

    def record_write(self, res: WriteResult) -> None:
        """Copy a catalog write's outcome in; a rescale of kept bars becomes a report warning."""
        self.status, self.added, self.rows, self.timeframe = res.status, res.added, res.entry.rows, res.entry.timeframe
        self.overwritten, self.rescaled = res.overwritten, res.rescaled
        self.price_factor, self.volume_factor = res.price_factor, res.volume_factor
        if res.note:
            self.report.issues.append(Issue("rebased", -1, "close", res.note, "warning"))

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "symbol": self.symbol,
            "timeframe": self.timeframe,
            "status": self.status,
            "added": self.added,
            "overwritten": self.overwritten,
            "rescaled": self.rescaled,
            "price_factor": self.price_factor,
            "volume_factor": self.volume_factor,
            "rows": self.rows,
            "report": self.report.to_dict(),
        }


@dataclass
class ImportResult:
    """Per-symbol outcomes; ``written`` is False for ``validate`` (dry run)."""

    items: list[SymbolImport] = field(default_factory=list)
    written: bool = False
    catalog: str = ""
    errors: list[dict] = field(default_factory=list)  # validate only: {"path", "error", "hint"} per failing file
    issues_file: str = ""  # where ``write_issue_list`` wrote every issue, when it did

    @property
    def issues(self) -> int:
        return sum(len(i.report.issues) for i in self.items)

    def to_dict(self) -> dict:
        return {
            "written": self.written,
            "catalog": self.catalog,
            "files": len({i.path for i in self.items}),
            "symbols": [i.to_dict() for i in self.items],
            "errors": self.errors,
            "issues_file": self.issues_file or None,
        }


# Issues shown per symbol on the terminal; the rest are counted by reason and listed in a file.
ISSUES_SHOWN = 20


def issue_summary(
    issues: Sequence[Issue], shown: int = ISSUES_SHOWN, per_reason: int = 5
) -> tuple[list[Issue], list[tuple[str, int]]]:
    """The issues to print (up to ``per_reason`` of each reason, ``shown`` in all, in file order)
    and, for the rest, (reason, count) pairs, most frequent first.

    A reason is the issue's kind, field and action (``duplicate timestamp (dropped)``), so a
    rare warning is not hidden behind thousands of dropped duplicates.
    """
    from collections import Counter

    if len(issues) <= shown:
        return list(issues), []
    taken: Counter[str] = Counter()
    first: list[Issue] = []
    rest: Counter[str] = Counter()
    for issue in issues:
        reason = f"{issue.kind} {issue.field} ({issue.action})"
        if len(first) < shown and taken[reason] < per_reason:
            taken[reason] += 1
            first.append(issue)
        else:
            rest[reason] += 1
    return first, rest.most_common()


def write_issue_list(
    result: ImportResult, directory: str | os.PathLike[str] | None = None, *, shown: int = ISSUES_SHOWN
) -> Path | None:
    """Write every issue of ``result`` to ``<data dir>/reports/<utc stamp>-issues.txt`` (or into
    ``directory``) when some symbol has more than ``shown``; sets ``result.issues_file``.

    Returns:
        The file written, or None when every issue fits on the terminal.
    """
    from mqc.core.atomic import atomic_path
    from mqc.core.paths import data_dir, fresh_name

    if all(len(i.report.issues) <= shown for i in result.items):
        return None
    folder = Path(directory) if directory is not None else data_dir() / "reports"
    folder.mkdir(parents=True, exist_ok=True)
    path = fresh_name(folder, "-issues.txt")
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:  # streamed: no copy of every line in memory
        for i in result.items:
            fh.writelines(f"{i.symbol} {i.path}: {issue.line()}\n" for issue in i.report.issues)
    result.issues_file = str(path)
    return path


def check_paths(paths: Sequence[str | os.PathLike[str]], *, symbol: str | None) -> list[Path]:
    """Expand ``paths``; ``symbol`` may only name the bars of a single file."""
    files = expand_paths(list(paths))
    if symbol and len(files) > 1:
        raise DataError(
            f"--symbol {symbol} given for {len(files)} files",
            hint="--symbol names the bars of one file; import files one at a time or name them SYMBOL.csv",
        )
    return files


def read_and_validate(
    files: Sequence[Path],
    config: ImportConfig,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    progress: Progress = NULL,
    storing: bool = True,
) -> list[tuple[SymbolImport, WriteItem]]:
    """Read and validate every file (nothing is written). Raises DataError on the first failure.

    ``storing``: the bars are about to be stored, so a bar size that is only a guess (see
    ``timeframe.infer_bar_size_ns``) without ``timeframe`` is refused; ``data validate`` only warns.
    """
    bar_seconds = parse_timeframe(timeframe) if timeframe else None
    tf_label = check_timeframe(timeframe) if timeframe else None
    out: list[tuple[SymbolImport, WriteItem]] = []
    progress.start(len(files), "validating")
    for path in files:
        for bars in read_file(
            path,
            symbol=normalise_symbol(symbol) if symbol else None,
            on_error=config.on_error,
            adjusted=config.adjusted,
            defer=True,
        ):
            clean, report = validate_arrays(
                bars, on_error=config.on_error, spike_sigma=config.spike_sigma, bar_seconds=bar_seconds
            )
            tf = tf_label or report.timeframe
            if storing and not tf_label and not report.timeframe_reliable:
                # A guessed bar size would be stored as fact and every later command keyed on it.
                raise DataError(
                    f"{path}: cannot tell the bar size of {clean.symbol} from so few bars (a guess:"
                    f" {report.timeframe}); nothing imported",
                    hint=f"pass the bar size, e.g. mqc data import {path.name} --timeframe 1d",
                )
            item = WriteItem(
                clean.symbol,
                clean.ts,
                clean.cols,
                source=str(path),
                timeframe=tf,
                asset_class=config.asset_class,
                adjustment=bars.adjustment,
            )
            out.append((SymbolImport(str(path), clean.symbol, tf or "?", report, rows=len(clean)), item))
        progress.advance(1, file=path.name)
    progress.finish()
    return out


def import_paths(
    paths: Sequence[str | os.PathLike[str]],
    config: ImportConfig | None = None,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    catalog: Catalog | None = None,
    source: str | None = None,
    progress: Progress = NULL,
) -> ImportResult:
    """Validate every file, then store all of them in one atomic batch.

    Args:
        paths: files, folders or glob patterns of CSV/Parquet bars.
        config: on_error / spike_sigma / replace / asset_class / adjusted (``ImportConfig``).
            ``replace`` overwrites stored bars that differ at the new file's timestamps and keeps
            every other stored bar (to drop a history, ``Catalog.remove`` it first).
        symbol: symbol for the bars of a single file (default: symbol column, yfinance ticker or stem).
        timeframe: bar size label to store under (default: inferred from the timestamps).
        catalog: the catalog to write (default: the user's).
        source: label stored as the entries' source (default: the file path).

    Returns:
        ImportResult with each symbol's validation report and write status.

    Raises:
        DataError / ArtifactNotFound: on the first invalid file (fail mode) or conflicting bars;
            the catalog is then unchanged.
    """
    cfg = config or ImportConfig()
    cat = catalog or Catalog()
    files = check_paths(paths, symbol=symbol)
    checked = read_and_validate(files, cfg, symbol=symbol, timeframe=timeframe, progress=progress)
    items = [w for _, w in checked]
    if source:
        for w in items:
            w.source = source
    results = cat.write_many(items, replace=cfg.replace)
    out = ImportResult(written=True, catalog=str(cat.root))
    for (si, _), res in zip(checked, results, strict=True):
        si.record_write(res)
        out.items.append(si)
    return out


def validate_paths(
    paths: Sequence[str | os.PathLike[str]],
    config: ImportConfig | None = None,
    *,
    symbol: str | None = None,
    timeframe: str | None = None,
    progress: Progress = NULL,
) -> ImportResult:
    """The import checks without writing anything (``mqc data validate``).

    Every file is checked; files that fail are listed in ``errors`` (the command exits 1 for them).
    In repair/drop mode the report lists every change an import would make.
    """
    cfg = config or ImportConfig()
    files = check_paths(paths, symbol=symbol)
    out = ImportResult(written=False)
    progress.start(len(files), "validating")
    for path in files:
        try:
            checked = read_and_validate([path], cfg, symbol=symbol, timeframe=timeframe, storing=False)
        except DataError as exc:  # keep going: one report covers every file
            out.errors.append({"path": str(path), "error": str(exc), "hint": exc.hint})
        else:
            out.items.extend(si for si, _ in checked)
        progress.advance(1, file=path.name)
    progress.finish()
    return out
