"""The strategy interface: anything that turns a panel into causal target weights, or into orders.

Two kinds sit behind this one idea. A weight ``Strategy`` (checkpoints) returns target weights
replayed by the weight engine; an ``OrderStrategy`` (``--strategy maxdiff``, ...) places orders
filled by the order-level rule of ``mqc.core.market.fills`` (``policy/order_strategies.py`` holds the
registered ones). Both decide row t from bars <= t only.

``mqc backtest`` and ``mqc trade`` only ever talk to a ``Strategy``; each checkpoint kind
(``dm``, ``sharpe``, ``kronos``, ...) registers a loader that rebuilds one from its checkpoint.

The checkpoint file's schema, and how a reference (``latest``, a run directory, ``best.pt``) is
resolved, are owned by ``mqc.core.runs``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mqc.core.errors import CheckpointError
from mqc.core.market.config import MarketConfig
from mqc.core.registry import Registry
from mqc.core.runs import read_checkpoint, resolve_checkpoint_path


class Strategy(Protocol):
    """A strategy may also have ``warmup`` (the first bar its features are defined at): a backtest
    that has to recompute a split embargoes ``max(lookback, warmup)`` bars, as training did."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    lookback: int  # bars of history the first decision needs

    def target_weights(self, panel: Any) -> np.ndarray:
        """``[T, A]`` float64 target weights for ``panel`` (same symbols, in order); row t uses
        bars <= t only. Rows before the first decidable bar are 0 (all cash).

        A strategy whose decisions are expensive (a sampling LM) may also define
        ``target_weights_from(panel, start)``: the same rows from ``start`` on, 0 before it; a
        backtest calls it with the segment's first bar."""
        ...


# Checkpoint kinds register a loader ``(checkpoint dict, path) -> Strategy``; the built-in kinds
# (dm, sharpe) register themselves when ``mqc.core.train.checkpoint_kinds`` is first imported.
# The candle LM (stage1..4, ``mqc.core.lm.strategy``) registers its kinds the same way.
_LOADERS = Registry("checkpoint kind", builtins=("mqc.core.train.checkpoint_kinds", "mqc.core.lm.strategy"))


def register_loader(kind: str, loader: Callable[[dict[str, Any], Path], Strategy]) -> None:
    _LOADERS.register(kind, loader)


def load_strategy(ref: str | Path) -> Strategy:
    """Rebuild the strategy stored in a checkpoint (path, run directory or ``latest``)."""
    path = resolve_checkpoint_path(ref)
    return strategy_from_checkpoint(read_checkpoint(path), path)


def strategy_from_checkpoint(ckpt: dict[str, Any], path: Path) -> Strategy:
    """The strategy of an already read checkpoint dict (``runs.read_checkpoint``) stored at ``path``."""
    kind = ckpt.get("kind")
    loader = _LOADERS.get(kind) if isinstance(kind, str) else None
    if loader is None:
        raise CheckpointError(
            f"{path}: unknown checkpoint kind {kind!r}; known: {', '.join(_LOADERS.names()) or 'none'}"
        )
    return loader(ckpt, path)


class OrderStrategy(Protocol):
    """A strategy that places orders (``policy/order_strategies.py``): row t of ``place`` depends on
    the close of t, the forecasts made at t and its (walk-forward fitted) ``params`` only."""

    name: str
    needs: tuple[str, ...]  # forecast fields it reads
    params: dict[str, tuple[float, float]]  # fit bounds

    def place(self, close: Any, forecasts: Any, params: dict[str, Any] | None, long_only: Any) -> Any:
        """``Orders [T, A, K]`` placed at each row's close."""
        ...


def order_strategy(name: str) -> OrderStrategy:
    """The registered order strategy ``name`` (ConfigError with a did-you-mean otherwise)."""
    from mqc.core.policy.order_strategies import get

    return get(name)


def order_strategy_names() -> list[str]:
    from mqc.core.policy.order_strategies import names

    return names()
