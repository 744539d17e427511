"""What decides the orders: a ``Strategy`` (a trained policy's checkpoint) turned into one bar's targets.

A decider gives, at the close of bar t and from bars <= t only, the target weight of each symbol
(NaN: no order). The forecaster strategies of the order-level model (maxdiff, ...) will be a
second kind of decider behind the same two methods.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from mqc.core.errors import CheckpointError, DataError
from mqc.core.market.config import MarketConfig

WINDOW_MARGIN = 16  # extra bars a live decision reads beyond the policy's warm-up + lookback


class Decider(Protocol):
    name: str  # part of every client order id: two strategies on one account never share ids
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig

    def decide(self, history: Any) -> np.ndarray:
        """``[A]`` target weights at the last bar of ``history`` (a Panel of bars <= t)."""
        ...

    def inputs(self) -> dict[str, Any]:
        """What the decision depended on (model, path, parameters): recorded with each decision."""
        ...


@dataclass
class CheckpointDecider:
    """A checkpoint's strategy: row t of ``target_weights`` on the bars up to t.

    ``precompute(panel)`` (replays) runs the policy once over the whole panel and serves rows from
    it: by the Strategy contract row t uses bars <= t only, so the rows are the ones a bar-by-bar
    call returns (a test holds them equal)."""

    strategy: Any
    path: Path
    name: str = ""
    _rows: np.ndarray | None = field(default=None, repr=False)
    _stamps: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from mqc.core.runs import run_id

        self.name = self.name or f"{self.strategy.kind}-{run_id(self.path)}-{self.path.stem}"

    @property
    def symbols(self) -> tuple[str, ...]:
        return tuple(self.strategy.symbols)

    @property
    def timeframe(self) -> str:
        return str(self.strategy.timeframe)

    @property
    def market(self) -> MarketConfig:
        return self.strategy.market

    def precompute(self, panel: Any) -> None:
        self._rows = self._weights(panel)
        self._stamps = np.asarray(panel.timestamps)

    def _weights(self, panel: Any) -> np.ndarray:
        w = np.asarray(self.strategy.target_weights(panel), dtype=np.float64)
        if w.shape != (len(panel), panel.n_assets):
            raise CheckpointError(f"{self.path}: the strategy returned weights of shape {w.shape}")
        return w

    def decide(self, history: Any) -> np.ndarray:
        t = len(history) - 1
        if self._rows is not None and self._stamps is not None and t < len(self._stamps):
            if self._stamps[t] == history.timestamps[-1]:
                return self._rows[t].copy()
        if t + 1 < int(self.strategy.lookback):
            raise DataError(
                f"{len(history)} bars of {', '.join(self.symbols)}: the policy needs {self.strategy.lookback}",
                hint="fetch more history (mqc data fetch) before trading this checkpoint",
            )
        return self._weights(history.slice(max(0, len(history) - self.window), len(history)))[-1]

    @property
    def window(self) -> int:
        """Bars one live decision reads: the policy's warm-up plus lookback (and a margin), so a bar
        costs the same whatever the length of the stored history. Candle features are rolling
        windows, so the decision equals the full-history one up to float32 rounding (measured 3e-8
        on weights; ``tests/core/trade/test_trade_decide.py``)."""
        from mqc.core.data.split import first_decision

        warmup = getattr(self.strategy, "warmup", None)
        if warmup is None:  # a strategy that does not declare its warm-up reads the whole history
            return 1 << 62
        return first_decision(int(warmup), int(self.strategy.lookback)) + 1 + WINDOW_MARGIN

    def inputs(self) -> dict[str, Any]:
        return {"checkpoint": str(self.path), "kind": self.strategy.kind, "lookback": int(self.strategy.lookback)}


def checkpoint_decider(ref: str | Path, symbols: tuple[str, ...] = ()) -> CheckpointDecider:
    """Load ``--checkpoint RUN`` as a decider; ``symbols`` (if given) must be the checkpoint's.

    Raises:
        ArtifactNotFound, CheckpointError: as ``load_strategy``; DataError for other symbols.
    """
    from mqc.core.policy.strategy import strategy_from_checkpoint
    from mqc.core.runs import read_checkpoint, resolve_checkpoint_path

    path = resolve_checkpoint_path(ref)
    strategy = strategy_from_checkpoint(read_checkpoint(path), path)
    want = tuple(s.upper() for s in strategy.symbols)
    if symbols and tuple(s.upper() for s in symbols) != want:
        raise DataError(
            f"{path}: the checkpoint trades {', '.join(want)}, not {', '.join(symbols)}",
            hint="drop --symbols (a checkpoint trades its own symbols)",
        )
    return CheckpointDecider(strategy, path)
