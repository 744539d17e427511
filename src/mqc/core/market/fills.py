"""Execution rules, written once for numpy (float64 backtests) and torch (differentiable training).

What the market lets a book hold, and how one bar fills:

- **Constraints** (``constrain_weights``): shorts are clipped to 0 unless ``allow_short`` (crypto
  always when ``crypto_long_only``); gross leverage above the cap of the bar (``leverage_cap``:
  intraday, or overnight when the position crosses a UTC day boundary) is scaled down.
- **Holds** (``fill``): an asset marked held (a NaN target, or a forward-filled bar: no real price
  to trade at) keeps its pre-trade (drifted) weight; it is never traded or rescaled, not even when
  drift lifts gross leverage a little over the cap. The assets traded on that bar are constrained
  without the held ones and then scaled into the leverage room the held ones leave
  (``scale_into_room``).
- **One bar** (``step``): the fill above, then the market equations of ``simulate`` for that bar
  (costs on the trade from the pre-trade book, financing, net return) and the book drifted to the
  next bar. A gym env or a paper broker calls it bar by bar; the backtest engine and the training
  rollout run the same rules vectorised over many bars.
- **Orders** (``fill_orders``): the order-level rule. Orders placed at the close of bar t (see
  ``mqc.core.market.orders``) fill against bar t+1's OHLC; see ``fill_orders`` for the rule.
  ``fill_kernel`` restates it as compiled scalar loops for whole backtests; tests hold the two
  equal bit for bit per bar (``tests/core/market/test_order_kernel.py``): change both together.
- ``step`` on a batch of books (numpy float64 ``[N, A]``, the batched gym env) runs ``step_kernel``,
  the same one-bar rule as compiled scalar loops, when numba is installed (``engine="auto"``);
  ``tests/core/market/test_step_kernel.py`` holds it equal to the numpy path bit for bit: change both together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.market.orders import LIMIT, MOC, MOO, NONE, QTY, STOP, Orders
from mqc.core.market.simulator import SimResult, _is_torch, drifted_weights, holding, settle


def leverage_cap(config: MarketConfig, overnight: Any = None) -> np.ndarray:
    """Gross-leverage cap of each bar: ``max_overnight_leverage`` where the position held from the
    bar crosses a day boundary, else ``max_gross_leverage``; without ``overnight``, the overnight
    cap (the stricter one). Returns a numpy array shaped like ``overnight`` (0-d without it)."""
    if overnight is None:
        return np.asarray(config.max_overnight_leverage)
    return np.where(np.asarray(overnight), config.max_overnight_leverage, config.max_gross_leverage)


def constrain_weights(
    weights: Any, asset_classes: tuple[str, ...] | list[str], config: MarketConfig, overnight: Any = None
) -> Any:
    """Apply shorting rules and leverage caps: the weights the market actually lets you hold.

    Args:
        weights: ``[..., A]`` target weights (numpy or torch).
        asset_classes: per-asset class (``crypto`` may be long-only).
        config: shorting rules and caps.
        overnight: bool ``[...]`` per row (see ``leverage_cap``).
    Returns:
        The constrained weights, same backend and shape.
    """
    torch_mode = _is_torch(weights)
    if torch_mode:
        import torch

    if not torch_mode:
        return _constrain_np(weights, asset_classes, config, _cap_np(config, overnight))
    w = weights
    if not config.allow_short:
        w = w.clamp(min=0.0)
    elif config.crypto_long_only and "crypto" in asset_classes:
        mask = torch.as_tensor(np.array([c == "crypto" for c in asset_classes]), device=w.device)
        w = torch.where(mask, w.clamp(min=0.0), w)
    cap = torch.as_tensor(leverage_cap(config, overnight), dtype=w.dtype, device=w.device)
    scale = torch.clamp(cap / w.abs().sum(-1).clamp(min=1e-12), max=1.0)
    return w * scale[..., None]


def _cap_np(config: MarketConfig, overnight: Any) -> Any:
    """``leverage_cap``, as a plain number when both caps are equal (it broadcasts to the same results)."""
    if overnight is None or config.max_overnight_leverage == config.max_gross_leverage:
        return config.max_overnight_leverage
    return leverage_cap(config, overnight)


def _constrain_np(w: np.ndarray, asset_classes: Any, config: MarketConfig, cap: Any) -> np.ndarray:
    """``constrain_weights`` in numpy under the caps ``cap``."""
    if not config.allow_short:
        # No negative weight is left, so sum |w| == sum w (a sum of zeros may differ in its sign only,
        # and max(+-0, 1e-12) is the same).
        w = np.maximum(w, 0.0)
        gross = np.add.reduce(w, -1)
    else:
        if config.crypto_long_only and "crypto" in asset_classes:
            crypto = np.array([c == "crypto" for c in asset_classes])
            w = np.where(crypto, np.maximum(w, 0.0), w)
        gross = np.add.reduce(np.abs(w), -1)
    return w * np.minimum(cap / np.maximum(gross, 1e-12), 1.0)[..., None]


def scale_into_room(traded: Any, held_gross: Any, cap: Any) -> Any:
    """Scale the traded weights into the gross leverage the held positions leave under ``cap``.

    Args:
        traded: ``[..., A]`` constrained weights of the traded assets (0 at held ones).
        held_gross: ``[...]`` sum of |weight| of the held positions (never scaled).
        cap: ``[...]`` gross-leverage cap (``leverage_cap``).
    Returns:
        ``traded`` scaled down where its gross exceeds the room (never scaled up).
    """
    if _is_torch(traded):
        import torch

        cap_t = torch.as_tensor(cap, dtype=traded.dtype, device=traded.device)
        room = (cap_t - held_gross).clamp(min=0.0)
        gross = traded.abs().sum(-1)
        scale = torch.clamp(room / gross.clamp(min=1e-12), max=1.0)
        return traded * scale[..., None]
    room = np.maximum(cap - held_gross, 0.0)
    gross = np.abs(traded).sum(-1)
    over = gross > room
    scale = np.where(over, room / np.where(over, gross, 1.0), 1.0)
    return traded * scale[..., None]


def fill_traded(traded: Any, hold: Any, book: Any, cap: Any) -> Any:
    """Executed weights of a bar from its already constrained traded weights: held assets keep
    their ``book`` weight, the traded ones are scaled into the room left (``scale_into_room``)."""
    if _is_torch(traded):
        import torch

        held_gross = torch.where(hold, book, torch.zeros_like(book)).abs().sum(-1)
        return torch.where(hold, book, scale_into_room(traded, held_gross, cap))
    # One book (the engine, a broker): sum only the held weights, so the sum's rounding does not
    # depend on how many traded assets sit between them.
    held_gross = np.abs(book[hold]).sum() if np.ndim(book) == 1 else np.abs(np.where(hold, book, 0.0)).sum(-1)
    return np.where(hold, book, scale_into_room(traded, held_gross, cap))


def fill(
    targets: Any,
    hold: Any,
    book: Any,
    asset_classes: tuple[str, ...] | list[str],
    config: MarketConfig,
    overnight: Any,
) -> Any:
    """Executed weights of a bar: held assets keep their pre-trade ``book`` weight; the others are
    constrained (``constrain_weights``, without the held ones' targets) and scaled into the room left.

    Args:
        targets: ``[..., A]`` target weights (values at held assets are ignored; NaN allowed there).
        hold: bool ``[..., A]``: the asset is not traded on this bar.
        book: ``[..., A]`` pre-trade (drifted) weights.
        overnight: bool ``[...]``: the position held from this bar crosses a day boundary.
    """
    if _is_torch(targets):
        import torch

        free = torch.where(hold, torch.zeros_like(targets), targets)
    else:
        free = np.where(hold, 0.0, targets)
    traded = constrain_weights(free, asset_classes, config, overnight)
    return fill_traded(traded, hold, book, leverage_cap(config, overnight))


def _fill_np(
    targets: np.ndarray, hold: Any, book: np.ndarray, asset_classes: Any, config: MarketConfig, overnight: Any
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """``fill`` in numpy, and the fill's long and short exposures where they are known without summing again.

    With nothing held (``hold`` None or all False) the held assets' bookkeeping changes nothing (the
    held gross is 0, the room is the cap) and is skipped. Long-only, the filled weights are >= 0, so
    their long exposure is the gross already summed and their short exposure 0 (unless a row is NaN).
    """
    if hold is not None and np.asarray(hold).any():
        return fill(targets, hold, book, asset_classes, config, overnight), None
    cap = _cap_np(config, overnight)
    traded = _constrain_np(targets, asset_classes, config, cap)
    # scale_into_room(traded, 0, cap): rounding may leave the constrained gross a hair above the cap.
    gross = np.add.reduce(np.abs(traded) if config.allow_short else traded, -1)
    over = gross > cap
    if over.any():
        if traded.ndim == 1:  # one book (the engine, a broker)
            traded = traded * (cap / gross)
        else:  # rows under the cap keep a scale of 1 (w * 1.0 is w)
            scale = np.ones_like(gross)
            np.divide(cap, gross, out=scale, where=over)
            traded *= scale[:, None]
        if config.allow_short:
            return traded, None
        gross = np.add.reduce(traded, -1)
    elif config.allow_short:
        return traded, None
    # Long only: max(w, 0) is w (never -0.0), so the long exposure is the gross, and the short one is
    # 0 as the sum of max(-w, 0) is (the NaN of a NaN row included).
    return traded, (gross, np.maximum(-gross, 0.0))


@dataclass
class Fill:
    """One bar filled: the executed weights, the bar's market series and the next pre-trade book."""

    weights: Any  # [..., A] executed at the close of the bar, held to the next close
    book: Any  # [..., A] pre-trade weights at the next bar (drifted by the bar's returns)
    bar: SimResult  # the bar's series, each [...]

    @property
    def net_return(self) -> Any:
        return self.bar.net_returns

    @property
    def costs(self) -> Any:
        return self.bar.costs


