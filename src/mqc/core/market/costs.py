"""The cost model as reported: what a run or a replay charged per asset class, and its one-line form.

Words as in ``MarketConfig``: ``fee_bps`` is the commission (the ``*_fee_bps`` fields, what
``--cost-bps`` sets), ``slippage_bps`` the spread + slippage; a trade pays their sum one way.
"""

from __future__ import annotations

from typing import Any

from mqc.core.market.config import MarketConfig


def cost_summary(
    market: MarketConfig,
    asset_classes: tuple[str, ...] | list[str],
    overrides: dict[str, float] | None = None,
) -> dict[str, Any]:
    """The cost model actually used: commission and slippage bps per asset class present, overrides.

    Args:
        market: the cost model of the run or replay (overrides already applied).
        asset_classes: the panel's asset classes (one per symbol).
        overrides: ``{"cost_bps": .., "slippage_bps": ..}`` given on top of the stored/profile market.
    Returns:
        ``{"fee_bps": {class: commission bps}, "slippage_bps": {class: bps}, "overrides": {...}}``.
    """
    classes = dict.fromkeys(asset_classes)
    return {
        "fee_bps": {cls: market.commission_bps(cls) for cls in classes},
        "slippage_bps": {cls: market.slippage_bps_for(cls) for cls in classes},
        "overrides": {k: v for k, v in (overrides or {}).items() if v is not None},
    }


def cost_line(costs: dict[str, Any]) -> str:
    """One short line for a cost summary (see ``cost_summary``)."""
    parts = [f"{cls} {fee:g}+{costs['slippage_bps'][cls]:g} bps" for cls, fee in costs["fee_bps"].items()]
    ov = costs.get("overrides") or {}
    tail = ", ".join(f"--{k.replace('_', '-')} {v:g}" for k, v in ov.items()) if ov else "none"
    return f"costs (fee+slippage per trade): {', '.join(parts)}; overrides: {tail}"
