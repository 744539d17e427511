"""``mqc data``: import, validate, list, verify, show, export, remove, sample, synth and fetch OHLCV bars."""

from __future__ import annotations

from enum import Enum, StrEnum
from typing import Any

import typer

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, err, out, print_json, state, want_json, warn
from mqc.commands._options import split_list

app = typer.Typer(help="Import, validate, inspect and store OHLCV bars.", no_args_is_help=True)


class OnError(StrEnum):
    """Choices of --on-error (an Enum so a wrong value is Typer's usage error, exit 2)."""

    fail = "fail"
    repair = "repair"
    drop = "drop"


class ExportFormat(StrEnum):
    csv = "csv"
    parquet = "parquet"


class Provider(StrEnum):
    yfinance = "yfinance"
    ccxt = "ccxt"
    alpaca = "alpaca"


def _val(choice: Enum | None) -> str | None:
    return None if choice is None else str(choice.value)


OnErrorOpt = typer.Option(
    None,
    "--on-error",
    case_sensitive=False,
    help="Bad rows: fail (stop, store nothing), repair (fix what can be fixed, drop the rest) or drop.",
)
TIMEFRAME_LABEL = "Bar size label (1m, 15m, 1h, 1d); default: inferred from the timestamps."
STORED_TIMEFRAME = "Bar size, when the symbol is stored at several."


AdjustedOpt = typer.Option(
    False,
    "--adjusted",
    help="Files with Close and Adj Close: scale open/high/low/close by Adj Close / Close (returns include dividends).",
)
REPLACE = o.Flag(
    ("--replace",),
    "Overwrite stored bars that differ at the new timestamps (the rest of the stored history is kept; when the provider"
    " re-adjusted its history by one factor, the kept bars are rescaled onto the new basis, else refused). To drop a"
    " history, mqc data remove SYMBOL first.",
    default=False,
)
SYMBOL = o.Flag(("--symbol", "-s"), "Symbol for a single file.")


def _import_config(
    on_error: OnError | str | None,
    replace: bool | None = None,
    asset_class: str | None = None,
    adjusted: bool | None = None,
):
    from mqc.core.data.config import ImportConfig
    from mqc.core.profiles import resolve_with_profile

    flags = {
        "on_error": _val(on_error) if isinstance(on_error, Enum) else on_error,
        "replace": replace or None,
        "asset_class": asset_class,
        "adjusted": adjusted or None,
    }
    return resolve_with_profile(ImportConfig, state().profile, flags=flags).value


def _render_result(result: Any, json_out: bool, *, title: str) -> None:
    """Table of per-symbol outcomes, then every repair / drop / warning, then skipped files."""
    if want_json(json_out):
        print_json(result.to_dict())
        return
    from rich.table import Table

    if result.items:
        t = Table(title=title)
        # "fixed rows" counts rows (a bar with a bad high and a bad low is one), like "dropped".
        for col in (
            "symbol",
            "tf",
            "rows in",
            "stored",
            "status",
            "added",
            "overwritten",
            "fixed rows",
            "dropped rows",
            "warn",
        ):
            t.add_column(col, justify="left" if col in ("symbol", "tf", "status") else "right")
        for i in result.items:
            r = i.report
            t.add_row(
                i.symbol,
                i.timeframe + ("?" if not r.timeframe_reliable else ""),
                str(r.rows_in),
                str(i.rows),
                i.status,
                str(i.added),
                str(i.overwritten),
                str(r.repaired),
                str(r.dropped),
                str(len(r.warnings)),
            )
        out.print(t)
    from mqc.core.data.importer import issue_summary, write_issue_list

    try:
        listed = write_issue_list(result)
    except OSError as exc:  # the bars are stored (or checked) already: say so, do not fail the command
        listed = None
        warn(f"could not write the list of issues ({exc.strerror or exc}); the summary below is all there is")
    for i in result.items:
        first, rest = issue_summary(i.report.issues)
        for issue in first:
            style = {"repaired": "yellow", "dropped": "red", "warning": "dim", "note": "cyan"}.get(
                issue.action, "white"
            )
            out.print(f"[{style}]{_esc(f'{i.symbol} {i.path}: {issue.line()}')}[/{style}]")
        if rest:
            counts = ", ".join(f"{n:,} {reason}" for reason, n in rest)
            out.print(_esc(f"{i.symbol}: and {sum(n for _, n in rest):,} more issues: {counts}"))
    if listed:
        out.print(f"every issue is listed in {_esc(str(listed))}")
    for e in result.errors:
        err.print(f"[bold red]error:[/bold red] {_esc(e['error'])}")
        if e.get("hint"):
            err.print(f"[dim]hint:[/dim] {_esc(e['hint'])}")