def step(
    book: Any,
    targets: Any,
    hold: Any,
    returns: Any,
    fees: Any,
    dt: Any,
    overnight: Any,
    asset_classes: tuple[str, ...] | list[str],
    config: MarketConfig,
    *,
    exact: bool = True,
    engine: str = "auto",
) -> Fill:
    """Fill one bar and run the market equations on it (numpy or torch, following ``targets``).

    Args:
        book: ``[..., A]`` pre-trade weights (zeros: all cash).
        targets: ``[..., A]`` target weights decided at this bar's close.
        hold: bool ``[..., A]``: not traded on this bar (NaN target or forward-filled bar); ``None``:
            nothing held (numpy; a caller that knows no bar of its data is forward-filled).
        returns: ``[..., A]`` simple returns from this close to the next.
        fees: ``[A]`` one-way cost fractions (``fee_rates``).
        dt: bar length in years (scalar or ``[...]``; 0 for the last bar of a backtest).
        overnight: bool (or ``[...]``): the position held from this bar crosses a day boundary
            (``None``: the overnight cap; a caller whose two caps are equal may skip the flags).
        asset_classes, config: shorting rules, caps, financing.
        exact: drift the next book with the realised net return (costs and financing leave the
            book, as the backtest engine does); ``False`` drifts with ``w . r`` (the training rollout).
        engine: for a batch of books (numpy float64 ``[N, A]`` targets, book and returns): ``numba``
            (``step_kernel``, ``pip install 'mqc[fast]'``), ``numpy`` (whole-array calls), or ``auto``:
            numba when it is installed. Equal bit for bit; other inputs always take the numpy/torch path.
    Returns:
        Fill with the executed weights, the bar's series (``net_returns``, ``costs``, ...) and the
        next pre-trade book.
    Raises:
        ConfigError: an unknown ``engine``, or ``numba`` asked for without numba.
    """
    if engine != "numpy" and _kernel_applies(engine, targets):
        f = _step_compiled(book, targets, hold, returns, fees, dt, overnight, asset_classes, config, exact)
        if f is not None:
            return f
    if _is_torch(targets):
        import torch

        w, exposure = fill(targets, hold, book, asset_classes, config, overnight), None
        dt = torch.as_tensor(dt, dtype=w.dtype, device=w.device)
        fees = torch.as_tensor(fees, dtype=w.dtype, device=w.device)
    else:
        book = np.asarray(book, dtype=np.float64)
        returns = np.asarray(returns, dtype=np.float64)
        w, exposure = _fill_np(np.asarray(targets, dtype=np.float64), hold, book, asset_classes, config, overnight)
    # One bar whose pre-trade book is given: the market equations in a single pass, exact.
    bar = settle(w, book, fees, holding(w, returns, dt, config, exposure))
    growth = bar.net_returns if exact else bar.gross_returns
    return Fill(weights=w, book=drifted_weights(w, returns, growth), bar=bar)


