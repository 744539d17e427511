"""The one broker interface the loop talks to (paper or Alpaca: the loop never knows which).

Orders carry a deterministic client order id (``client_order_id``): the same (account, bar,
symbol, leg) always gives the same id, so a restarted loop can look an order up instead of sending
it again, and a broker refuses a second order under an id it has seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Protocol


def client_order_id(account: str, bar: str, symbol: str, leg: str = "rebalance") -> str:
    """``mqc-<20 hex>``: a hash of (account, bar, symbol, leg); at most 48 characters (Alpaca: 128)."""
    digest = hashlib.sha256(f"{account}|{bar}|{symbol}|{leg}".encode()).hexdigest()[:20]
    return f"mqc-{symbol.lower()[:20]}-{digest}"


@dataclass(frozen=True)
class Order:
    """One order. ``qty`` is in shares (> 0; ``side`` gives the sign). ``order_type``: ``moc``
    (market at the bar's close: what ``mqc backtest`` assumes), ``market`` (next open), ``limit``,
    ``stop``. ``target_weight`` is the weight the order moves the symbol to (the paper broker fills
    it with the market model's one-bar step; a real broker trades ``qty``)."""

    client_order_id: str
    bar: str
    symbol: str
    side: str
    qty: float
    order_type: str = "moc"
    target_weight: float | None = None
    limit_price: float | None = None
    tif: str = "bar"  # order-level orders: bar, day or gtc (see ``market.orders``)
    slot: int = 0  # order-level orders: the strategy's slot for the symbol (-1: one after them)


@dataclass(frozen=True)
class BrokerFill:
    """One execution: signed ``qty`` (+ bought), its ``price`` and ``fee`` (account currency).
    ``cumulative``: ``qty`` and ``price`` are the order's totals so far (a broker that reports
    ``filled_qty`` / ``filled_avg_price``); the ledger records what it has not recorded yet."""

    fill_id: str
    client_order_id: str
    symbol: str
    qty: float
    price: float
    fee: float = 0.0
    cumulative: bool = False


@dataclass(frozen=True)
class OrderState:
    """What the broker knows about an order. ``status``: new, partially_filled, filled, cancelled,
    rejected, expired. ``fills`` lists every execution so far (a restart records the missed ones)."""

    client_order_id: str
    status: str
    broker_order_id: str | None = None
    fills: tuple[BrokerFill, ...] = ()
    reason: str = ""


@dataclass(frozen=True)
class Account:
    """Cash, equity and positions (shares per symbol) as the broker reports them."""

    cash: float
    equity: float
    positions: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class BarView:
    """The bar the loop is about to decide on, as a broker needs it.

    ``timestamp``/``next_timestamp``: ns since the epoch (the next bar's expected time; None when
    unknown). ``close``: last close per symbol; ``stale``: symbols without a real bar here
    (forward-filled: not tradable); ``asset_classes``: per symbol; ``ohlcv``: open, high, low,
    close, volume per symbol."""

    timestamp: int
    next_timestamp: int | None
    close: dict[str, float]
    stale: frozenset[str] = frozenset()
    asset_classes: dict[str, str] = field(default_factory=dict)
    ohlcv: dict[str, tuple[float, ...]] = field(default_factory=dict)  # the bar's OHLCV (order-level fills)


class Broker(Protocol):
    """A broker adapter. Every method may raise ``BrokerError`` (``retryable`` for outages)."""

    name: str

    def observe(self, bar: BarView) -> None:
        """A new bar closed (the paper broker marks its book to it; a real broker ignores it)."""
        ...

    def account(self) -> Account: ...

    def submit(self, orders: list[Order]) -> list[OrderState]:
        """Send orders (one state per order, in order). An id the broker knows already is never
        placed again: its existing state is returned."""
        ...

    def order(self, client_order_id: str) -> OrderState | None:
        """Look an order up by its client id (None: the broker never received it)."""
        ...

    def cancel(self, client_order_id: str) -> OrderState | None: ...

    def unknown_symbols(self, symbols: list[str]) -> list[str]:
        """The symbols the broker cannot trade."""
        ...