def _esc(text: str) -> str:
    from rich.markup import escape

    return escape(str(text))


def _when(iso: str) -> str:
    """ISO time -> 'YYYY-MM-DD' at midnight, else 'YYYY-MM-DD HH:MM'."""
    return iso[:10] if iso[11:19] in ("", "00:00:00") else iso[:16].replace("T", " ")


def _short(path: str, width: int = 40) -> str:
    return _esc(path if len(path) <= width else "…" + path[-(width - 1) :])


@app.command("import")
def import_(
    paths: list[str] = typer.Argument(..., help="CSV/Parquet files, folders or glob patterns (quote globs)."),
    on_error: OnError = OnErrorOpt,
    symbol: str = SYMBOL(help="Symbol for a single file (default: symbol column, yfinance ticker or file name)."),
    timeframe: str = o.TIMEFRAME(help=TIMEFRAME_LABEL, sets=None),
    asset_class: str = typer.Option(
        None, "--asset-class", help="equity, crypto or cash (default: guessed from the symbol)."
    ),
    replace: bool = REPLACE(),
    adjusted: bool = AdjustedOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Validate every file, then store all of them in the catalog (nothing is stored if one fails)."""
    from mqc.core.data.importer import import_paths
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)

    cfg = _import_config(on_error, replace, asset_class, adjusted)
    with RichProgress() as progress:
        result = import_paths(paths, cfg, symbol=symbol, timeframe=timeframe, progress=progress)
    _render_result(result, json_out, title=f"imported into {result.catalog}")


@app.command("validate")
def validate(
    paths: list[str] = typer.Argument(..., help="CSV/Parquet files, folders or glob patterns."),
    on_error: OnError = OnErrorOpt,
    symbol: str = SYMBOL(),
    timeframe: str = o.TIMEFRAME(help=TIMEFRAME_LABEL, sets=None),
    adjusted: bool = AdjustedOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Run the import checks and print the report; stores nothing (over 20 issues per symbol: the full list goes to a
    file it names). Exit 1 when a file fails."""
    from mqc.core.data.importer import validate_paths
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)

    cfg = _import_config(on_error, adjusted=adjusted)
    with RichProgress() as progress:
        result = validate_paths(paths, cfg, symbol=symbol, timeframe=timeframe, progress=progress)
    _render_result(result, json_out, title="validation (nothing written)")
    if result.errors:
        raise typer.Exit(1)


@app.command("list")
def list_(
    timeframe: str = o.TIMEFRAME(help="Only this bar size (1d, 1h, 15m, ...).", sets=None),
    json_out: bool = o.JSON(),
) -> None:
    """List the symbols in the catalog."""
    from rich.table import Table

    from mqc.core.data.catalog import Catalog
    from mqc.core.data.catalog import check_timeframe as cat_tf
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)
    cat = Catalog()
    entries = cat.entries(timeframe)
    problems = [cat.check(e, full=False) for e in entries]  # footer only; mqc data verify reads the bars
    if want_json(json_out):
        print_json(
            {
                "catalog": str(cat.root),
                "entries": [{**e.__dict__, "problem": p} for e, p in zip(entries, problems, strict=True)],
            }
        )
        return
    if not entries:
        stored = sorted({e.timeframe for e in cat.entries()}) if timeframe else []
        if stored:
            out.print(f"no symbols at {cat_tf(timeframe)} (stored timeframes: {', '.join(stored)})")
        else:
            out.print("the catalog is empty: run `mqc data sample` or `mqc data import PATH`")
        return
    t = Table(title=str(cat.root))
    for col in ("symbol", "timeframe", "rows", "first", "last", "class", "source"):
        t.add_column(col, justify="right" if col == "rows" else "left")
    for e, p in zip(entries, problems, strict=True):
        sym = f"[red]{e.symbol} DAMAGED[/red]" if p else e.symbol
        t.add_row(sym, e.timeframe, str(e.rows), _when(e.first), _when(e.last), e.asset_class, _short(e.source, 36))
    out.print(t)
    _print_damaged([(e, p) for e, p in zip(entries, problems, strict=True) if p])