ENGINES = ("auto", "numba", "numpy")
_ALL_DAY = np.ones(1, dtype=bool)  # ``overnight=None``: the overnight cap for every book
_NO_HOLD = np.zeros((0, 0), dtype=bool)  # ``hold=None``: nothing held


_kernel: Any = None  # the ``step_kernel`` module, imported on the first batch (numba is slow to import)


def _step_kernel() -> Any:
    global _kernel
    if _kernel is None:
        from mqc.core.market import step_kernel

        _kernel = step_kernel
    return _kernel


def _kernel_applies(engine: str, targets: Any) -> bool:
    """Whether ``step`` runs ``step_kernel`` on ``targets`` (a numpy float64 ``[N, A]`` batch)."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    if not (_kernel or _step_kernel()).HAVE_NUMBA:
        if engine == "numba":
            raise ConfigError("engine 'numba' needs numba", hint="pip install 'mqc[fast]'")
        return False
    return type(targets) is np.ndarray and targets.ndim == 2 and targets.dtype == np.float64


_KERNEL_ARGS: dict[tuple[int, int], tuple] = {}  # (id(config), id(asset_classes)) -> both and the kernel's args


def _kernel_args(asset_classes: Any, config: MarketConfig) -> tuple[np.ndarray, bool, np.ndarray]:
    """The kernel's view of the market: per-asset long-only mask, ``allow_short``, and ``[5]`` caps
    (intraday, overnight) and rates (financing, borrow, cash); cached per config and asset list."""
    key = (id(config), id(asset_classes))
    hit = _KERNEL_ARGS.get(key)
    if hit is not None and hit[0] is config and hit[1] is asset_classes:
        return hit[2]
    c = config
    long_only = np.array([not c.allow_short or (c.crypto_long_only and k == "crypto") for k in asset_classes])
    params = [c.max_gross_leverage, c.max_overnight_leverage, c.financing_rate, c.borrow_rate, c.cash_rate]
    args = (long_only.astype(bool), bool(c.allow_short), np.array(params, dtype=np.float64))
    if len(_KERNEL_ARGS) > 64:
        _KERNEL_ARGS.clear()
    _KERNEL_ARGS[key] = (config, asset_classes, args)  # holding both keeps their ids from being reused
    return args


def _f64(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous float64 array (itself when it is one: the batched env's case, checked cheaply)."""
    if type(x) is np.ndarray and x.dtype == np.float64 and x.flags.c_contiguous:
        return x
    return np.ascontiguousarray(x, dtype=np.float64)


