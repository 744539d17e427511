"""The second kind of decider: a forecast-driven order strategy (``mqc trade --strategy maxdiff``).

Each bar it places the strategy's orders (limit, stop, market-on-open, market-on-close) at the close
of bar t from bars <= t, through the backtest's own path (``order_runner.place_orders``: next-bar
forecasts of each symbol's model, the walk-forward parameter fit on bars before, ``spec.place``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.market.orders import KIND_NAMES, NONE, QTY, TIF_NAMES, Orders

SIDE_NAMES = {1: "buy", -1: "sell", 0: "either"}


@dataclass
class OrderDecider:
    """``strategy`` on ``forecast`` (one ``ForecastConfig`` or one per symbol).

    ``precompute(panel, lo)`` (replays) places the orders of bars ``[lo, len(panel))`` at once, as
    ``mqc backtest --strategy --start`` does (its fits re-fit every ``refit_every`` bars from
    ``lo``), and serves them. A live bar (``decide_orders`` without it) is a stateful step
    (``order_step.OrderStep``): the orders ``mqc backtest --strategy --start ANCHOR`` places at that
    bar, where ``anchor`` (ns) is the first bar the ledger decided (the loop sets it; unset: the
    first bar this decider decides)."""

    strategy: str
    forecast: Any
    order_cfg: Any
    market: MarketConfig
    symbols: tuple[str, ...]
    timeframe: str
    name: str = ""
    _rows: Orders | None = field(default=None, repr=False)
    _stamps: np.ndarray | None = field(default=None, repr=False)
    _fits: list[dict[str, Any]] = field(default_factory=list, repr=False)
    anchor: int | None = None
    _step: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from mqc.core.policy.strategy import order_strategy

        self.spec = order_strategy(self.strategy)
        self.name = self.name or f"{self.spec.name}-{'-'.join(sorted(set(self.models().values())))}"

    def models(self) -> dict[str, str]:
        if isinstance(self.forecast, dict):
            return {s: c.model for s, c in self.forecast.items()}
        return {s: self.forecast.model for s in self.symbols}

    @property
    def fill_cfg(self) -> dict[str, Any]:
        """How the paper broker fills these orders (the backtest's ``[orders]`` settings)."""
        return {"intrabar": self.order_cfg.intrabar, "participation": self.order_cfg.participation}

    def _place(self, panel: Any, lo: int) -> Orders:
        from mqc.core.backtest.order_runner import place_orders

        orders, fit, _ = place_orders(self.spec, self.forecast, panel, self.market, self.order_cfg, lo, len(panel))
        self._fits = list(fit.fits)
        return orders

    def precompute(self, panel: Any, lo: int = 0) -> None:
        self._rows = self._place(panel, lo)
        self._stamps = np.asarray(panel.timestamps)

    def decide_orders(self, history: Any) -> Orders:
        """The orders ``[A, K]`` placed at the close of the last bar of ``history``."""
        t = len(history) - 1
        if self._rows is not None and self._stamps is not None and t < len(self._stamps):
            if self._stamps[t] == history.timestamps[-1]:
                return self._rows.at(t).copy()
        from mqc.core.trade.order_step import OrderStep

        ns = np.asarray(history.timestamps).astype("datetime64[ns]").astype(np.int64)
        if self.anchor is None:
            self.anchor = int(ns[t])
        if self._step is None:
            self._step = OrderStep(self.spec, self.forecast, self.order_cfg, self.market, self.symbols)
        placed, fit = self._step.decide(history, int(np.searchsorted(ns, self.anchor)))
        self._fits = [fit] if fit else []
        return placed

    def decide(self, history: Any) -> np.ndarray:
        """No target weights: an order strategy places orders (``decide_orders``)."""
        return np.full(len(self.symbols), np.nan)

    def inputs(self) -> dict[str, Any]:
        return {
            "strategy": self.spec.name,
            "models": self.models(),
            "fit": self._fits[-1] if self._fits else {"defaults": self.spec.defaults},
        }


def order_list(placed: Orders, symbols: tuple[str, ...], close: dict[str, float], equity: float) -> list[dict]:
    """One dict per used slot: the fields of a ``broker.Order`` but its ids (``qty``: units, estimated
    from the target weight and the last close for weight-sized orders)."""
    rows = []
    for a, k in np.argwhere(placed.kind != NONE):
        a, k = int(a), int(k)
        sym, size = symbols[a], float(placed.size[a, k])
        by_qty = int(placed.sizing[a, k]) == QTY
        price = float(placed.price[a, k])
        rows.append(
            {
                "symbol": sym,
                "side": SIDE_NAMES[int(placed.side[a, k])],
                "qty": size if by_qty else abs(size) * equity / close[sym],
                "order_type": KIND_NAMES[int(placed.kind[a, k])],
                "target_weight": None if by_qty else size,
                "limit_price": price if np.isfinite(price) else None,
                "tif": TIF_NAMES[int(placed.tif[a, k])],
                "slot": k,
            }
        )
    return rows


def default_symbols(data_root: str | None, timeframe: str) -> tuple[str, ...]:
    """The symbols to trade when neither ``--symbols`` nor ``[trade] symbols`` names any: every symbol
    the catalog holds at ``timeframe`` (none for a ``--data-root`` folder: it must be named)."""
    if data_root is not None:
        return ()
    from mqc.core.data.catalog import Catalog

    return tuple(sorted({e.symbol for e in Catalog().entries(timeframe)}))


def order_decider(
    strategy: str,
    symbols: tuple[str, ...],
    timeframe: str,
    market: MarketConfig,
    *,
    only: str | None = None,
    model_path: str | None = None,
    order_flags: dict[str, Any] | None = None,
    profile: str | None = None,
) -> OrderDecider:
    """``--strategy NAME [--only MODEL]``: each symbol's model from ``hyperparams/best`` (for its bar
    size), or ``only`` for all.

    Raises:
        ConfigError: no symbols, an unknown strategy or model, a symbol without a selection record.
    """
    from mqc.core.backtest.config import OrderBacktestConfig
    from mqc.core.forecast.service import resolve_base, resolve_symbol
    from mqc.core.profiles import resolve_with_profile

    if not symbols:
        raise ConfigError("--strategy needs symbols", hint="pass --symbols AAPL,MSFT or set [trade] symbols")
    ocfg = resolve_with_profile(OrderBacktestConfig, profile, flags={**(order_flags or {}), "strategy": strategy}).value
    flags = dict(model=only, model_id=model_path, timeframe=timeframe)
    forecast: Any
    if only is not None:
        forecast = resolve_base(profile, flags)
    else:
        forecast = {}
        for s in symbols:
            try:
                forecast[s] = resolve_symbol(s, profile, {**flags, "model": "best"})[0]
            except ConfigError as exc:
                raise ConfigError(
                    f"{s}: no forecaster chosen for {timeframe} bars ({exc})",
                    hint=f"mqc forecast select {s} -t {timeframe} --by pnl --strategy {strategy}, "
                    "or pass --only MODEL (e.g. --only naive)",
                ) from exc
    return OrderDecider(strategy, forecast, ocfg, market, tuple(symbols), timeframe)