def _print_damaged(damaged: list) -> None:
    """One error line per damaged entry, then the repair (stderr)."""
    from mqc.core.data.integrity import repair_hint

    for e, problem in damaged:
        err.print(f"[bold red]damaged:[/bold red] {_esc(f'{e.key}: {e.file_name} {problem}')}")
        err.print(f"[dim]hint:[/dim] {_esc(repair_hint(e))}")


@app.command("verify")
def verify(
    timeframe: str = o.TIMEFRAME(help="Only this bar size (1d, 1h, 15m, ...).", sets=None),
    json_out: bool = o.JSON(),
) -> None:
    """Read every stored file and check it against the manifest (present, whole, same bars as imported). Exit 1 when
    one is damaged."""
    from rich.table import Table

    from mqc.core.data.catalog import Catalog
    from mqc.core.data.integrity import verify_catalog
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)
    with RichProgress() as progress:
        result = verify_catalog(Catalog(), timeframe, progress=progress)
    if want_json(json_out):
        print_json(result.to_dict())
    else:
        t = Table(title=f"verified {result.catalog}")
        for col in ("symbol", "timeframe", "rows", "file"):
            t.add_column(col, justify="right" if col == "rows" else "left")
        for e, p in result.checked:
            t.add_row(e.symbol, e.timeframe, str(e.rows), "[red]DAMAGED[/red]" if p else "[green]ok[/green]")
        out.print(t)
        _print_damaged(result.damaged)
        if result.orphans:
            out.print(
                f"{len(result.orphans)} leftover file(s) of interrupted writes, deleted by the next import or remove"
            )
        out.print(
            f"{len(result.damaged)} of {len(result.checked)} file(s) damaged"
            if result.damaged
            else f"all {len(result.checked)} file(s) match the manifest"
        )
    if result.damaged:
        raise typer.Exit(1)