def _step_compiled(book, targets, hold, returns, fees, dt, overnight, asset_classes, config, exact) -> Fill | None:
    """``step`` through ``step_kernel.step_batch``; None where the inputs are not one ``[N, A]`` batch
    (a broadcast book or returns, per-asset ``dt``...): the numpy path takes those."""
    shape = targets.shape
    book, returns, fees = _f64(book), _f64(returns), _f64(fees)
    dt = _f64(dt)
    if dt.ndim != 1:
        dt = dt.reshape(-1)
    if overnight is None:
        overnight = _ALL_DAY
    elif type(overnight) is not np.ndarray or overnight.dtype != np.bool_ or overnight.ndim != 1:
        overnight = np.asarray(overnight, dtype=bool).reshape(-1)
    hold = _NO_HOLD if hold is None else np.ascontiguousarray(hold, dtype=bool)
    if (
        book.shape != shape
        or returns.shape != shape
        or fees.shape != shape[1:]
        or dt.size not in (1, shape[0])
        or overnight.size not in (1, shape[0])
        or (hold.size and hold.shape != shape)
        or len(asset_classes) != shape[1]
    ):
        return None
    long_only, short_ok, params = _kernel_args(asset_classes, config)
    w, nxt, series = (_kernel or _step_kernel()).step_batch(
        book, _f64(targets), hold, returns, fees, dt, overnight, long_only, short_ok, params, exact
    )
    return Fill(weights=w, book=nxt, bar=SimResult(*series))


