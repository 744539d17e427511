"""The forecaster interface every model implements, and the registry that names them.

A forecaster takes causal context (canonical OHLCV frames whose last row is the forecast origin)
and returns, per symbol, quantile paths for open/high/low/close over ``prediction_length`` future
bars on the symbol's own calendar, plus sample paths when the model draws them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from mqc.core.errors import ConfigError
from mqc.core.registry import Registry

OHLC = ("open", "high", "low", "close")


@dataclass
class Forecast:
    """One symbol's forecast from one origin.

    ``quantiles[q, h, k]`` is quantile ``quantile_levels[q]`` of field ``OHLC[k]`` at future bar h
    (h = 0 is the first bar after the origin). Quantiles are sorted along q, and per quantile path
    low <= open, close <= high. ``samples[n, h, k]`` holds sample paths when the model has them.
    """

    symbol: str
    origin: pd.Timestamp  # timestamp of the last context bar
    timestamps: pd.DatetimeIndex  # [H] future bar timestamps (UTC)
    quantile_levels: tuple[float, ...]
    quantiles: np.ndarray  # float64 [Q, H, 4]
    last_close: float
    samples: np.ndarray | None = None  # float64 [N, H, 4]
    model: str = ""

    def field(self, name: str) -> np.ndarray:
        """``[Q, H]`` quantiles of one field."""
        return self.quantiles[:, :, OHLC.index(name)]

    def median(self, name: str = "close") -> np.ndarray:
        q = np.asarray(self.quantile_levels)
        i = int(np.argmin(np.abs(q - 0.5)))
        return self.field(name)[i]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict: per field, per quantile level, the path over the horizon."""
        return {
            "symbol": self.symbol,
            "model": self.model,
            "origin": self.origin.isoformat(),
            "last_close": self.last_close,
            "timestamps": [t.isoformat() for t in self.timestamps],
            "quantile_levels": list(self.quantile_levels),
            "quantiles": {
                f: {str(q): self.quantiles[i, :, k].tolist() for i, q in enumerate(self.quantile_levels)}
                for k, f in enumerate(OHLC)
            },
        }

    def to_frame(self) -> pd.DataFrame:
        """Long frame: symbol, timestamp, step, field, quantile, value."""
        rows = []
        for qi, q in enumerate(self.quantile_levels):
            for h, ts in enumerate(self.timestamps):
                for k, f in enumerate(OHLC):
                    rows.append((self.symbol, ts, h + 1, f, q, float(self.quantiles[qi, h, k])))
        return pd.DataFrame(rows, columns=["symbol", "timestamp", "step", "field", "quantile", "value"])


class Forecaster(Protocol):
    name: str

    def predict(
        self,
        context: Mapping[str, pd.DataFrame],
        prediction_length: int,
        quantile_levels: tuple[float, ...],
    ) -> dict[str, Forecast]:
        """Forecast every symbol in ``context`` (batched where the model can)."""
        ...


# Built-in models live in ``registry.py``, which registers them (and Kronos) on first lookup.
_MODELS = Registry("model", builtins=("mqc.core.forecast.registry",))


def register(name: str, factory: Callable[..., Forecaster]) -> None:
    _MODELS.register(name, factory)


def register_lazy(name: str, target: str) -> None:
    """Register ``name`` -> ``"module:factory"``, imported only when the model is asked for."""
    _MODELS.register_lazy(name, target)


def available() -> list[str]:
    return _MODELS.names()


def create(name: str, **settings: Any) -> Forecaster:
    """Build the forecaster called ``name`` with model-specific ``settings``.

    mqc's own callers pass ``config=ForecastConfig(...)``; factories should accept it.
    """
    factory = _MODELS.get(name)
    if factory is None:
        from mqc.core.config import did_you_mean

        raise ConfigError(
            f"unknown model {name!r}{did_you_mean(name, available())}",
            hint=f"available models: {', '.join(available())}",
        )
    return factory(**settings)


def sort_quantiles(q: np.ndarray) -> np.ndarray:
    """Make a ``[..., Q, H, 4]`` quantile array monotone in q and OHLC-consistent per quantile path.

    Leading batch axes are allowed (``[B, Q, H, 4]``); a plain ``[Q, H, 4]`` works as before.
    """
    q = np.sort(q, axis=-3)
    o, h, lo, c = (q[..., i] for i in range(4))
    hi = np.maximum.reduce([o, h, c])
    lw = np.minimum.reduce([o, lo, c])
    out = np.stack([o, hi, lw, c], axis=-1)
    return out
