"""SIGKILL the loop at random points (after the intent, after the send, between fills, before the
bar is closed), restart it: no duplicate order, no lost fill, the same positions, cash and equity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mqc.core.trade.ledger import Ledger

START, END = "2015-07-01", "2015-07-31"
POINTS = ("intent", "sent", "fill", "done")

SCRIPT = (
    textwrap.dedent(
        """
    import os, signal, sys
    from mqc.core.data.config import DataConfig
    from mqc.core.trade import loop
    from mqc.core.trade.config import TradeConfig
    from mqc.core.trade.decide import checkpoint_decider
    from mqc.core.trade.runner import load_history, open_broker, open_session, replay
    from pathlib import Path

    run, ledger, point, nth = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    hits = {"n": 0}

    def crash(name):
        if name == point:
            hits["n"] += 1
            if hits["n"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    loop.crash_point = crash
    if run.startswith("strategy:"):  # an order strategy on naive forecasts (limit, market-on-close orders)
        from mqc.core.market.config import MarketConfig
        from mqc.core.trade.order_decide import order_decider

        decider = order_decider(run.split(":")[1], ("SYN0", "SYN1"), "1d", MarketConfig(allow_short=True), only="naive")
    else:
        decider = checkpoint_decider(run)
    cfg = TradeConfig()
    session = open_session(cfg, decider, ledger, open_broker(cfg, ledger, decider.market, decider=decider))
    replay(session, load_history(decider, DataConfig()), "START", "END")
    """
    )
    .replace("START", START)
    .replace("END", END)
)


def _run(script, run, ledger, point="none", nth=0):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.abspath("src"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, str(script), str(run), str(ledger), point, str(nth)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _state(path):
    led = Ledger.open(path, create=False)
    try:
        eq = [r["post"] for r in led.equity_curve()]
        orders = [(o.client_order_id, o.status) for o in led.orders()]
        return led.positions(), led.cash(), eq, orders, len(led.events("fill"))
    finally:
        led.close()


def _kill_and_restart(tiny_run, tmp_path, kills):
    script = tmp_path / "trade_once.py"
    script.write_text(SCRIPT)
    clean = _run(script, tiny_run, tmp_path / "clean" / "ledger.db")
    assert clean.returncode == 0, clean.stderr
    ledger = tmp_path / "killed" / "ledger.db"
    rng = np.random.default_rng(7)
    killed = 0
    for _ in range(kills):
        point, nth = POINTS[rng.integers(len(POINTS))], int(rng.integers(1, 6))
        res = _run(script, tiny_run, ledger, point, nth)
        if res.returncode == -signal.SIGKILL:
            killed += 1
        else:
            assert res.returncode == 0, res.stderr
    assert killed >= kills // 2  # the crash points are reached (a replay that finished kills nothing)
    final = _run(script, tiny_run, ledger)
    assert final.returncode == 0, final.stderr
    pos_a, cash_a, eq_a, orders_a, fills_a = _state(tmp_path / "clean" / "ledger.db")
    pos_b, cash_b, eq_b, orders_b, fills_b = _state(ledger)
    assert orders_b == orders_a  # the same client ids, each once, in the same states
    assert fills_b == fills_a  # no lost fill, no fill twice
    assert pos_b == pytest.approx(pos_a, rel=1e-12)
    assert cash_b == pytest.approx(cash_a, rel=1e-12)
    np.testing.assert_array_equal(eq_b, eq_a)
    broker = Ledger.open(ledger.with_name("paper-broker.db"), create=True)  # the broker's own order book
    n_broker = broker.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0]
    assert n_broker == len(orders_a)


def test_sigkill_at_random_points_then_restart_equals_an_uninterrupted_run(tiny_run, tmp_path):
    _kill_and_restart(tiny_run, tmp_path, kills=4)


@pytest.mark.slow
def test_many_sigkills(tiny_run, tmp_path):
    _kill_and_restart(tiny_run, tmp_path, kills=16)


def test_sigkill_an_order_strategy_then_restart_equals_an_uninterrupted_run(tiny_run, tmp_path):
    """The same for ``--strategy maxdiff``: its orders rest at the paper broker and fill on the next bar."""
    _kill_and_restart("strategy:maxdiff", tmp_path, kills=4)
