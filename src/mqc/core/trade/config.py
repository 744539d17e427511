"""Trading-loop config (the profile's ``[trade]`` table). Light module: dataclasses only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mqc.core.config import config_table
from mqc.core.errors import ConfigError


@config_table("trade")
@dataclass(frozen=True)
class TradeConfig:
    """What the loop trades, with which broker, and the risk limits every order is checked against.

    A limit of 0 is off. Fractions are of the account's equity.
    """

    symbols: tuple[str, ...] = field(
        default=(), metadata={"help": "symbols to trade (empty: the catalog's daily symbols)"}
    )
    broker: Literal["paper", "alpaca"] = field(default="paper", metadata={"help": "paper (local simulation) or alpaca"})
    live: bool = field(
        default=False, metadata={"help": "allow real-money trading (also needs --live on the command line)"}
    )
    capital: float = field(default=100_000.0, metadata={"help": "starting cash of a new paper ledger", "min": 0.0})
    max_position: float = field(
        default=0.0, metadata={"help": "max |weight| of one symbol, fraction of equity (0: off)", "min": 0.0}
    )
    max_gross: float = field(
        default=0.0, metadata={"help": "max sum of |weights| after the bar's orders (0: off)", "min": 0.0}
    )
    max_order_notional: float = field(
        default=0.0, metadata={"help": "max notional of one order, in account currency (0: off)", "min": 0.0}
    )
    max_daily_loss: float = field(
        default=0.0,
        metadata={
            "help": "kill switch: flatten and stop when equity falls this fraction below the day's start (0: off)"
        },
    )
    max_drawdown: float = field(
        default=0.0,
        metadata={"help": "kill switch: flatten and stop when equity falls this fraction below its peak (0: off)"},
    )
    stale_bars: float = field(
        default=2.0,
        metadata={"help": "no order when the last bar closed more than this many bar lengths ago", "min": 0.0},
    )
    price_band: float = field(
        default=0.05, metadata={"help": "a limit price must lie within this fraction of the last close", "min": 0.0}
    )
    max_orders_per_bar: int = field(default=50, metadata={"help": "orders sent per bar at most (0: off)", "min": 0})
    on_exit: Literal["leave", "cancel"] = field(
        default="cancel", metadata={"help": "open orders on Ctrl-C / SIGTERM: leave them or cancel them"}
    )
    retries: int = field(
        default=3, metadata={"help": "broker retries (with backoff) before the bar is skipped", "min": 0}
    )
    fetch: Literal["none", "yfinance", "ccxt", "alpaca"] = field(
        default="none",
        metadata={"help": "fetch the new bars from this provider into the catalog before each decision (none: off)"},
    )
    timeout_s: float = field(default=10.0, metadata={"help": "HTTP timeout of one broker request, seconds", "min": 0.1})

    def __post_init__(self) -> None:
        for name in ("max_daily_loss", "max_drawdown"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"trade.{name} must be in [0, 1), got {getattr(self, name)}")
