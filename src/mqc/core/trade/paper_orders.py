"""The paper broker's order-level book: limit, stop, market-on-open and market-on-close orders of an
order strategy (``mqc trade --strategy``), filled on the next bar by ``fills.fill_orders``.

The book runs ``market.ledger.simulate_orders``' bar step, one bar per ``observe``: the orders
placed at the close of bar t (and those resting) fill against bar t+1's OHLC (intrabar, then its
close auction), financing of the book held over bar t is charged from cash, and the book's value
before the close auction compounds a wealth index exactly as the backtest's ``cumprod(1 + net)``:
a replay's equity equals ``mqc backtest --strategy`` on the same bars (a test asserts equality).

Money is kept as the backtest keeps it (a book that starts at 1.0); the broker reports it times
its capital (units, fills, fees, equity).
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import numpy as np

from mqc.core.errors import BrokerError
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import fill_orders, long_only_mask
from mqc.core.market.ledger import bar_financing
from mqc.core.market.orders import (
    BAR,
    BUY,
    DAY,
    EITHER,
    GTC,
    KIND_NAMES,
    NONE,
    QTY,
    SELL,
    WEIGHT,
    Orders,
    expire,
    merge,
)
from mqc.core.market.simulator import bar_years, fee_rates, overnight_mask
from mqc.core.trade.broker import BarView, BrokerFill, Order

KINDS = {v: k for k, v in KIND_NAMES.items() if k != NONE}  # "limit" -> LIMIT, ...
SIDES = {"buy": BUY, "sell": SELL, "either": EITHER}
TIFS = {"bar": BAR, "day": DAY, "gtc": GTC}


def new_state(symbols: tuple[str, ...]) -> dict[str, Any]:
    return {
        "syms": list(symbols),
        "cash": 1.0,
        "pos": [0.0] * len(symbols),
        "e": 1.0,
        "wealth": 1.0,
        "ts": None,
        "close": None,
        "resting": None,
        "placed": None,
        "slots": {},  # "a,k" -> client order id of the order live in that slot
        "settled": False,
    }


def _dump(o: Orders | None) -> dict[str, list] | None:
    return None if o is None else {f.name: getattr(o, f.name).tolist() for f in fields(o)}


def _load(d: dict[str, list] | None) -> Orders | None:
    if d is None:
        return None
    i8 = {"kind", "side", "sizing", "tif"}
    return Orders(**{k: np.asarray(v, dtype=np.int8 if k in i8 else np.float64) for k, v in d.items()})


def _pad(o: Orders | None, A: int, K: int) -> Orders:
    out = Orders.empty(A, K)
    if o is not None:
        k = o.shape[1]
        for f in fields(o):
            getattr(out, f.name)[:, :k] = getattr(o, f.name)
    return out


def to_book(orders: list[Order], symbols: list[str], k_min: int = 0) -> tuple[Orders, dict[str, str]]:
    """``Order`` objects as one bar's ``Orders [A, K]`` (slot ``-1``: a slot after the strategy's) and their slots."""
    A = len(symbols)
    K = max([k_min, *(o.slot + 1 for o in orders)]) + any(o.slot < 0 for o in orders)
    book, slots = Orders.empty(A, max(K, 1)), {}
    for o in orders:
        if o.symbol not in symbols or o.order_type not in KINDS:
            raise BrokerError(f"order {o.client_order_id}: cannot book a {o.order_type} order for {o.symbol}")
        a, k = symbols.index(o.symbol), (o.slot if o.slot >= 0 else K - 1)
        weight = o.target_weight is not None
        book.set(
            (a, k),
            kind=KINDS[o.order_type],
            side=SIDES[o.side],
            size=o.target_weight if weight else o.qty,
            sizing=WEIGHT if weight else QTY,
            price=np.nan if o.limit_price is None else o.limit_price,
            tif=TIFS[o.tif],
        )
        slots[f"{a},{k}"] = o.client_order_id
    return book, slots


def place(st: dict[str, Any], orders: list[Order]) -> None:
    """Add orders placed at this bar's close (they are live from the next bar on)."""
    placed = _load(st["placed"])
    k_min = 0 if placed is None else placed.shape[1]
    new, slots = to_book(orders, st["syms"], k_min)
    if placed is not None:
        new = merge(_pad(placed, len(st["syms"]), new.shape[1]), new)
    st["placed"], st["pslots"] = _dump(new), {**st.get("pslots", {}), **slots}


