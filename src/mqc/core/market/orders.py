"""Orders: what an order-emitting strategy places at a bar's close, as dense numpy arrays.

An ``Orders`` holds ``K`` order slots per symbol, shaped ``[..., A, K]`` (``[T, A, K]`` for a whole
backtest, ``[A, K]`` for one bar or for the resting book of a broker). Orders placed at the close of
bar t are live from bar t+1 on; how they fill is the order-level rule of ``mqc.core.market.fills``.

Fields per slot:

- ``kind``: ``NONE`` (empty slot), ``MOO`` (market on open), ``LIMIT``, ``STOP``, ``MOC`` (market on close).
- ``side``: ``BUY`` (+1), ``SELL`` (-1), or ``EITHER`` (0, market orders sized by target weight only:
  trade whichever way reaches the target).
- ``price``: limit or stop price (ignored by market orders; must be finite and > 0 for the others).
- ``size`` and ``sizing``: ``QTY`` (``size`` units, > 0, in the side's direction) or ``WEIGHT``
  (``size`` is the target weight of equity; a buy only buys up to it, a sell only sells down to it:
  ``WEIGHT`` 0 with ``SELL`` is "exit a long").
- ``tif``: ``BAR`` (the next bar only), ``DAY`` (until the UTC day ends), ``GTC`` (until filled). A
  new order in a slot replaces the one resting there.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from mqc.core.errors import DataError

NONE, MOO, LIMIT, STOP, MOC = 0, 1, 2, 3, 4
KIND_NAMES = {NONE: "none", MOO: "moo", LIMIT: "limit", STOP: "stop", MOC: "moc"}
BUY, SELL, EITHER = 1, -1, 0
QTY, WEIGHT = 0, 1
BAR, DAY, GTC = 0, 1, 2
TIF_NAMES = {BAR: "bar", DAY: "day", GTC: "gtc"}


@dataclass
class Orders:
    """``K`` order slots per symbol; every field shaped ``[..., A, K]`` (see the module docstring)."""

    kind: np.ndarray  # int8
    side: np.ndarray  # int8
    price: np.ndarray  # float64 (NaN for market orders)
    size: np.ndarray  # float64
    sizing: np.ndarray  # int8
    tif: np.ndarray  # int8

    @classmethod
    def empty(cls, *shape: int) -> Orders:
        """No orders, shaped ``shape`` (e.g. ``T, A, K``)."""
        i8 = lambda: np.zeros(shape, dtype=np.int8)  # noqa: E731
        return cls(i8(), i8(), np.full(shape, np.nan), np.zeros(shape), i8(), i8())

    @property
    def shape(self) -> tuple[int, ...]:
        return self.kind.shape

    def at(self, t: int) -> Orders:
        """The slots placed at bar ``t`` (views, ``[A, K]``)."""
        return Orders(*(getattr(self, f.name)[t] for f in fields(self)))

    def copy(self) -> Orders:
        return Orders(*(getattr(self, f.name).copy() for f in fields(self)))

    def set(self, where: tuple, *, kind: int, side: int, size, sizing: int = WEIGHT, price=np.nan, tif: int = BAR):
        """Fill the slots at index ``where`` (numpy indexing) with one kind of order."""
        self.kind[where] = kind
        self.side[where] = side
        self.price[where] = price
        self.size[where] = size
        self.sizing[where] = sizing
        self.tif[where] = tif

    def _plausible(self) -> bool:
        """True when every slot passes ``check`` (few whole-array passes; a backtest's book is large).
        False means ``check`` looks closer, names the first bad slot and raises."""
        if self.kind.size == 0:
            return True
        from mqc.core.market import fill_kernel  # numba's import is heavy: only when orders are checked

        if fill_kernel.HAVE_NUMBA:
            flat = (np.ascontiguousarray(getattr(self, f.name)).reshape(-1) for f in fields(self))
            return bool(fill_kernel.orders_plausible(*flat))
        k, side, sizing = self.kind, self.side, self.sizing
        for codes, lo, hi in ((k, NONE, MOC), (side, SELL, BUY), (sizing, QTY, WEIGHT), (self.tif, BAR, GTC)):
            if codes.min() < lo or codes.max() > hi:  # unused slots included: Orders.empty holds valid codes
                return False
        priced = (k == LIMIT) | (k == STOP)
        px = np.where(priced, self.price, 1.0)
        if not (px.min() > 0 and px.max() < np.inf):  # NaN fails both
            return False
        no_side = side == EITHER
        qty = (k != NONE) & (sizing == QTY)
        if (no_side & (priced | qty)).any():
            return False
        units = np.where(qty, self.size, 1.0)
        if not (units.min() > 0 and units.max() < np.inf):
            return False
        return bool(np.isfinite(np.where(k != NONE, self.size, 0.0)).all())

    def check(self, symbols: tuple[str, ...] | list[str] | None = None) -> None:
        """Raise ``DataError`` on an order that cannot be filled: a limit/stop price that is not a
        finite positive number, a quantity that is not > 0, a weight that is not finite, a market
        order sized in units without a side, or an unknown kind/side/sizing/tif code."""
        if self._plausible():
            return
        k = self.kind
        used = k != NONE
        priced = (k == LIMIT) | (k == STOP)

        def fail(mask: np.ndarray, what: str) -> None:
            idx = tuple(int(i) for i in np.argwhere(mask)[0])
            who = f" for {symbols[idx[-2]]}" if symbols is not None and len(idx) >= 2 else ""
            bar = f" placed at bar {idx[0]}" if len(idx) == 3 else ""
            raise DataError(
                f"order{who}{bar} (slot {idx[-1]}): {what}",
                hint="a strategy must place limit/stop orders at finite prices > 0 (check its forecasts for NaN)",
            )

        if (~np.isin(k, list(KIND_NAMES))).any():
            fail(~np.isin(k, list(KIND_NAMES)), "unknown order kind")
        bad_side = used & ~np.isin(self.side, (BUY, SELL, EITHER))
        if bad_side.any():
            fail(bad_side, "side must be +1 (buy), -1 (sell) or 0 (either)")
        bad_price = priced & ~(np.isfinite(self.price) & (self.price > 0))
        if bad_price.any():
            idx = tuple(np.argwhere(bad_price)[0])
            fail(bad_price, f"limit/stop price {self.price[idx]!r} is not a finite number > 0")
        if (used & priced & (self.side == EITHER)).any():
            fail(used & priced & (self.side == EITHER), "a limit or stop order needs a side (buy or sell)")
        qty = used & (self.sizing == QTY)
        if (qty & ~(np.isfinite(self.size) & (self.size > 0))).any():
            fail(qty & ~(np.isfinite(self.size) & (self.size > 0)), "a quantity must be a finite number > 0")
        if (qty & (self.side == EITHER)).any():
            fail(qty & (self.side == EITHER), "an order sized in units needs a side (buy or sell)")
        if (used & (self.sizing == WEIGHT) & ~np.isfinite(self.size)).any():
            fail(used & (self.sizing == WEIGHT) & ~np.isfinite(self.size), "the target weight is not finite")
        if (used & ~np.isin(self.sizing, (QTY, WEIGHT))).any():
            fail(used & ~np.isin(self.sizing, (QTY, WEIGHT)), "sizing must be 0 (quantity) or 1 (weight)")
        if (used & ~np.isin(self.tif, (BAR, DAY, GTC))).any():
            fail(used & ~np.isin(self.tif, (BAR, DAY, GTC)), "time in force must be 0 (bar), 1 (day) or 2 (gtc)")


def merge(resting: Orders, placed: Orders) -> Orders:
    """The live book of the next bar: each slot's newly placed order replaces the one resting there."""
    new = placed.kind != NONE
    return Orders(*(np.where(new, getattr(placed, f.name), getattr(resting, f.name)) for f in fields(placed)))


def expire(book: Orders, day_ends: bool) -> Orders:
    """Drop what a bar's close ends: every ``BAR`` order, and ``DAY`` orders when the UTC day ends."""
    keep = (book.tif == GTC) | ((book.tif == DAY) & (not day_ends))
    out = book.copy()
    out.kind = np.where(keep, book.kind, NONE).astype(np.int8)
    return out
