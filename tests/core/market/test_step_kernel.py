"""The compiled one-bar step (``step_kernel``) against the numpy path of ``fills.step``, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.errors import ConfigError
from mqc.core.market import fills, step_kernel
from mqc.core.market.config import MarketConfig
from mqc.core.market.fills import step
from mqc.core.market.simulator import fee_rates

needs_numba = pytest.mark.skipif(not step_kernel.HAVE_NUMBA, reason="numba not installed (extra 'fast')")

MARKETS = [
    MarketConfig(),
    MarketConfig(equity_fee_bps=3.0, crypto_fee_bps=12.0, slippage_bps=2.0, financing_rate=0.07, cash_rate=0.02),
    MarketConfig(max_gross_leverage=2.0, max_overnight_leverage=1.0, financing_rate=0.05, cash_rate=0.01),
    MarketConfig(allow_short=True, max_gross_leverage=2.0, max_overnight_leverage=1.5, borrow_rate=0.03),
    MarketConfig(allow_short=True, crypto_long_only=False, max_gross_leverage=3.0, max_overnight_leverage=1.0),
]


def _same_bits(a, b, what: str, signs: bool = True) -> None:
    a, b = np.asarray(a), np.asarray(b)
    np.testing.assert_array_equal(a, b, err_msg=what)
    if signs:
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b), err_msg=f"{what}: sign")


def _case(rng: np.random.Generator, n: int, A: int):
    """A random batch: softmax rows (at the cap), wide rows (over it), shorts, zero and NaN rows, held
    assets (a NaN target at some), per-book or one ``dt`` / ``overnight``."""
    classes = tuple(rng.choice(["equity", "crypto"], A))
    logits = rng.uniform(-5, 5, (n, A))
    z = np.exp(logits - logits.max(-1, keepdims=True))
    soft = z / z.sum(-1, keepdims=True)
    wide = rng.normal(0.05, 0.5, (n, A)) * rng.choice([0.2, 1.0, 4.0], (n, 1))
    targets = np.where(rng.random((n, 1)) < 0.5, soft, wide)
    if n >= 4:
        targets[0] = 0.0
        targets[1] = -np.abs(targets[1])
        targets[2, rng.integers(A)] = np.nan  # traded, not held: NaN flows through the whole row
        targets[3, rng.integers(A)] = -np.nan
    hold = [None, np.zeros((n, A), dtype=bool), rng.random((n, A)) < 0.2][rng.integers(3)]
    if hold is not None and n >= 6:
        hold[5] = True  # a row held entirely
        targets[4] = np.where(hold[4], np.nan, targets[4])  # NaN targets at held assets are ignored
    book = rng.normal(0.03, 0.3, (n, A)) * (rng.random((n, 1)) < 0.8)  # some books all cash
    returns = rng.normal(0.0, 0.02, (n, A))
    dt = rng.uniform(0, 0.01, n) if rng.random() < 0.7 else 1 / 252
    overnight = [None, bool(rng.integers(2)), rng.random(n) < 0.5][rng.integers(3)]
    return book, targets, hold, returns, dt, overnight, classes


def _check(case, market: MarketConfig, exact: bool, signs: bool = True) -> None:
    book, targets, hold, returns, dt, overnight, classes = case
    fees = fee_rates(classes, market)
    args = (book, targets, hold, returns, fees, dt, overnight, classes, market)
    got = step(*args, exact=exact, engine="numba")
    ref = step(*args, exact=exact, engine="numpy")
    _same_bits(got.weights, ref.weights, "weights", signs)
    _same_bits(got.book, ref.book, "book", signs)
    for name, value in vars(ref.bar).items():
        _same_bits(getattr(got.bar, name), value, name, signs)


@needs_numba
@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("exact", [True, False])
def test_kernel_step_equals_the_numpy_step_bit_for_bit(market, exact) -> None:
    """Every output of the compiled step equals the numpy path's, sign of zero (and of NaN) included, on
    random batches over every branch: long only / long-short, crypto long only, intraday vs overnight
    caps, held assets, costs and financing, NaN targets, zero rows and books, and row lengths through each
    of numpy's summation regimes (under 8, up to 128 with a rest, over 128)."""
    rng = np.random.default_rng(2026)
    for trial in range(24):
        n = [64, 7, 1, 33][trial % 4]
        A = [30, 3, 10, 8, 17, 130][trial % 6]
        _check(_case(rng, n, A), market, exact)