# ---- order-level fills ------------------------------------------------------------------------

INTRABAR_RULES = ("conservative", "optimistic")
# A fill worth less than this fraction of equity is rounding (a weight order already at its target).
DUST = 1e-10


def long_only_mask(asset_classes: tuple[str, ...] | list[str], config: MarketConfig) -> np.ndarray:
    """bool ``[A]``: the asset may not be held short (shorting off, or crypto under ``crypto_long_only``)."""
    return np.array(
        [not config.allow_short or (config.crypto_long_only and c == "crypto") for c in asset_classes], dtype=bool
    )


@dataclass
class OrderFill:
    """One bar of orders filled (``fill_orders``). Money is in the book's currency (start: 1.0)."""

    qty: np.ndarray  # [A, K] signed units filled (0: no fill)
    price: np.ndarray  # [A, K] fill price (NaN: no fill)
    cash: float  # after the bar's fills and their costs
    positions: np.ndarray  # [A] units held after the close auction
    costs_intrabar: float  # commission + slippage of the fills before the close
    costs_close: float  # ... of the close auction (market-on-close orders)
    equity_before_close: float  # cash + positions . close after the intrabar fills, before the auction
    decided: np.ndarray  # bool [A]: the two intrabar paths ended the bar at different values
    gap: np.ndarray  # [A] value of the better path minus the worse one (0 where not decided)
    book: Orders  # the orders left resting (unfilled, or a quantity order's unfilled rest)


def _order_qty(book: Orders, px, pos, equity, long_only, room) -> np.ndarray:
    """Units each slot would trade at price ``px`` (``[A, K]``) given the positions ``pos`` ``[A]``."""
    wq = book.size * equity / px - pos[:, None]  # callers silence the warnings of empty slots (NaN px)
    side = book.side
    wq = np.where(side > 0, np.maximum(wq, 0.0), np.where(side < 0, np.minimum(wq, 0.0), wq))
    q = np.where(book.sizing == QTY, side * book.size, wq)
    q = np.where(long_only[:, None], np.maximum(q, -pos[:, None]), q)
    q = np.clip(q, -room[:, None], room[:, None])
    dust = ~(np.abs(q) * px > DUST * abs(equity))
    return np.where(dust, 0.0, q)


def _intervals(path: np.ndarray, book: Orders) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """When each slot is marketable along the bar's path ``path [4, A]`` (times 0..3, linear between).

    Returns ``start, end, price_at_start``, each ``[3, A, K]`` (segment s runs from time s to s+1):
    the interval of times in segment s at which the order's condition holds (empty: start = inf).
    A buy limit / sell stop is marketable at prices <= its price, a sell limit / buy stop at >=;
    a market-on-open order only at time 0.
    """
    kind, side, price = book.kind, book.side, book.price
    below = ((kind == LIMIT) & (side > 0)) | ((kind == STOP) & (side < 0))
    above = ((kind == LIMIT) & (side < 0)) | ((kind == STOP) & (side > 0))
    shape = (3, *kind.shape)
    start, end, at = np.full(shape, np.inf), np.full(shape, -np.inf), np.full(shape, np.nan)
    for s in range(3):
        p0, p1 = path[s][:, None], path[s + 1][:, None]
        c0 = (below & (p0 <= price)) | (above & (p0 >= price))
        c1 = (below & (p1 <= price)) | (above & (p1 >= price))
        cross = s + (price - p0) / (p1 - p0)
        start[s] = np.where(c0, float(s), np.where(c1, cross, np.inf))
        end[s] = np.where(c1, float(s + 1), np.where(c0, cross, -np.inf))
        at[s] = np.where(c0, p0, price)
    moo = kind == MOO
    start[0] = np.where(moo, 0.0, start[0])
    end[0] = np.where(moo, 0.0, end[0])
    at[0] = np.where(moo, path[0][:, None], at[0])
    return start, end, at


