"""A broker outage: retries with backoff, the event recorded, the bar skipped, no crash, no order."""

from __future__ import annotations

from mqc.core.data.config import DataConfig
from mqc.core.errors import BrokerError
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import checkpoint_decider
from mqc.core.trade.runner import load_history, open_broker, open_session, replay


class Down:
    """Wraps a broker; every call fails as an outage while ``down``."""

    def __init__(self, inner):
        self.inner, self.down, self.name = inner, True, inner.name

    def __getattr__(self, item):
        attr = getattr(self.inner, item)
        if not callable(attr):
            return attr

        def call(*a, **k):
            if self.down and item in ("observe", "submit", "account", "order"):
                raise BrokerError("503 service unavailable", retryable=True)
            return attr(*a, **k)

        return call


def test_outage_skips_bars_and_trading_resumes(tiny_run, tmp_path):
    decider = checkpoint_decider(tiny_run)
    cfg = TradeConfig(retries=2)
    path = tmp_path / "ledger.db"
    broker = Down(open_broker(cfg, path, decider.market))
    session = open_session(cfg, decider, path, broker)
    sleeps = []
    session.sleep = sleeps.append
    panel = load_history(decider, DataConfig())
    res = replay(session, panel, "2015-07-01", "2015-07-03")
    assert {o.status for o in res.outcomes} == {"outage"}
    assert sleeps[:2] == [0.5, 1.0]  # exponential backoff
    assert session.ledger.orders() == [] and session.ledger.events("outage")
    broker.down = False
    res = replay(session, panel, "2015-07-06", "2015-07-10")
    assert {o.status for o in res.outcomes} == {"done"}
    assert session.ledger.events("fill")
