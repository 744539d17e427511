"""How ``--help`` shows options: flags without a value type, list arguments by their item type,
comma-separated list options as ``<int,...>``, literal ``[...]`` in help texts, and the config
defaults of options that default to "not given".

Options of config-backed commands default to ``None`` so that a profile or ``MQC_*`` value is not
overridden by a flag nobody typed; their help would show no default. ``tidy`` (called once when the
root group is built) makes every leaf command an ``MqcCommand``; the config fields its options set
(declared with each ``Flag``) and their defaults are read only when that command's help is printed,
so ``mqc --help`` stays light. ``MqcCommand`` also accepts the deprecated spellings flags declare.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperOption

# Commands whose options declare no config field (``Flag(sets=...)`` in ``_options.py``) and build
# their flags by hand: command path -> (config tables searched in order for an option's field,
# option -> "table.field" for the options named differently). A declared field always wins; a tuple
# of targets shows a default only when they agree.
_FORECAST_RENAMES: dict[str, Any] = {
    "model_path": "forecast.model_id",
    "compile_": "forecast.compile",
    "volume": "forecast.volume_covariate",
}
CONFIG_OPTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "forecast run": (
        ("forecast",),
        {**_FORECAST_RENAMES, "horizon": "forecast.prediction_length", "quantiles": "forecast.quantile_levels"},
    ),
    **{
        f"forecast {name}": (
            ("forecast_eval", "forecast"),
            {**_FORECAST_RENAMES, "horizon": "forecast_eval.horizons", "quantiles": "forecast_eval.quantile_levels"},
        )
        for name in ("eval", "tune", "select")
    },
    **{
        f"stage{n}": (
            (f"stage{n}", "data") if n == 1 else (f"stage{n}", "market") if n == 4 else (f"stage{n}",),
            {"compile_": f"stage{n}.compile", "out": f"stage{n}.save_dir", "in_": f"stage{n}.in_run"},
        )
        for n in (1, 2, 3, 4)
    },
    "data import": (("import",), {}),
    "data validate": (("import",), {}),
    "data fetch": (("fetch",), {}),
}


class MqcCommand(TyperCommand):
    """Every leaf command: accepts the deprecated spellings its flags declare (rewritten before
    parsing, with a note), and its help adds the config defaults of its ``None``-default options."""

    mqc_path: str = ""
    _defaults_added: bool = False

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        from mqc.commands._options import deprecated_spellings

        old = deprecated_spellings(self)
        if old:
            args = list(args)
            for i, arg in enumerate(args):
                if arg == "--":
                    break
                if arg in old:
                    from mqc.commands._console import note

                    note(f"{arg} is deprecated; use {old[arg]}")
                    args[i] = old[arg]
        return super().parse_args(ctx, args)

    def format_help(self, ctx, formatter):  # type: ignore[no-untyped-def]
        if not self._defaults_added:
            self._defaults_added = True
            add_config_defaults(self, *CONFIG_OPTIONS.get(self.mqc_path, ((), {})))
        return super().format_help(ctx, formatter)


class _ItemTypeArgument(TyperArgument):
    """A variadic argument shown as ``<str>`` after ``symbols...``, not ``<list[str]>``."""

    def display_type_rich(self, ctx):  # type: ignore[no-untyped-def]
        label = super().display_type_rich(ctx)
        return re.sub(r"^<list\[(.+)\]>$", r"<\1>", label) if label else label


def tidy(command: Any, path: tuple[str, ...] = (), help_names: tuple[str, ...] | None = None) -> None:
    """Fix the help of ``command`` and every subcommand below it (once, when the CLI is built)."""
    from rich.markup import escape

    if help_names is None:
        help_names = tuple((command.context_settings or {}).get("help_option_names", ("--help",)))
    rich = getattr(command, "rich_markup_mode", None) == "rich"
    if rich and command.help:
        command.help = escape(command.help)  # help texts are plain text: "[market]" is not markup
    for name, sub in (getattr(command, "commands", None) or {}).items():
        tidy(sub, (*path, name), help_names)
    # --help is made on first use and then kept: make it now, with the names every context inherits
    help_option = command.get_help_option(command.context_class(command, help_option_names=list(help_names)))
    for param in [*getattr(command, "params", ()), *([help_option] if help_option is not None else [])]:
        if rich and getattr(param, "help", None):
            param.help = escape(param.help)
        if isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""  # a flag takes no value: no "<bool>" after it
        elif type(param) is TyperArgument and param.nargs != 1:
            param.__class__ = _ItemTypeArgument
    if type(command) is TyperCommand:
        command.__class__ = MqcCommand
        command.mqc_path = " ".join(path)


def add_config_defaults(command: Any, tables: tuple[str, ...], renames: dict[str, Any]) -> None:
    """Append ``[default: X]`` to the help of each option of ``command`` that defaults to None and
    sets a config field whose default is not None: the field its ``Flag`` declares, else
    ``renames`` / the first of ``tables`` with a field of the option's name."""
    from rich.markup import escape

    from mqc.commands._options import bindings
    from mqc.core.config import known_tables

    classes = known_tables()
    declared = bindings(command)
    rich = getattr(command, "rich_markup_mode", None) == "rich"
    for param in command.params:
        if not isinstance(param, TyperOption) or param.default is not None or param.hidden:
            continue
        binding = declared.get(param.name)
        targets = (
            (binding.targets if binding is not None and binding.targets else None)
            or renames.get(param.name)
            or next((f"{t}.{param.name}" for t in tables if param.name in _fields(classes[t])), None)
        )
        if targets is None:
            continue
        targets = (targets,) if isinstance(targets, str) else targets
        metavar = _list_metavar(classes, targets[0])
        if metavar and param.metavar is None:
            param.metavar = metavar  # a comma-separated list: <int,...>, not <str>
        values = {_shown(param, _default(classes, target)) for target in targets}
        if len(values) != 1 or None in values or "default" in (param.help or ""):  # (the text already says it)
            continue
        text = f"[default: {values.pop()}]"
        param.help = f"{param.help or ''} {f'[dim]{escape(text)}[/dim]' if rich else text}".strip()


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _list_metavar(classes: dict[str, type], target: str) -> str | None:
    """``<int,...>`` for a tuple-valued field (given on the command line as ``1,12,48``), else None."""
    import types
    import typing

    from mqc.core.config import field_types

    table, field = target.split(".", 1)
    tp = field_types(classes[table])[field]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    if typing.get_origin(tp) not in (tuple, list):
        return None
    args = [a for a in typing.get_args(tp) if a is not Ellipsis]
    return f"<{getattr(args[0], '__name__', 'str') if args else 'str'},...>"


def _default(classes: dict[str, type], target: str) -> Any:
    table, field = target.split(".", 1)
    return getattr(classes[table](), field)


def _shown(param: TyperOption, value: Any) -> str | None:
    """A default as the user would type it: ``--no-muon`` for a flag pair, ``1,12,48`` for a list."""
    if value is None:
        return None
    if isinstance(value, bool):
        if param.secondary_opts:
            return (param.opts if value else param.secondary_opts)[0]
        return "on" if value else "off"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else None
    return str(value)