@needs_numba
def test_kernel_step_takes_empty_batches_and_views() -> None:
    """No book (0 rows) and non-contiguous inputs (a column slice, as a decoder with a cash slot gives)."""
    rng = np.random.default_rng(3)
    market = MARKETS[3]
    for n in (0, 5):
        book, targets, hold, returns, dt, overnight, classes = _case(rng, n, 9)
        wide = np.concatenate([targets, rng.normal(size=(n, 1))], axis=1)[:, :9]
        _check((book, wide, hold, returns, dt, overnight, classes), market, True)


def test_kernel_body_without_numba_equals_the_numpy_step(monkeypatch) -> None:
    """The kernel's plain-Python body gives the same numbers (the rule, checked without the compiler; numpy
    scalars in plain Python do not keep a NaN's sign as compiled code does, so signs are not compared)."""
    py = getattr(step_kernel.step_batch, "py_func", step_kernel.step_batch)
    monkeypatch.setattr(step_kernel, "step_batch", py)
    monkeypatch.setattr(step_kernel, "HAVE_NUMBA", True)
    rng = np.random.default_rng(5)
    for market in (MARKETS[1], MARKETS[4]):
        for A in (5, 12):
            _check(_case(rng, 6, A), market, True, signs=False)


@needs_numba
def test_auto_engine_runs_the_kernel_on_batches_only(monkeypatch) -> None:
    import torch

    rng = np.random.default_rng(1)
    book, targets, hold, returns, dt, overnight, classes = _case(rng, 8, 6)
    fees = fee_rates(classes, MarketConfig())
    calls = []
    real = step_kernel.step_batch
    monkeypatch.setattr(step_kernel, "step_batch", lambda *a: calls.append(1) or real(*a))
    step(book, targets, hold, returns, fees, dt, overnight, classes, MarketConfig())
    assert calls == [1]
    step(book, targets, hold, returns, fees, dt, overnight, classes, MarketConfig(), engine="numpy")
    step(book[0], targets[0], None, returns[0], fees, 0.004, True, classes, MarketConfig())  # one book: numpy
    t = torch.as_tensor(np.nan_to_num(targets))
    step(torch.zeros_like(t), t, torch.zeros_like(t, dtype=torch.bool), torch.as_tensor(returns), fees, 0.004, None,
         classes, MarketConfig())  # fmt: skip
    assert calls == [1]


def test_engine_selection_falls_back_to_numpy_without_numba(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    book, targets, hold, returns, dt, overnight, classes = _case(rng, 8, 6)
    fees = fee_rates(classes, MarketConfig())
    args = (book, targets, hold, returns, fees, dt, overnight, classes, MarketConfig())
    ref = step(*args, engine="numpy")
    monkeypatch.setattr(step_kernel, "HAVE_NUMBA", False)
    monkeypatch.setattr(step_kernel, "step_batch", lambda *a: pytest.fail("kernel used without numba"))
    got = step(*args)
    np.testing.assert_array_equal(got.book, ref.book)
    with pytest.raises(ConfigError, match="needs numba") as err:
        step(*args, engine="numba")
    assert "mqc[fast]" in err.value.hint
    with pytest.raises(ConfigError, match="engine must be one of"):
        step(*args, engine="cuda")
    assert fills.ENGINES == ("auto", "numba", "numpy")


@pytest.mark.parametrize("compiled", [pytest.param(True, marks=needs_numba), False])
def test_sums_are_numpys_pairwise_sums_bit_for_bit(compiled) -> None:
    """The kernel's sums add in ``np.add.reduce``'s order for every row length (below 8, blocks of 8 with a
    rest, halves above 128): values of mixed sign and magnitude, where another order rounds differently."""
    pairwise = step_kernel.pairwise_sum if compiled else step_kernel.pairwise_sum.py_func
    colsum = step_kernel._colsum if compiled else step_kernel._colsum.py_func
    rng = np.random.default_rng(0)
    for n in (1, 5, 8, 13, 30, 64, 128, 129, 300, 1031):
        x = rng.normal(0, 1, (6, n)) * 10.0 ** rng.integers(-8, 8, (6, n))
        ref = np.add.reduce(x, -1)
        np.testing.assert_array_equal([0.0 + pairwise(row, n) for row in x], ref)
        out = np.empty(6)
        colsum(np.ascontiguousarray(x.T), out, np.empty((8, 6)))
        np.testing.assert_array_equal(out, ref)
