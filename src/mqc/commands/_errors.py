"""The one error handler: a domain error becomes one red line plus a hint, exit code 1 (2 for a bad
value given on the command line, like Typer's own option errors). A file-system failure the user can
fix (full disk, permission, read-only, too many open files) is a domain error too, never "internal"."""

from __future__ import annotations

import os
import re
import traceback

from rich.markup import escape

from mqc.commands._console import debug, err
from mqc.core.errors import MqcError, UsageError, storage_error


def debug_enabled() -> bool:
    return os.environ.get("MQC_DEBUG", "") not in ("", "0", "false")


def report(exc: BaseException) -> int:
    """Print ``exc`` for a person and return the exit code to use."""
    if isinstance(exc, KeyboardInterrupt):
        err.print("[red]interrupted[/red]")
        return 130
    if debug_enabled():
        err.print(escape("".join(traceback.format_exception(exc))))
    if isinstance(exc, OSError) and not isinstance(exc, MqcError):
        # a full disk, a refused permission, ...: the user's to fix, not a bug to report
        converted = storage_error(exc)
        if converted is not None:
            converted.__cause__ = exc
            exc = converted
    if isinstance(exc, MqcError):
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        if exc.hint:
            err.print(f"[dim]hint:[/dim] {escape(exc.hint)}")
        _causes(exc)
        return 2 if isinstance(exc, UsageError) else 1
    err.print(f"[bold red]internal error:[/bold red] {escape(type(exc).__name__)}: {escape(str(exc))}")
    if not debug_enabled():
        err.print("[dim]hint: rerun with MQC_DEBUG=1 for the traceback and report it[/dim]")
    return 1


def report_usage(exc: Exception) -> int:
    """A command-line mistake Typer found (unknown option or command, bad choice, missing argument):
    one ``error:`` line and a pointer to the command's help, also when stderr is a pipe. Returns the
    exit code (2)."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    message = " ".join(message.replace(": Value error, ", ": ").split())  # pydantic's prefix; no line breaks
    if message[:2].istitle():  # "No such option" -> "no such option", like every other error line
        message = message[0].lower() + message[1:]
    err.print(f"[bold red]error:[/bold red] {escape(message)}")
    ctx = getattr(exc, "ctx", None)
    found = re.search(
        r"no such command '([^']*)'|unexpected extra arguments? \(([^)]*)\)|unexpected extra argument\(s\) \(([^)]*)\)",
        message,
    )
    word = next((g for g in found.groups() if g), "") if found else ""
    if word.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
        # `--json true`: a flag takes no value
        err.print(
            f"[dim]hint:[/dim] flags take no value: write the flag alone (e.g. --json, not --json {escape(word)})"
        )
    elif ctx is not None and ctx.command.get_help_option(ctx) is not None:
        help_option = max(ctx.help_option_names, key=len)  # --help rather than -h
        hint = f"try '{ctx.command_path} {help_option}'"
        err.print(f"[dim]hint:[/dim] {escape(hint)}")
    return int(getattr(exc, "exit_code", 2))


def _causes(exc: BaseException) -> None:
    """With ``--verbose``: the underlying errors a domain error was raised from (no traceback)."""
    cause = exc.__cause__
    while cause is not None:
        debug(f"caused by {type(cause).__name__}: {cause}")
        cause = cause.__cause__
