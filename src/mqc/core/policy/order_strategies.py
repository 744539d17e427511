"""Strategies that emit orders (``--strategy NAME``): the MaxDiff family and simple references.

An order strategy is the order-level side of the one ``Strategy`` idea (``policy/strategy.py``):
``place(close, forecasts, params, long_only)`` returns the ``Orders`` placed at every bar's close.
Row t is a pure function of the close of bar t, the forecasts made at t (bars <= t) and ``params``
(fitted on earlier bars by the walk-forward fit), so a paper broker can call it one bar at a time
with a one-row slice and get the same orders. Each symbol trades ``1/A`` of equity (gross <= 1).

Prices from forecasts are moves from the close (``forecast.bar_forecasts``): ``up = H_{t+1}/C_t - 1``,
``down = L_{t+1}/C_t - 1``, ``move = C_{t+1}/C_t - 1``. Offsets are in return units, positive =
closer to the close (more fills, less edge per fill). Bars without a forecast (NaN) get no orders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mqc.core.errors import ConfigError
from mqc.core.market.orders import BUY, EITHER, GTC, LIMIT, MOC, MOO, SELL, WEIGHT, Orders
from mqc.core.registry import Registry


@dataclass(frozen=True)
class OrderStrategySpec:
    """A registered order strategy: what it reads, its parameters (with fit bounds), its rule."""

    name: str
    needs: tuple[str, ...]  # forecast fields read: "high", "low", "close"
    params: dict[str, tuple[float, float]]  # name -> (low, high) bounds of the fit
    defaults: dict[str, float]
    place_fn: Callable[..., Orders] = field(repr=False)
    slots: int = 3
    help: str = ""

    def place(self, close, forecasts, params: dict[str, float] | None, long_only, start: int = 0) -> Orders:
        """Orders ``[T, A, K]`` placed at each row's close (see the module docstring).

        Args:
            close: ``[T, A]`` closes; forecasts: a ``BarForecasts``-like object (``high/low/close [T, A]``).
            params: parameter values, per name a scalar or ``[T, A]`` (walk-forward fits); None: defaults.
            long_only: bool ``[A]``: never short this asset.
            start: the first row that may place orders (the replay's first bar; earlier rows get none).
        """
        p = dict(self.defaults)
        p.update(params or {})
        unknown = set(p) - set(self.params)
        if unknown:
            raise ConfigError(f"strategy {self.name!r} has no parameter {sorted(unknown)[0]!r}")
        close = np.asarray(close, dtype=np.float64)
        T, A = close.shape
        orders = Orders.empty(T, A, self.slots)
        fc = {k: np.asarray(forecasts.field(k), dtype=np.float64) for k in self.needs}
        ok = np.isfinite(close) & (close > 0)
        ok[:start] = False
        for v in fc.values():
            ok &= np.isfinite(v)
        self.place_fn(orders, close, fc, {k: np.broadcast_to(v, (T, A)) for k, v in p.items()}, ok, long_only, 1.0 / A)
        return orders


_STRATEGIES = Registry("order strategy")


def register(spec: OrderStrategySpec) -> None:
    _STRATEGIES.register(spec.name, spec)


def names() -> list[str]:
    return _STRATEGIES.names()


def get(name: str) -> OrderStrategySpec:
    """The registered order strategy ``name`` (ConfigError with a did-you-mean otherwise)."""
    spec = _STRATEGIES.get(name)
    if spec is None:
        from mqc.core.config import did_you_mean

        raise ConfigError(
            f"unknown strategy {name!r}{did_you_mean(name, names())}", hint=f"strategies: {', '.join(names())}"
        )
    return spec


def _where(ok):
    return np.nonzero(ok)


def _maxdiff(o: Orders, close, fc, p, ok, long_only, w):
    up, down = fc["high"], fc["low"]
    lng = ok & (up > -down)
    sht = ok & ~(up > -down) & ~long_only[None, :]
    e_in, e_out = p["entry_offset"], p["exit_offset"]
    for mask, side, entry, exit_ in (
        (lng, BUY, close * (1 + down + e_in), close * (1 + up - e_out)),
        (sht, SELL, close * (1 + up - e_in), close * (1 + down + e_out)),
    ):
        i = _where(mask)
        o.set((*i, 0), kind=LIMIT, side=side, price=entry[i], size=side * w, sizing=WEIGHT)
        o.set((*i, 1), kind=LIMIT, side=-side, price=exit_[i], size=0.0, sizing=WEIGHT)
        o.set((*i, 2), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)


def _always_on(o: Orders, close, fc, p, ok, long_only, w):
    up, down, e = fc["high"], fc["low"], p["entry_offset"]
    i = _where(ok)
    o.set((*i, 0), kind=LIMIT, side=BUY, price=(close * (1 + down + e))[i], size=w, sizing=WEIGHT)
    short_w = np.where(long_only[None, :], 0.0, -w)
    o.set(
        (*i, 1), kind=LIMIT, side=SELL, price=(close * (1 + up - e))[i], size=np.broadcast_to(short_w, close.shape)[i]
    )
    o.set((*i, 2), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)


def _simple(o: Orders, close, fc, p, ok, long_only, w):
    move = fc["close"]
    target = np.where(move > p["threshold"], w, np.where(move < -p["threshold"], -w, 0.0))
    target = np.where(long_only[None, :], np.maximum(target, 0.0), target)
    i = _where(ok)
    o.set((*i, 0), kind=MOO, side=EITHER, size=target[i], sizing=WEIGHT)


def _highlow(o: Orders, close, fc, p, ok, long_only, w):
    up, down, move, e = fc["high"], fc["low"], fc["close"], p["entry_offset"]
    buy_at, sell_at = down + e, up - e
    lng = ok & (move > buy_at)
    sht = ok & (move < sell_at) & ~lng & ~long_only[None, :]
    i = _where(lng)
    o.set((*i, 0), kind=LIMIT, side=BUY, price=(close * (1 + buy_at))[i], size=w, sizing=WEIGHT)
    i = _where(sht)
    o.set((*i, 0), kind=LIMIT, side=SELL, price=(close * (1 + sell_at))[i], size=-w, sizing=WEIGHT)
    i = _where(lng | sht)
    o.set((*i, 2), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)


def _takeprofit(o: Orders, close, fc, p, ok, long_only, w):
    up, down, move, e = fc["high"], fc["low"], fc["close"], p["exit_offset"]
    lng = ok & (move > 0)
    sht = ok & (move < 0) & ~long_only[None, :]
    for mask, side, target in ((lng, BUY, close * (1 + up - e)), (sht, SELL, close * (1 + down + e))):
        i = _where(mask)
        o.set((*i, 0), kind=MOO, side=EITHER, size=side * w, sizing=WEIGHT)
        o.set((*i, 1), kind=LIMIT, side=-side, price=target[i], size=0.0, sizing=WEIGHT)
        o.set((*i, 2), kind=MOC, side=EITHER, size=0.0, sizing=WEIGHT)


def _buy_hold(o: Orders, close, fc, p, ok, long_only, w):
    # One order per symbol, at its first row that may trade: bought at the next open (good till
    # filled, so a bar without volume only delays it), then held.
    first = ok & (np.cumsum(ok, axis=0) == 1)
    i = _where(first)
    o.set((*i, 0), kind=MOO, side=BUY, size=w, sizing=WEIGHT, tif=GTC)


OFFSET = (-0.02, 0.02)
for _spec in (
    OrderStrategySpec(
        "maxdiff",
        ("high", "low"),
        {"entry_offset": OFFSET, "exit_offset": OFFSET},
        {"entry_offset": 0.0, "exit_offset": 0.0},
        _maxdiff,
        help="long if the predicted upside beats the downside, else short (long-only: flat); "
        "enter with a limit at the predicted low/high, exit at the other or at the close",
    ),
    OrderStrategySpec(
        "maxdiff-always-on",
        ("high", "low"),
        {"entry_offset": OFFSET},
        {"entry_offset": 0.0},
        _always_on,
        help="a buy at the predicted low and a sell at the predicted high every bar "
        "(long-only: the sell only exits); flat at the close",
    ),
    OrderStrategySpec(
        "simple",
        ("close",),
        {"threshold": (0.0, 0.01)},
        {"threshold": 0.0},
        _simple,
        slots=1,
        help="the sign of the close forecast, as a target weight at the next open",
    ),
    OrderStrategySpec(
        "highlow",
        ("high", "low", "close"),
        {"entry_offset": OFFSET},
        {"entry_offset": 0.0},
        _highlow,
        help="a limit at the predicted low (high) when the predicted close is above (below) it; out at the close",
    ),
    OrderStrategySpec(
        "takeprofit",
        ("high", "low", "close"),
        {"exit_offset": OFFSET},
        {"exit_offset": 0.0},
        _takeprofit,
        help="in at the open in the direction of the close forecast, "
        "take profit at the predicted high (low), else out at the close",
    ),
    OrderStrategySpec(
        "buy-hold", (), {}, {}, _buy_hold, slots=1, help="1/N of equity per symbol, bought at the first open and held"
    ),
):
    register(_spec)
