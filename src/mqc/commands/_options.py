"""Options shared by several commands, declared once."""

from __future__ import annotations

import typer

JsonOpt = typer.Option(False, "--json", help="Print the result as JSON on stdout.")


def split_list(value: str | None) -> tuple[str, ...] | None:
    """Comma- (or space-) separated list option -> tuple, ``None`` when not given."""
    if value is None:
        return None
    return tuple(v.strip() for v in value.replace(" ", ",").split(",") if v.strip())


def symbols_from(args: list[str] | None, option: str | None) -> tuple[str, ...]:
    """Merge positional symbols (space-separated, each may also hold commas) with ``--symbols``."""
    out: list[str] = []
    for chunk in [*(args or []), option or ""]:
        out.extend(s.upper() for s in split_list(chunk) or ())
    seen: dict[str, None] = {}
    for s in out:
        seen.setdefault(s, None)
    return tuple(seen)


# train and backtest: the explicit "yes, use them" for catalog files changed since import (DataConfig.allow_altered)
AllowAlteredOpt = typer.Option(
    None,
    "--allow-altered-data",
    help=(
        "Use catalog files whose bars changed since import (a warning instead of an error; mqc data verify lists them)."
    ),
)