def _run_path(path, book, live, pos0, equity, fees, long_only, room0):
    """Fill the intrabar orders along one path: repeatedly the earliest marketable slot with something
    to trade (ties: the lower slot), each slot at most once. Returns qty, price, cash change, positions, room."""
    A, K = book.kind.shape
    start, end, at = _intervals(path, book)
    rows = np.arange(A)
    tau, cur = np.zeros(A), path[0].copy()
    pos, cash, room = pos0.copy(), np.zeros(A), room0.copy()
    qty, px = np.zeros((A, K)), np.full((A, K), np.nan)
    done = ~live
    n = A * K
    flat = np.arange(n)
    start_f, end_f, at_f = start.reshape(3, n), end.reshape(3, n), at.reshape(3, n)
    for _ in range(K):
        tt = np.repeat(tau, K)
        cand_start = np.where(end_f >= tt, np.maximum(start_f, tt), np.inf)
        seg = cand_start.argmin(0)
        nxt = cand_start[seg, flat]
        p_fill = np.where(nxt > start_f[seg, flat], np.repeat(cur, K), at_f[seg, flat]).reshape(A, K)
        nxt = nxt.reshape(A, K)
        q = _order_qty(book, p_fill, pos, equity, long_only, room)
        ok = ~done & np.isfinite(nxt) & (q != 0)
        j = np.where(ok, nxt, np.inf).argmin(1)
        has = ok[rows, j]
        if not has.any():
            break
        r, jj = rows[has], j[has]
        qq, pp = q[r, jj], p_fill[r, jj]
        qty[r, jj], px[r, jj], done[r, jj] = qq, pp, True
        pos[r] += qq
        cash[r] -= qq * pp + np.abs(qq) * pp * fees[r]
        room[r] -= np.abs(qq)
        tau[r], cur[r] = nxt[r, jj], pp
    return qty, px, cash, pos, room