@app.command("show")
def show(
    symbol: str = typer.Argument(..., help="Symbol in the catalog."),
    timeframe: str = o.TIMEFRAME(help=STORED_TIMEFRAME, sets=None),
    last: int = typer.Option(5, "--last", "-n", help="How many of the latest bars to print."),
    json_out: bool = o.JSON(),
) -> None:
    """Summary statistics, gaps, the last bars and a chart of closes."""
    from rich.table import Table

    from mqc.commands._console import fmt_pct
    from mqc.core.data.summary import sparkline, summarize
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)
    prefer = None
    if timeframe is None:  # several stored: the default bar size of train and forecast (DataConfig, profile)
        from mqc.core.data.config import DataConfig
        from mqc.core.profiles import resolve_with_profile

        prefer = resolve_with_profile(DataConfig, state().profile, flags={}).value.timeframe
    s = summarize(symbol, timeframe, last=last, width=min(80, max(20, out.width - 4)), prefer=prefer)
    if want_json(json_out):
        print_json(s.to_dict())
        return
    st, e = s.stats, s.entry
    out.print(
        f"[bold]{e.symbol}[/bold] {e.timeframe}  {st['rows']} bars  {st['first']} .. {st['last']}  ({e.asset_class};"
        f" {_esc(e.source)})"
    )
    if s.also:
        out.print(f"also stored at {', '.join(s.also)}: mqc data show {e.symbol} -t {s.also[0]}")
    out.print(sparkline(s.closes, len(s.closes)))
    out.print(f"close {st['min_close']:.6g} .. {st['max_close']:.6g}, last {st['last_close']:.6g}")
    ann = f"{fmt_pct(st['annual_return'])} / yr" if st["annual_return"] is not None else "-"
    vol = fmt_pct(st["annual_volatility"])
    out.print(
        f"return {fmt_pct(st['total_return'])} ({ann}), volatility {vol} / yr, max drawdown"
        f" {fmt_pct(st['max_drawdown'])} (loss from peak)"
    )
    largest = f"largest {st['largest_gap']} = {st['largest_gap_bars']:g} x {e.timeframe} of clock time"
    out.print(
        f"gaps {st['gaps']} ({largest}), zero-volume bars {st['zero_volume_bars']}, content hash"
        f" {'ok' if s.verified else '[red]MISMATCH[/red]'}"
    )
    for g in s.gaps[:10]:
        out.print(f"  gap before {g['before']}: {g['detail']}")
    for w in st["warnings"][:10]:
        out.print(f"  [dim]{_esc(w)}[/dim]")
    t = Table(title=f"last {len(s.last_bars)} bars")
    for col in ("timestamp", "open", "high", "low", "close", "volume"):
        t.add_column(col, justify="left" if col == "timestamp" else "right")
    for b in s.last_bars:
        t.add_row(b["timestamp"], *(f"{b[c]:.6g}" for c in ("open", "high", "low", "close")), f"{b['volume']:.0f}")
    out.print(t)


@app.command("export")
def export(
    symbol: str = typer.Argument(..., help="Symbol in the catalog."),
    to: ExportFormat = typer.Option(ExportFormat.csv, "--to", case_sensitive=False, help="File format."),
    out_path: str = o.OUT(
        help=(
            "File, or folder (existing, or ending in /: created) that receives SYMBOL_TF.EXT (default ./SYMBOL_TF.csv)."
        ),
    ),
    timeframe: str = o.TIMEFRAME(help=STORED_TIMEFRAME, sets=None),
    json_out: bool = o.JSON(),
) -> None:
    """Write a stored symbol to CSV or Parquet (re-importable unchanged)."""
    from mqc.core.data.summary import export_symbol
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)

    path = export_symbol(symbol, to.value, out_path, timeframe=timeframe)
    if want_json(json_out):
        print_json({"symbol": symbol.upper(), "path": str(path), "format": to.value})
        return
    out.print(f"wrote {path}")


@app.command("remove")
def remove(
    symbol: str = typer.Argument(..., help="Symbol to remove."),
    timeframe: str = o.TIMEFRAME(help=STORED_TIMEFRAME, sets=None),
    json_out: bool = o.JSON(),
) -> None:
    """Remove a symbol from the catalog (its whole history: the way to start it over before a re-import)."""
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.timeframe import check_timeframe_flag

    check_timeframe_flag(timeframe)

    entry = Catalog().remove(symbol, timeframe)
    if want_json(json_out):
        print_json({"removed": entry.__dict__})
        return
    out.print(f"removed {entry.key} ({entry.rows} bars)")


@app.command("sample")
def sample(
    symbols: str = o.SYMBOLS(help="Comma-separated subset of SP500,NASDAQ,GOOG,EURUSD (default: all).", sets=None),
    json_out: bool = o.JSON(),
) -> None:
    """Import real bars shipped inside installed packages (no network): SP500, NASDAQ, GOOG daily; EURUSD hourly."""
    from mqc.core.data.sample import import_sample

    with RichProgress() as progress:
        result = import_sample(split_list(symbols), progress=progress)
    _render_result(result, json_out, title=f"sample imported into {result.catalog}")


