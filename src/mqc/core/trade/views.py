"""Read-only views of a ledger for ``mqc trade status|positions|orders|history|export``."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from mqc.core import atomic
from mqc.core.trade.ledger import Ledger


def status(path: Path) -> dict[str, Any]:
    """Broker, last bar, equity, cash, positions and open orders, and the last events."""
    led = Ledger.open(path, create=False)
    try:
        curve = led.equity_curve()
        kills = led.events("kill")
        last = led.events()[-5:]
        return {
            "ledger": str(path),
            "broker": led.meta("broker"),
            "last_bar": curve[-1]["bar"] if curve else None,
            "equity": curve[-1]["post"] if curve else None,
            "cash": led.cash(),
            "positions": len(led.positions()),
            "open_orders": len(led.orders(open_only=True)),
            "bars": len(curve),
            "risk_rejected": _count_by_reason(led.events("risk_reject")),
            "fetch_errors": len(led.events("fetch_error")),
            "outages": len(led.events("outage")),
            "halted": bool(kills) and kills[-1]["seq"] > max([e["seq"] for e in led.events("resume")], default=0),
            "recent": [{"at": e["at"], "kind": e["kind"], "bar": e["bar"], "symbol": e["symbol"]} for e in last],
        }
    finally:
        led.close()


def _count_by_reason(events: list[dict[str, Any]]) -> dict[str, int]:
    """Risk rejections per limit (``price_band``, ``max_position``, ...)."""
    out: dict[str, int] = {}
    for e in events:
        key = str((e["data"] or {}).get("reason", "?")).split(":")[0].split(" ")[0]
        out[key] = out.get(key, 0) + 1
    return out


def positions(path: Path) -> list[dict[str, Any]]:
    """Shares per symbol (from the fills), the last close and the value."""
    led = Ledger.open(path, create=False)
    try:
        prices = led.last_prices()
        return [
            {"symbol": s, "qty": q, "price": prices.get(s), "value": q * prices[s] if s in prices else None}
            for s, q in led.positions().items()
        ]
    finally:
        led.close()


def orders(path: Path, *, open_only: bool = False) -> list[dict[str, Any]]:
    led = Ledger.open(path, create=False)
    try:
        return [vars(o) for o in led.orders(open_only=open_only)]
    finally:
        led.close()


def history(path: Path) -> list[dict[str, Any]]:
    """Equity per decided bar: before and after its orders."""
    led = Ledger.open(path, create=False)
    try:
        return led.equity_curve()
    finally:
        led.close()


def export(path: Path, out: Path) -> Path:
    """Every event as CSV (``.csv``) or JSON lines (anything else), written atomically."""
    led = Ledger.open(path, create=False)
    try:
        events = led.events()
    finally:
        led.close()
    if out.suffix == ".csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(events[0]) if events else ["seq"])
        w.writeheader()
        for e in events:
            w.writerow({**e, "data": atomic.dumps(e["data"]) if e["data"] is not None else ""})
        atomic.write_text(out, buf.getvalue())
    else:
        atomic.write_text(out, "".join(atomic.dumps(e) + "\n" for e in events))
    return out
