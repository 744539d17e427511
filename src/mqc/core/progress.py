"""A tiny progress-sink protocol so long-running core functions stay terminal-agnostic.

The Rich progress bar in ``mqc.commands._console`` is one adapter; tests use ``NullProgress`` or a
recording sink.
"""

from __future__ import annotations

from typing import Any, Protocol


class Progress(Protocol):
    def start(self, total: int | None, description: str) -> None: ...

    def advance(self, n: int = 1, **fields: Any) -> None: ...

    def log(self, message: str) -> None: ...

    def finish(self) -> None: ...


class NullProgress:
    """Progress sink that ignores everything."""

    def start(self, total: int | None, description: str) -> None:
        pass

    def advance(self, n: int = 1, **fields: Any) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def finish(self) -> None:
        pass


class RecordingProgress(NullProgress):
    """Keeps what it was told; handy in tests and for ``--json`` runs that want the log."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0
        self.messages: list[str] = []
        self.fields: dict[str, Any] = {}

    def start(self, total: int | None, description: str) -> None:
        self.total = total
        self.messages.append(description)

    def advance(self, n: int = 1, **fields: Any) -> None:
        self.done += n
        self.fields.update(fields)

    def log(self, message: str) -> None:
        self.messages.append(message)


NULL = NullProgress()
