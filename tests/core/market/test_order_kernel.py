"""The compiled order kernel (``fill_kernel``) against the numpy ``fill_orders`` and the per-order reference."""

from __future__ import annotations

import numpy as np
import pytest
from test_order_fills import _random_bar, _random_book, reference_fill

from mqc.core.errors import ConfigError
from mqc.core.market import fill_kernel, ledger
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import fill_orders
from mqc.core.market.ledger import simulate_orders
from mqc.core.market.orders import BAR, DAY, GTC, LIMIT, MOC, NONE, Orders

needs_numba = pytest.mark.skipif(not fill_kernel.HAVE_NUMBA, reason="numba not installed (extra 'fast')")


def _kernel_bar(book, cash, pos, bar, fees, long_only, equity, intrabar, participation, compiled):
    """One bar through the kernel's functions; ``compiled=False`` runs their plain-Python bodies."""
    fb = fill_kernel.fill_bar if compiled else getattr(fill_kernel.fill_bar, "py_func", fill_kernel.fill_bar)
    ca = fill_kernel.close_auction if compiled else getattr(fill_kernel.close_auction, "py_func", None)
    ca = ca or fill_kernel.close_auction
    A, K = book.kind.shape
    out = (np.zeros((A, K)), np.full((A, K), np.nan), np.zeros((A, K)), np.full((A, K), np.nan), np.empty((3, 3, K)))
    o, h, lo, c, vol = (np.asarray(v, dtype=np.float64) for v in bar)
    part = np.nan if participation is None else participation
    cash_d, p, room, decided, gap = fb(
        book.kind, book.side, book.price, book.size, book.sizing, o, h, lo, c, vol, pos, fees, long_only,
        equity, intrabar == "optimistic", part, out,
    )  # fmt: skip
    eq_close = cash + float(np.sum(cash_d)) + float(np.sum(p * c))
    qty, px = out[0], out[1]
    ca(book.kind, book.side, book.size, book.sizing, c, p, room, cash_d, fees, long_only, eq_close, qty, px)
    return qty, px, p, cash + float(np.sum(cash_d)), decided, gap, eq_close


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=needs_numba), False])
@pytest.mark.parametrize("intrabar", ["conservative", "optimistic"])
@pytest.mark.parametrize("participation", [None, 0.5])
def test_kernel_bar_equals_fill_orders_and_the_reference_exactly(compiled, intrabar, participation):
    rng = np.random.default_rng(11)
    A, K = 40, 4
    for _ in range(25 if compiled else 6):
        bar = _random_bar(rng, A)
        book = _random_book(rng, A, K, bar[0])
        pos = rng.uniform(-2e-3, 4e-3, A)
        long_only = rng.random(A) < 0.3
        pos = np.where(long_only, np.abs(pos), pos)
        fees = rng.uniform(0, 2e-3, A)
        cash, equity = 0.4, 0.9
        q, p, pos_k, cash_k, dec, gap, eq_close = _kernel_bar(
            book, cash, pos, bar, fees, long_only, equity, intrabar, participation, compiled
        )
        f = fill_orders(book, cash, pos, bar, fees, long_only, equity, intrabar=intrabar, participation=participation)
        # bit for bit: every per-symbol figure (the kernel adds cash over symbols in the same np.sum here)
        np.testing.assert_array_equal(q, f.qty)
        np.testing.assert_array_equal(p, f.price)
        np.testing.assert_array_equal(pos_k, f.positions)
        np.testing.assert_array_equal(dec, f.decided)
        np.testing.assert_array_equal(gap, f.gap)
        assert cash_k == f.cash and eq_close == f.equity_before_close
        rq, rp, rpos, rcash, rdec, _ = reference_fill(
            book, cash, pos, bar, fees, long_only, equity, intrabar, participation
        )
        np.testing.assert_array_equal(q, rq)
        np.testing.assert_array_equal(p, rp)
        np.testing.assert_array_equal(dec, rdec)


def _random_backtest(rng, T=60, A=12, K=3):
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (T, A)), 0))
    o = c * np.exp(rng.normal(0, 0.01, (T, A)))
    h = np.maximum(o, c) * np.exp(np.abs(rng.normal(0, 0.01, (T, A))))
    lo = np.minimum(o, c) * np.exp(-np.abs(rng.normal(0, 0.01, (T, A))))
    vol = np.where(rng.random((T, A)) < 0.05, 0.0, rng.uniform(1e-3, 2e-2, (T, A)))
    x = np.stack([o, h, lo, c, vol], -1)
    orders = Orders.empty(T, A, K)
    for t in range(T):
        orders_t = _random_book(rng, A, K, c[t])
        for f in ("kind", "side", "price", "size", "sizing"):
            getattr(orders, f)[t] = getattr(orders_t, f)
    orders.tif[:] = rng.choice([BAR, DAY, GTC], size=(T, A, K), p=[0.5, 0.25, 0.25])
    orders.kind[rng.random((T, A, K)) < 0.3] = NONE  # resting orders carry on under empty slots
    ts = np.datetime64("2024-01-01T00", "ns") + np.arange(T) * np.timedelta64(6, "h")  # 4 bars a day
    no_trade = rng.random((T, A)) < 0.05
    return x, ts, orders, no_trade