@app.command("synth")
def synth(
    assets: int = typer.Option(5, "--assets", help="Number of assets (SYN0, SYN1, ...)."),
    bars: int = typer.Option(2000, "--bars", help="Bars per asset."),
    seed: int = o.SEED(0, help="Random seed (same seed, same bars).", sets=None),
    timeframe: str = o.TIMEFRAME("1d", help="Bar size.", sets=None),
    start: str = o.START("2015-01-01", help="First timestamp.", sets=None),
    correlation: float = typer.Option(0.3, "--correlation", help="Pairwise correlation of return shocks."),
    out_dir: str = o.OUT(help="Write SYN<i>.csv files into this folder."),
    do_import: bool = typer.Option(
        False, "--import", help="Store in the catalog (the default when --out is not given)."
    ),
    json_out: bool = o.JSON(),
) -> None:
    """Seeded synthetic bars: correlated assets, GARCH volatility clustering, fat tails."""
    from mqc.core.data.synth import SynthSpec, import_synth, write_synth_csv
    from mqc.core.data.timeframe import check_timeframe_flag, normalise_timeframe
    from mqc.core.dates import check_timestamp

    check_timeframe_flag(timeframe)

    check_timestamp(start, "--start")
    spec = SynthSpec(
        n_assets=assets,
        n_bars=bars,
        seed=seed,
        timeframe=normalise_timeframe(timeframe),
        start=start,
        correlation=correlation,
    )
    files = [str(p) for p in write_synth_csv(spec, out_dir)] if out_dir else []
    result = import_synth(spec) if (do_import or not out_dir) else None
    if want_json(json_out):
        print_json({"files": files, "import": result.to_dict() if result else None})
        return
    for f in files:
        out.print(f"wrote {f}")
    if result:
        _render_result(result, False, title=f"synthetic bars in {result.catalog}")


@app.command("fetch")
def fetch(
    ctx: typer.Context,
    symbols: list[str] = typer.Argument(
        ..., help="Provider symbols: AAPL ^GSPC (yfinance), BTC/USDT (ccxt), AAPL or BTC/USD (alpaca); commas work too."
    ),
    provider: Provider = o.Flag(
        ("--provider", "-p"), "yfinance (stocks), ccxt (crypto) or alpaca (stocks, crypto).", sets="fetch.provider"
    )(case_sensitive=False),
    timeframe: str = o.TIMEFRAME(help="Bar size (default 1d).", sets="fetch.timeframe"),
    start: str = o.START(help="First date (YYYY-MM-DD).", sets="fetch.start"),
    end: str = o.END(help="Last date (YYYY-MM-DD).", sets="fetch.end"),
    exchange: str = o.Flag(("--exchange",), "ccxt exchange id (default binance).", sets="fetch.exchange")(),
    on_error: OnError = OnErrorOpt,
    replace: bool = REPLACE(),
    json_out: bool = o.JSON(),
) -> None:
    """Download bars (cached, retried on rate limits), validate and import them. Needs yfinance (stocks) or ccxt
    (crypto): pip install yfinance ccxt, or pip install -e ".\\[fetch]" from the mqc checkout; alpaca needs only
    the keys in APCA_API_KEY_ID and APCA_API_SECRET_KEY."""
    from mqc.core.data.config import FetchConfig
    from mqc.core.data.fetch import fetch_symbols
    from mqc.core.profiles import resolve_with_profile

    cfg = resolve_with_profile(FetchConfig, state().profile, flags=o.given(ctx).get("fetch", {})).value
    icfg = _import_config(_val(on_error) or "repair", replace)
    names = [s.strip() for chunk in symbols for s in chunk.split(",") if s.strip()]
    with RichProgress() as progress:
        result = fetch_symbols(names, cfg, icfg, progress=progress)
    _render_result(result, json_out, title=f"fetched from {cfg.provider} into {result.catalog}")


# the feature cube and offline datasets (gym layer; their own module keeps this one small)
from mqc.commands.data_gym import features as _features  # noqa: E402
from mqc.commands.data_gym import offline as _offline  # noqa: E402

app.command("features")(_features)
app.command("offline")(_offline)
