"""Terminal output: the two consoles, global state, JSON emission and the Rich progress adapter."""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape


def _width() -> int | None:
    """Terminal width on a TTY; otherwise COLUMNS or 120, so piped tables are not squeezed to 80."""
    if sys.stdout.isatty():
        return None
    try:
        return max(40, int(os.environ.get("COLUMNS", "120")))
    except ValueError:
        return 120


def _err_width() -> int | None:
    """Like ``_width`` for stderr: when piped to a log or CI, never hard-wrap an error line."""
    return None if sys.stderr.isatty() else 1000


out = Console(highlight=False, soft_wrap=True, width=_width())
# soft_wrap off a terminal: an error line stays one line in logs (grep-able, not split mid-hint).
err = Console(stderr=True, highlight=False, soft_wrap=not sys.stderr.isatty(), width=_err_width())


@dataclass
class State:
    profile: str | None = None
    json: bool = False
    quiet: bool = False
    verbose: bool = False
    notes: set[str] = field(default_factory=set)


_STATE = State()


def set_state(new: State) -> None:
    """Called by the root callback once per invocation (works the same under CliRunner)."""
    global _STATE
    _STATE = new


def state() -> State:
    return _STATE


def want_json(flag: bool = False) -> bool:
    return flag or state().json


def print_json(obj: Any) -> None:
    from mqc.core.atomic import dumps

    sys.stdout.write(dumps(obj, indent=2) + "\n")  # strict JSON: NaN/inf as null
    sys.stdout.flush()


def info(message: str) -> None:
    """A log line on stderr (suppressed by --quiet)."""
    if not state().quiet:
        err.print(escape(message))


def note(message: str) -> None:
    """A deprecation note on stderr (``note: ...``), once per invocation, also with --quiet."""
    if message in state().notes:
        return
    state().notes.add(message)
    err.print(f"[cyan]note:[/cyan] {escape(message)}")


def warn(message: str) -> None:
    """A warning line on stderr: ``warning: ...`` once, also for a message that carries its own
    prefix (``WARNING: ...`` from core or a library)."""
    text = message.lstrip()
    if text[:8].lower() == "warning:":
        text = text[8:].lstrip()
    err.print(f"[yellow]warning:[/yellow] {escape(text)}")


def debug(message: str) -> None:
    if state().verbose:
        err.print(f"[dim]{escape(message)}[/dim]")


class RichProgress:
    """Adapter from ``mqc.core.progress.Progress`` to a Rich progress bar on stderr.

    Disabled (logs only) when stderr is not a terminal or ``--quiet`` is set.
    """

    def __init__(self, *, enabled: bool | None = None) -> None:
        st = state()
        self.enabled = (err.is_terminal and not st.quiet) if enabled is None else enabled
        self.quiet = st.quiet
        self._progress = None
        self._task = None
        self._fields: dict[str, Any] = {}

    def start(self, total: int | None, description: str) -> None:
        self.finish()
        if not self.enabled:
            if not self.quiet:
                err.print(escape(description))
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[status]}"),
            console=err,
            transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(description, total=total, status="")

    def advance(self, n: int = 1, **fields: Any) -> None:
        self._fields.update(fields)
        if self._progress is not None:
            status = "  ".join(f"{k}={_fmt(v)}" for k, v in self._fields.items())
            self._progress.update(self._task, advance=n, status=status)

    def log(self, message: str) -> None:
        if self.quiet:
            return
        (self._progress.console if self._progress else err).print(escape(message))

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._fields = {}

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.finish()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def fmt_pct(x: float | None, digits: int = 2) -> str:
    """``x`` as a percentage; ``-`` when it is undefined (None, NaN or infinite)."""
    if x is None or not math.isfinite(x):
        return "-"
    text = f"{100 * x:.{digits}f}%"
    return text[1:] if text.startswith("-") and float(text[:-1]) == 0.0 else text  # no "-0.00%"


def fmt_num(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` decimals; ``-`` when it is undefined (None, NaN or infinite)."""
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"
