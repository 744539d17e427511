"""Risk limits (the ``[trade]`` table): per-order checks and the kill switches.

A rejected order is never sent; the loop records it with its reason. A kill switch (daily loss,
drawdown) flattens the book and stops the loop until ``mqc trade --resume``.
"""

from __future__ import annotations

from typing import Any

from mqc.core.trade.broker import Order
from mqc.core.trade.config import TradeConfig


def check_orders(
    orders: list[Order], cfg: TradeConfig, equity: float, close: dict[str, float]
) -> tuple[list[Order], list[tuple[Order, str]]]:
    """Split ``orders`` into (accepted, [(rejected, reason)]) under the limits of ``cfg``."""
    accepted: list[Order] = []
    rejected: list[tuple[Order, str]] = []
    per_symbol: dict[str, float] = {}  # an order strategy's slots of one symbol are alternatives: its largest
    for o in orders:
        per_symbol[o.symbol] = max(per_symbol.get(o.symbol, 0.0), abs(o.target_weight or 0.0))
    gross = sum(per_symbol.values())
    for o in orders:
        w = o.target_weight
        notional = o.qty * close.get(o.symbol, 0.0)
        reason = ""
        if cfg.max_position and w is not None and abs(w) > cfg.max_position + 1e-12:
            reason = f"max_position: |weight| {abs(w):.4f} > {cfg.max_position:g}"
        elif cfg.max_gross and gross > cfg.max_gross + 1e-12:
            reason = f"max_gross: the bar's gross exposure {gross:.4f} > {cfg.max_gross:g}"
        elif cfg.max_order_notional and notional > cfg.max_order_notional:
            reason = f"max_order_notional: {notional:,.2f} > {cfg.max_order_notional:,.2f}"
        elif o.limit_price is not None and cfg.price_band:
            last = close.get(o.symbol)
            if not last or abs(o.limit_price / last - 1.0) > cfg.price_band:
                reason = (
                    f"price_band: limit {o.limit_price:g} is more than {cfg.price_band:.0%} from the last close {last}"
                )
        elif cfg.max_orders_per_bar and len(accepted) >= cfg.max_orders_per_bar:
            reason = f"max_orders_per_bar: {cfg.max_orders_per_bar} sent already"
        if reason:
            rejected.append((o, reason))
        else:
            accepted.append(o)
    return accepted, rejected


def kill_reason(ledger: Any, cfg: TradeConfig, equity: float, bar: str) -> str:
    """Why the kill switch fires at ``bar`` with ``equity`` (empty: it does not)."""
    if not (cfg.max_daily_loss or cfg.max_drawdown):
        return ""
    summary = ledger.marks_summary(bar[:10])
    if summary is None:
        return ""
    peak, start = summary
    if cfg.max_drawdown and equity < peak * (1.0 - cfg.max_drawdown):
        return f"max_drawdown: equity {equity:,.2f} is {1 - equity / peak:.2%} below its peak {peak:,.2f}"
    if cfg.max_daily_loss and equity < start * (1.0 - cfg.max_daily_loss):
        return f"max_daily_loss: equity {equity:,.2f} is {1 - equity / start:.2%} below the day's start {start:,.2f}"
    return ""
