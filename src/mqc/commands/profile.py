"""``mqc profile``: create, list, show and edit TOML profiles."""

from __future__ import annotations

import typer

from mqc.commands import _options as o
from mqc.commands._console import info, out, print_json, state, want_json

app = typer.Typer(help="TOML profiles: one table per config (data, market, dm, ...).", no_args_is_help=True)


@app.command("init")
def init(
    name: str = typer.Argument("default", help="Profile name."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing profile."),
) -> None:
    """Write a profile holding every table with its default values."""
    from mqc.core.profiles import init_profile

    path = init_profile(name, force=force)
    out.print(f"wrote {path}")


@app.command("list")
def list_(json_out: bool = o.JSON()) -> None:
    """List profiles."""
    from mqc.core import paths
    from mqc.core.profiles import list_profiles

    names = list_profiles()
    if want_json(json_out):
        print_json({"dir": str(paths.profiles_dir()), "profiles": names})
        return
    if not names:
        out.print(f"no profiles in {paths.profiles_dir()} (create one: mqc profile init NAME)")
    for n in names:
        out.print(n)


@app.command("path")
def path(
    name: str = typer.Argument(None, help="Profile name (default: the profiles folder)."),
    json_out: bool = o.JSON(),
) -> None:
    """Print where a profile (or the profiles folder) lives (it need not exist yet)."""
    from mqc.core import paths
    from mqc.core.profiles import profile_path

    where = profile_path(name) if name else paths.profiles_dir()
    if want_json(json_out):
        print_json({"profile": name, "path": str(where), "exists": where.exists()})
        return
    out.print(str(where))


@app.command("show")
def show(
    name: str = typer.Argument(None, help="Profile name (default: --profile / MQC_PROFILE, else none)."),
    table: str = typer.Option(None, "--table", help="Show only this table."),
    json_out: bool = o.JSON(),
) -> None:
    """Print every resolved value and where it came from (default, profile, env or flag)."""
    from rich.table import Table

    from mqc.core import config
    from mqc.core.profiles import resolve_with_profile

    name = name or state().profile
    tables = config.known_tables()
    table = config.current_table(table) if table else table
    if table and table not in tables:
        from mqc.core.errors import ConfigError

        raise ConfigError(f"unknown table {table!r}{config.did_you_mean(table, tables)}")
    result: dict[str, dict[str, dict[str, object]]] = {}
    for tname, cls in sorted(tables.items()):
        if table and tname != table:
            continue
        res = resolve_with_profile(cls, name)
        result[tname] = {
            k: {"value": (list(v) if isinstance(v, tuple) else v), "source": res.sources[k]}
            for k, v in config.to_dict(res.value).items()
        }
    if want_json(json_out):
        print_json({"profile": name, "tables": result})
        return
    grid = Table(title=f"profile: {name or '(none)'}")
    grid.add_column("key")
    grid.add_column("value")
    grid.add_column("source")
    for tname, values in result.items():
        for key, item in values.items():
            src = item["source"]
            style = "dim" if src == "default" else "bold"
            grid.add_row(f"{tname}.{key}", str(item["value"]), f"[{style}]{src}[/{style}]")
    out.print(grid)


@app.command("set")
def set_(
    key: str = typer.Argument(..., help="TABLE.KEY, e.g. market.equity_fee_bps"),
    value: str = typer.Argument(..., help="New value (lists comma-separated; 'none' clears)."),
    name: str = typer.Option(
        None, "--name", "-n", help="Profile to edit (default: --profile, else 'default'); created when missing."
    ),
    json_out: bool = o.JSON(),
) -> None:
    """Set one value in a profile, type-checked against its config (a missing profile is created, said on stderr)."""
    from mqc.core.profiles import profile_path, set_value

    prof = name or state().profile or "default"
    existed = profile_path(prof).is_file()
    stored = set_value(prof, key, value)
    if not existed:
        # A typo in -n would otherwise create a stray profile silently; --quiet hides this line,
        # but the JSON "created" flag and `mqc profile list` still show it.
        info(f"created profile {prof} at {profile_path(prof)}")
    if want_json(json_out):
        print_json(
            {
                "profile": prof,
                "key": key,
                "value": list(stored) if isinstance(stored, tuple) else stored,
                "created": not existed,
            }
        )
        return
    shown = ", ".join(map(str, stored)) if isinstance(stored, (list, tuple)) else stored
    out.print(f"{prof}: {key} = {shown}")
