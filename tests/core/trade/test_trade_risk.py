"""Risk limits: rejected orders are recorded with their reason and never sent; kill switches flatten
and stop; the stale-data guard sends nothing on old bars; the calendar schedules the next bar."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mqc.core.data.config import DataConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import checkpoint_decider
from mqc.core.trade.loop import trade_bar
from mqc.core.trade.runner import load_history, next_bar_close, open_broker, open_session, replay


def _session(run, tmp_path, cfg):
    d = checkpoint_decider(run)
    path = tmp_path / "ledger.db"
    return open_session(cfg, d, path, open_broker(cfg, path, d.market)), load_history(d, DataConfig())


def test_max_position_rejects_and_records(tiny_run, tmp_path):
    session, panel = _session(tiny_run, tmp_path, TradeConfig(max_position=0.5))
    replay(session, panel, "2015-07-01", "2015-07-31")
    targets = [e["data"]["targets"] for e in session.ledger.events("decision")]
    over = sum(abs(w) > 0.5 for t in targets for w in t.values())
    rejects = session.ledger.events("risk_reject")
    assert over > 0 and len(rejects) == over
    assert all(r["data"]["reason"].startswith("max_position") for r in rejects)
    sent = {o.client_order_id for o in session.ledger.orders()}
    assert not sent & {r["client_order_id"] for r in rejects}  # never became an order
    assert all(session.broker.order(r["client_order_id"]) is None for r in rejects)


def test_max_orders_per_bar(tiny_run, tmp_path):
    session, panel = _session(tiny_run, tmp_path, TradeConfig(max_orders_per_bar=1))
    replay(session, panel, "2015-07-01", "2015-07-10")
    for bar in {o.bar for o in session.ledger.orders()}:
        assert len(session.ledger.orders(bar=bar)) <= 1


def test_drawdown_kill_switch_flattens_and_stops(tiny_run, tmp_path):
    session, panel = _session(tiny_run, tmp_path, TradeConfig(max_drawdown=0.002))
    res = replay(session, panel, "2015-06-01", "2015-09-30")
    assert res.outcomes[-1].status == "killed"
    assert session.ledger.events("kill") and session.ledger.events("flatten")
    assert session.ledger.positions() == {}  # flat
    n = len(session.ledger.orders())
    again = replay(session, panel, "2015-06-01", "2015-09-30")  # still halted: nothing new
    assert {o.status for o in again.outcomes} <= {"skipped", "killed"}
    assert len(session.ledger.orders()) == n


def test_stale_bars_send_nothing(tiny_run, tmp_path):
    session, panel = _session(tiny_run, tmp_path, TradeConfig())
    last = int(np.asarray(panel.timestamps)[-1].astype("datetime64[ns]").astype(np.int64))
    out = trade_bar(session, panel, None, now_ns=last + 10 * 86_400 * 10**9)
    assert out.status == "stale"
    assert session.ledger.orders() == [] and session.ledger.events("stale")
    fresh = trade_bar(session, panel, None, now_ns=last + 86_400 * 10**9)
    assert fresh.status == "done"


def test_next_bar_close_follows_the_calendar():
    ns = lambda s: pd.Timestamp(s, tz="UTC").value  # noqa: E731
    # Friday 2024-03-29 is Good Friday (NYSE closed): after Thursday's close the next is Monday's
    assert next_bar_close(ns("2024-03-28"), 86_400, "XNYS", ns("2024-03-28 21:00")) == ns("2024-04-01 20:00")
    # the day after Thanksgiving closes early (13:00 New York = 18:00 UTC)
    assert next_bar_close(ns("2024-11-28"), 86_400, "XNYS", ns("2024-11-29 12:00")) == ns("2024-11-29 18:00")
    # crypto: 24/7, the next hour boundary
    assert next_bar_close(ns("2024-03-30 10:00"), 3600, "24/7", ns("2024-03-30 10:20")) == ns("2024-03-30 11:00")