def observe(st: dict[str, Any], bar: BarView, market: MarketConfig, capital: float, fill_cfg: dict[str, Any]) -> Any:
    """Run ``bar`` (newer than the last): financing, book, fills. Returns the fills and final statuses.

    Returns:
        (fills [BrokerFill], statuses {client id: status}), to be written by the broker.
    """
    syms = st["syms"]
    A = len(syms)
    missing = [s for s in syms if s not in bar.ohlcv]
    if missing:
        raise BrokerError(f"the paper broker got no OHLCV for {', '.join(missing)} at this bar")
    x = np.array([bar.ohlcv[s] for s in syms], dtype=np.float64)
    vol = x[:, 4].copy()
    vol[[s in bar.stale for s in syms]] = 0.0
    c = x[:, 3]
    classes = [bar.asset_classes.get(s, "equity") for s in syms]
    fees, long_only = fee_rates(classes, market), long_only_mask(classes, market)
    cash, pos = float(st["cash"]), np.asarray(st["pos"], dtype=np.float64)
    eq_ref = 1.0
    book: Orders | None = None
    slots: dict[str, str] = {}
    ended: set[str] = set()
    replaced: set[str] = set()
    if st["ts"] is not None:
        stamps = np.array([st["ts"], bar.timestamp], dtype="datetime64[ns]")
        e, held = float(st["e"]), pos * np.asarray(st["close"], dtype=np.float64)
        cash -= bar_financing(held / e, market, float(bar_years(stamps)[0])) * e
        eq_ref = cash + float(np.sum(held))
        resting, placed = _load(st["resting"]), _load(st["placed"])
        if resting is not None:
            resting = expire(resting, bool(overnight_mask(stamps)[0]))
            alive = resting.kind != NONE
            slots = {key: cid for key, cid in st["slots"].items() if alive[tuple(map(int, key.split(",")))]}
            ended = {cid for cid in st["slots"].values() if cid not in slots.values()}  # DAY orders at a day's end
            if not alive.any():
                resting = None
        if resting is None:
            book = placed
        elif placed is None:
            book = resting
        else:
            K = max(resting.shape[1], placed.shape[1])
            book = merge(_pad(resting, A, K), _pad(placed, A, K))
        replaced = {cid for key, cid in slots.items() if key in st.get("pslots", {})}
        slots.update(st.get("pslots", {}))
    out_fills: list[BrokerFill] = []
    status: dict[str, str] = {}
    if st["ts"] is not None:
        status = {**{cid: "expired" for cid in ended}, **{cid: "cancelled" for cid in replaced}}
    if book is not None and (book.kind != NONE).any():
        f = fill_orders(book, cash, pos, (x[:, 0], x[:, 1], x[:, 2], c, vol), fees, long_only, eq_ref, **fill_cfg)
        e_new = float(f.equity_before_close)
        cash, pos = float(f.cash), np.asarray(f.positions, dtype=np.float64)
        left = f.book.kind != NONE
        for key, cid in slots.items():
            a, k = map(int, key.split(","))
            q = float(f.qty[a, k])
            if q != 0.0:
                p = float(f.price[a, k])
                fee = abs(q) * p * float(fees[a]) * capital
                out_fills.append(BrokerFill(f"{cid}-{bar.timestamp}", cid, syms[a], q * capital, p, fee))
            if left[a, k] and int(f.book.tif[a, k]) != BAR:  # rests on (a DAY order until its day ends)
                status[cid] = "partially_filled" if q != 0.0 else "new"
            else:  # filled, or a bar's order that did not fill: it ends with this bar
                status[cid] = "filled" if q != 0.0 else "expired"
        st["resting"] = _dump(f.book) if left.any() else None
        st["slots"] = {key: cid for key, cid in slots.items() if left[tuple(map(int, key.split(",")))]}
    else:
        e_new = cash + float(np.sum(pos * c))
        st["resting"], st["slots"] = None, {}
    if st["ts"] is not None:
        st["wealth"] = st["wealth"] * (1.0 + (e_new / float(st["e"]) - 1.0))
    st.update(cash=cash, pos=pos.tolist(), e=e_new, ts=bar.timestamp, close=c.tolist(), placed=None, settled=False)
    st["pslots"] = {}
    return out_fills, status


def equity(st: dict[str, Any], capital: float, settled: bool) -> float:
    """The book's value: before this bar's close auction until ``settled``, after it then (as the
    backtest's last row)."""
    if not settled or st["close"] is None:
        return capital * st["wealth"]
    value = st["cash"] + float(np.sum(np.asarray(st["pos"]) * np.asarray(st["close"])))
    return capital * (st["wealth"] * (1.0 + (value / float(st["e"]) - 1.0)))
