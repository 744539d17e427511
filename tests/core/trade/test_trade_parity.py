"""``--replay`` drives the real loop; its equity equals ``mqc backtest --checkpoint`` on the same bars."""

from __future__ import annotations

import numpy as np

from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.runner import run_checkpoint_backtest
from mqc.core.data.config import DataConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import checkpoint_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, replay

START, END = "2015-06-01", "2015-09-30"


def _replay(run, tmp_path, *, batch=True, name="ledger"):
    decider = checkpoint_decider(run)
    cfg = TradeConfig(capital=250_000.0)
    path = tmp_path / name / "ledger.db"
    session = open_session(cfg, decider, path, open_broker(cfg, path, decider.market))
    return session, replay(session, load_history(decider, DataConfig()), START, END, batch=batch)


def test_replay_equity_equals_the_backtest(tiny_run, tmp_path):
    report = run_checkpoint_backtest(
        tiny_run, backtest_cfg=BacktestConfig(split="all", start=START, end=END), write=False
    )
    session, res = _replay(tiny_run, tmp_path)
    bt = report.result
    assert len(res.equity) == len(bt.timestamps) > 50
    np.testing.assert_array_equal(res.equity, 250_000.0 * bt.equity)  # equality, not closeness
    targets = [e["data"]["targets"] for e in session.ledger.events("decision")]
    np.testing.assert_array_equal(np.array([[t["SYN0"], t["SYN1"]] for t in targets]), bt.target_weights)
    # every rebalance of the backtest is one filled order per symbol traded
    traded = int((np.abs(bt.trades) > 0).sum())
    fills = session.ledger.events("fill")
    assert len(fills) == traded
    # positions and cash derived from the ledger's events agree with the broker's equity
    last = session.ledger.last_prices()
    value = session.ledger.cash() + sum(q * last[s] for s, q in session.ledger.positions().items())
    assert abs(value - res.equity[-1]) < 1e-6 * res.equity[-1]


def test_batched_and_bar_by_bar_decisions_are_equal(tiny_run, tmp_path):
    _, a = _replay(tiny_run, tmp_path, batch=True, name="a")
    _, b = _replay(tiny_run, tmp_path, batch=False, name="b")
    # the same decisions: a policy run over fewer bars rounds its float32 features differently in
    # the last digits (measured ~1e-11 relative on equity), never more
    np.testing.assert_allclose(a.equity, b.equity, rtol=1e-9, atol=0)


def test_replay_again_resumes_and_changes_nothing(tiny_run, tmp_path):
    session, first = _replay(tiny_run, tmp_path)
    n_events = len(session.ledger.events())
    session2, again = _replay(tiny_run, tmp_path)
    assert {o.status for o in again.outcomes} == {"skipped"}
    assert len(session2.ledger.events()) == n_events
    np.testing.assert_array_equal(first.equity, again.equity)