def fill_orders(
    book: Orders,
    cash: float,
    positions: np.ndarray,
    bar: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    fees: np.ndarray,
    long_only: np.ndarray,
    equity: float,
    *,
    intrabar: str = "conservative",
    participation: float | None = None,
) -> OrderFill:
    """Fill the live orders of one bar (a backtest calls it bar by bar; so does a paper broker).

    The rule:

    - The bar's prices move along a path from the open to the close through the high and the low:
      open -> low -> high -> close or open -> high -> low -> close. A buy limit fills where the path
      reaches its price (at the limit; at the open when the bar opens through it), a sell limit
      likewise upward; a buy stop where the path rises to its price (at the open on a gap through
      it), a sell stop downward; market-on-open at the open. Orders fill in the order the path
      reaches them, each at most once per bar; an order with nothing to trade when reached (a
      target weight already met, nothing to sell) waits for the next fill of its symbol.
    - Both paths are filled. ``intrabar="conservative"`` keeps, per symbol, the one ending the bar
      at the lower value (cash + position at the close), ``"optimistic"`` the higher. They differ
      only where two orders of a symbol interact in one bar (an entry and its exit both touched):
      ``decided`` marks those symbols, ``gap`` the value at stake.
    - Then the close auction: market-on-close orders fill at the close, in slot order; their
      target weights are of ``equity_before_close`` (the weight engine's sizing, so a strategy of
      market-on-close orders only replays exactly as target weights).
    - Intrabar target weights are of ``equity`` (the book's value at the previous close: what the
      strategy knew when it placed them). Units: ``size`` in the side's direction.
    - No fill on a bar with zero volume; ``participation`` caps the units traded per symbol and bar
      at that fraction of the bar's volume (a quantity order's unfilled rest keeps resting).
    - Long-only assets (``long_only_mask``) never go below 0 units. Every fill pays the one-way
      cost ``fees`` (commission + slippage, ``simulator.fee_rates``) on its notional, from cash.

    Args:
        book: the live orders ``[A, K]`` (resting ones merged with those placed at the last close).
        cash, positions: the book before the bar (``positions [A]`` in units).
        bar: ``(open, high, low, close, volume)``, each ``[A]``.
        fees: ``[A]`` one-way cost fractions; long_only: bool ``[A]``.
        equity: the book's value at the previous close.
        intrabar: ``conservative`` or ``optimistic``.
        participation: max fraction of the bar's volume traded per symbol (None: no cap).
    Returns:
        OrderFill.
    """
    if intrabar not in INTRABAR_RULES:
        raise ValueError(f"intrabar must be one of {INTRABAR_RULES}, got {intrabar!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        return _fill_orders(book, cash, positions, bar, fees, long_only, equity, intrabar, participation)


def _fill_orders(book, cash, positions, bar, fees, long_only, equity, intrabar, participation) -> OrderFill:
    o, h, lo, c, vol = (np.asarray(x, dtype=np.float64) for x in bar)
    pos0 = np.asarray(positions, dtype=np.float64)
    A, K = book.kind.shape
    cap = np.inf if participation is None else participation * vol
    room0 = np.where(vol == 0, 0.0, np.where(np.isfinite(cap), cap, np.inf))
    live = (book.kind == LIMIT) | (book.kind == STOP) | (book.kind == MOO)
    if live.any():
        # Both paths in one batch: rows [0, A) go open -> high -> low -> close, rows [A, 2A) via the low first.
        two = lambda x: np.concatenate([x, x])  # noqa: E731
        book2 = Orders(*(two(getattr(book, f)) for f in ("kind", "side", "price", "size", "sizing", "tif")))
        path = np.stack([two(o), np.concatenate([h, lo]), np.concatenate([lo, h]), two(c)])
        both = _run_path(path, book2, two(live), two(pos0), equity, two(fees), two(long_only), two(room0))
        hl = tuple(x[:A] for x in both)
        lh = tuple(x[A:] for x in both)
        v_hl, v_lh = hl[2] + hl[3] * c, lh[2] + lh[3] * c
        diff = np.abs(v_lh - v_hl)
        decided = diff > 1e-9 * max(abs(equity), 1e-300)
        better_lh = v_lh > v_hl
        use_lh = decided & (better_lh if intrabar == "optimistic" else ~better_lh)
        qty = np.where(use_lh[:, None], lh[0], hl[0])
        px = np.where(use_lh[:, None], lh[1], hl[1])
        cash_d, pos, room = (np.where(use_lh, x, y) for x, y in zip(lh[2:], hl[2:], strict=True))
        gap = np.where(decided, diff, 0.0)
    else:
        qty, px = np.zeros((A, K)), np.full((A, K), np.nan)
        cash_d, pos, room = np.zeros(A), pos0.copy(), room0.copy()
        decided, gap = np.zeros(A, dtype=bool), np.zeros(A)
    costs_intra = float(np.sum(np.abs(qty) * np.nan_to_num(px) * fees[:, None]))
    equity_close = cash + float(np.sum(cash_d)) + float(np.sum(pos * c))
    close_cost = np.zeros(A)
    for k in np.flatnonzero((book.kind == MOC).any(0)):
        sl = slice(k, k + 1)
        slot = Orders(*(getattr(book, f)[:, sl] for f in ("kind", "side", "price", "size", "sizing", "tif")))
        q = _order_qty(slot, c[:, None], pos, equity_close, long_only, room)[:, 0]
        q = np.where(book.kind[:, k] == MOC, q, 0.0)
        hit = q != 0
        qty[hit, k], px[hit, k] = q[hit], c[hit]
        pos = pos + q
        fee = np.abs(q) * c * fees
        cash_d = cash_d - (q * c + fee)
        close_cost += fee
        room = room - np.abs(q)
    filled = qty != 0
    left = np.where(book.sizing == QTY, book.size - np.abs(qty), 0.0)
    keep = (book.kind != NONE) & (~filled | (left > DUST * np.maximum(book.size, 1e-300)))
    rest = Orders(
        np.where(keep, book.kind, NONE).astype(np.int8),
        book.side,
        book.price,
        np.where(filled & (book.sizing == QTY), left, book.size),
        book.sizing,
        book.tif,
    )
    return OrderFill(
        qty=qty,
        price=px,
        cash=cash + float(np.sum(cash_d)),
        positions=pos,
        costs_intrabar=costs_intra,
        costs_close=float(np.sum(close_cost)),
        equity_before_close=equity_close,
        decided=decided,
        gap=gap,
        book=rest,
    )
