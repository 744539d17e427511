"""Market (cost and constraint) config. Light module: dataclasses only."""

from __future__ import annotations

from dataclasses import dataclass, field

from mqc.core.config import config_table
from mqc.core.errors import ConfigError

ASSET_CLASSES = ("equity", "crypto", "cash")


# a one-way cost of 100% of the traded notional: anything above is a typo (checked by config.check_values)
MAX_BPS = 10_000.0


@config_table("market")
@dataclass(frozen=True)
class MarketConfig:
    """Execution costs and constraints. Every simulator in mqc (training, backtest, gym, trading)
    builds its costs from this one dataclass through ``mqc.core.market.simulator``."""

    equity_fee_bps: float = field(
        default=1.0, metadata={"help": "commission on traded notional for equities, bps", "max": MAX_BPS}
    )
    crypto_fee_bps: float = field(
        default=10.0, metadata={"help": "commission on traded notional for crypto, bps", "max": MAX_BPS}
    )
    cash_fee_bps: float = field(
        default=0.0, metadata={"help": "cost of moving into/out of the cash asset, bps", "max": MAX_BPS}
    )
    slippage_bps: float = field(
        default=2.0,
        metadata={"help": "spread + slippage on traded notional, bps (all assets but cash)", "max": MAX_BPS},
    )
    financing_rate: float = field(
        default=0.05, metadata={"help": "annual rate paid on borrowed notional (long gross above 1)"}
    )
    borrow_rate: float = field(default=0.0, metadata={"help": "annual borrow fee on short notional"})
    cash_rate: float = field(default=0.0, metadata={"help": "annual rate earned on uninvested cash"})
    max_gross_leverage: float = field(
        default=1.0, metadata={"help": "cap on sum |w| for positions held within a session"}
    )
    max_overnight_leverage: float = field(
        default=1.0, metadata={"help": "cap on sum |w| for positions held across a day boundary"}
    )
    allow_short: bool = field(default=False, metadata={"help": "allow negative weights (subject to crypto_long_only)"})
    crypto_long_only: bool = field(
        default=True, metadata={"help": "clip crypto weights at 0 even when shorting is allowed"}
    )
    include_cash: bool = field(default=False, metadata={"help": "give policies an explicit cash asset"})

    def __post_init__(self) -> None:
        for name in (
            "equity_fee_bps",
            "crypto_fee_bps",
            "cash_fee_bps",
            "slippage_bps",
            "financing_rate",
            "borrow_rate",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"market.{name} must be >= 0, got {getattr(self, name)}")
        if self.max_gross_leverage <= 0 or self.max_overnight_leverage <= 0:
            raise ConfigError("market leverage caps must be > 0")
        if self.max_overnight_leverage > self.max_gross_leverage:
            raise ConfigError(
                f"max_overnight_leverage ({self.max_overnight_leverage}) cannot exceed max_gross_leverage"
                f" ({self.max_gross_leverage})"
            )

    # One meaning per word: a "fee" is the commission (the ``*_fee_bps`` fields, ``--cost-bps``);
    # slippage is ``slippage_bps``; their sum is the one-way cost the simulator charges.
    def commission_bps(self, asset_class: str) -> float:
        """Commission (fee) per unit of traded notional, in bps, for an asset class."""
        if asset_class == "cash":
            return self.cash_fee_bps
        return self.crypto_fee_bps if asset_class == "crypto" else self.equity_fee_bps

    def slippage_bps_for(self, asset_class: str) -> float:
        """Spread + slippage per unit of traded notional, in bps: none for the cash asset."""
        return 0.0 if asset_class == "cash" else self.slippage_bps

    def one_way_bps(self, asset_class: str) -> float:
        """Total one-way cost per unit of traded notional, in bps: commission + slippage."""
        return self.commission_bps(asset_class) + self.slippage_bps_for(asset_class)

    @staticmethod
    def cost_fields(cost_bps: float | None = None, slippage_bps: float | None = None) -> dict[str, float]:
        """The fields ``--cost-bps`` (commission of every non-cash asset) and ``--slippage-bps`` set.

        The one definition of those flags: training passes these fields as flags of the ``[market]``
        table; backtests apply them on top of the checkpoint's market (``with_cost``).
        """
        changes: dict[str, float] = {}
        if cost_bps is not None:
            changes.update(equity_fee_bps=cost_bps, crypto_fee_bps=cost_bps)
        if slippage_bps is not None:
            changes["slippage_bps"] = slippage_bps
        return changes

    def with_cost(self, cost_bps: float | None = None, slippage_bps: float | None = None) -> MarketConfig:
        """A copy with ``--cost-bps`` / ``--slippage-bps`` applied (see ``cost_fields``)."""
        import dataclasses

        return dataclasses.replace(self, **self.cost_fields(cost_bps, slippage_bps))
