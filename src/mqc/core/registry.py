"""One small mechanism for "name -> factory" tables whose entries may live in modules that are
imported only when first asked for (forecasters, checkpoint kinds, feature providers)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Any


class Registry:
    """Factories by name; ``register_lazy(name, "pkg.module:attr")`` defers the import.

    ``builtins`` are modules imported on first lookup so that they can register themselves.
    """

    def __init__(self, what: str, builtins: Iterable[str] = ()) -> None:
        self.what = what
        self._factories: dict[str, Callable[..., Any]] = {}
        self._lazy: dict[str, str] = {}
        self._builtins = tuple(builtins)
        self._builtins_loaded = False

    def register(self, name: str, factory: Callable[..., Any]) -> None:
        self._factories[name] = factory

    def register_lazy(self, name: str, target: str) -> None:
        self._lazy[name] = target

    def _load_builtins(self) -> None:
        if self._builtins_loaded:
            return
        self._builtins_loaded = True
        for module in self._builtins:
            try:
                importlib.import_module(module)
            except ModuleNotFoundError as exc:
                if exc.name != module:  # a missing dependency inside the module is a real error
                    raise

    def names(self) -> list[str]:
        self._load_builtins()
        return sorted({*self._factories, *self._lazy})

    def get(self, name: str) -> Callable[..., Any] | None:
        """The factory registered as ``name`` (importing it if lazy), or None."""
        self._load_builtins()
        if name not in self._factories and name in self._lazy:
            module, attr = self._lazy[name].split(":")
            self._factories[name] = getattr(importlib.import_module(module), attr)
        return self._factories.get(name)
