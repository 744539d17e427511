"""``mqc data``: import, validate, list, show, export and remove OHLCV bars."""

from __future__ import annotations

import typer

from mqc.commands._console import out, print_json, want_json
from mqc.commands._options import JsonOpt

app = typer.Typer(help="Import, validate, inspect and store OHLCV bars.", no_args_is_help=True)


@app.command("list")
def list_(
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="Only this bar size (1d, 1h, 15m, ...)."),
    json_out: bool = JsonOpt,
) -> None:
    """List the symbols in the catalog."""
    from rich.table import Table

    from mqc.core.data.catalog import Catalog

    entries = Catalog().entries(timeframe)
    if want_json(json_out):
        print_json([e.__dict__ for e in entries])
        return
    if not entries:
        out.print("the catalog is empty: run `mqc data sample` or `mqc data import PATH`")
        return
    t = Table()
    for col in ("symbol", "timeframe", "rows", "first", "last", "class", "source"):
        t.add_column(col)
    for e in entries:
        t.add_row(e.symbol, e.timeframe, str(e.rows), e.first[:19], e.last[:19], e.asset_class, e.source)
    out.print(t)