@needs_numba
@pytest.mark.parametrize("intrabar", ["conservative", "optimistic"])
@pytest.mark.parametrize("participation", [None, 0.3])
def test_compiled_backtest_equals_the_numpy_loop(intrabar, participation):
    rng = np.random.default_rng(5)
    classes = ["crypto"] * 4 + ["equity"] * 8
    market = MarketConfig(allow_short=True, financing_rate=0.07, borrow_rate=0.03, cash_rate=0.02)
    for _ in range(4):
        x, ts, orders, no_trade = _random_backtest(rng)
        kw = dict(intrabar=intrabar, participation=participation, no_trade=no_trade)
        a = simulate_orders(x, ts, orders, classes, market, engine="numba", **kw)
        b = simulate_orders(x, ts, orders, classes, market, engine="numpy", **kw)
        assert (b.fill_qty != 0).sum() > 50 and b.decided.any()  # the draw exercises fills and the rule
        assert ((b.orders.kind != NONE) & (b.orders.tif != BAR)).any()
        np.testing.assert_array_equal(a.fill_kind, b.fill_kind)
        np.testing.assert_array_equal(a.decided, b.decided)
        for name in ("net_returns", "costs", "financing", "turnover", "weights", "trades", "gap"):
            np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-12, err_msg=name)
        np.testing.assert_allclose(a.fill_qty, b.fill_qty, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(a.fill_price, b.fill_price, rtol=1e-12, atol=0)
        np.testing.assert_array_equal(np.isnan(a.fill_limit), np.isnan(b.fill_limit))
        assert not (x[1:, :, 4][(a.fill_kind[1:] != 0).any(-1)] == 0).any()  # nothing fills on zero volume
        assert not a.fill_kind[1:][no_trade[1:]].any()
        crypto_units = np.cumsum(a.fill_qty[:, :4].sum(-1), 0)
        assert (crypto_units >= -1e-15).all()  # crypto stays long-only


def test_engine_selection_falls_back_to_numpy_without_numba(monkeypatch):
    rng = np.random.default_rng(2)
    x, ts, orders, _ = _random_backtest(rng, T=20, A=3, K=2)
    ref = simulate_orders(x, ts, orders, ["equity"] * 3, MarketConfig(), engine="numpy")
    monkeypatch.setattr(fill_kernel, "HAVE_NUMBA", False)
    monkeypatch.setattr(ledger, "_simulate_compiled", lambda *a, **k: pytest.fail("kernel used without numba"))
    auto = simulate_orders(x, ts, orders, ["equity"] * 3, MarketConfig())
    np.testing.assert_array_equal(auto.net_returns, ref.net_returns)
    with pytest.raises(ConfigError, match="mqc\\[fast\\]|needs numba"):
        simulate_orders(x, ts, orders, ["equity"] * 3, MarketConfig(), engine="numba")
    with pytest.raises(ConfigError, match="engine must be one of"):
        simulate_orders(x, ts, orders, ["equity"] * 3, MarketConfig(), engine="cuda")


@needs_numba
def test_auto_engine_is_the_kernel_when_numba_is_installed(monkeypatch):
    rng = np.random.default_rng(3)
    x, ts, orders, _ = _random_backtest(rng, T=20, A=3, K=2)
    calls = []
    real = ledger._simulate_compiled
    monkeypatch.setattr(ledger, "_simulate_compiled", lambda *a, **k: calls.append(1) or real(*a, **k))
    simulate_orders(x, ts, orders, ["equity"] * 3, MarketConfig())
    assert calls == [1]


@pytest.mark.parametrize("use_numba", [pytest.param(True, marks=needs_numba), False])
def test_fast_order_check_agrees_with_the_detailed_one(monkeypatch, use_numba):
    from mqc.core.errors import DataError

    monkeypatch.setattr(fill_kernel, "HAVE_NUMBA", use_numba)
    rng = np.random.default_rng(4)
    good = _random_book(rng, 6, 3, np.full(6, 100.0))
    assert good._plausible()
    good.check()
    for field, value in (("price", np.nan), ("price", -1.0), ("size", np.inf), ("side", 0), ("kind", 9), ("tif", 5)):
        bad = good.copy()
        bad.kind[2, 1], bad.side[2, 1], bad.sizing[2, 1] = LIMIT, 1, 0
        bad.price[2, 1], bad.size[2, 1] = 100.0, 1.0
        getattr(bad, field)[2, 1] = value
        assert not bad._plausible(), field
        with pytest.raises(DataError):
            bad.check()
    moc = Orders.empty(2, 1)
    moc.set((0, 0), kind=MOC, side=0, size=0.0)
    assert moc._plausible()
