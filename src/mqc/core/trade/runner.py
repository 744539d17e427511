"""Sessions: open a ledger and a broker, then run the loop live (scheduled by the exchange calendar),
once (for cron), or over history with a simulated clock (``replay``)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mqc.core import paths
from mqc.core.data.config import DataConfig
from mqc.core.errors import ConfigError, DataError, LedgerError
from mqc.core.market.config import MarketConfig
from mqc.core.trade.config import TradeConfig
from mqc.core.trade.decide import Decider
from mqc.core.trade.ledger import Ledger
from mqc.core.trade.loop import BarOutcome, TradeSession, trade_bar


def default_ledger(broker: str, live: bool = False) -> Path:
    """``<runs dir>/trade/<broker>[-live]/ledger.db``: one ledger per account."""
    return paths.runs_dir() / "trade" / (f"{broker}-live" if live else broker) / "ledger.db"


def open_broker(
    cfg: TradeConfig,
    ledger_path: Path,
    market: MarketConfig,
    *,
    live: bool = False,
    durable: bool = True,
    decider: Any = None,
) -> Any:
    """The broker of ``cfg.broker`` (``live`` only when the flag and the profile both say so); for an
    order strategy's ``decider`` the paper broker keeps an order-level book of its symbols.

    Raises:
        ConfigError: live requested without ``trade.live = true`` (or with the paper broker).
    """
    check_live(cfg, live)
    if cfg.broker == "paper":
        from mqc.core.trade.paper import PaperBroker

        kw: dict[str, Any] = {}
        if decider is not None and hasattr(decider, "decide_orders"):
            kw = {"order_symbols": tuple(decider.symbols), "fill_cfg": decider.fill_cfg}
        return PaperBroker(ledger_path.with_name("paper-broker.db"), market, cfg.capital, durable=durable, **kw)
    from mqc.core.trade.alpaca import AlpacaBroker

    return AlpacaBroker.from_environment(live=live, timeout_s=cfg.timeout_s)


def check_live(cfg: TradeConfig, live: bool) -> None:
    """Live trading needs ``--live`` and ``trade.live = true`` (and a real broker).

    Raises:
        ConfigError: otherwise.
    """
    if live and not cfg.live:
        raise ConfigError(
            "--live needs live = true in the profile's [trade] table: refusing to trade real money",
            hint="mqc profile set trade.live true   (only when you mean it)",
        )
    if cfg.broker == "paper":
        if live:
            raise ConfigError("--live with the paper broker: nothing to trade live", hint='set trade.broker = "alpaca"')


def open_session(
    cfg: TradeConfig, decider: Decider, ledger_path: Path, broker: Any, *, create: bool = True, durable: bool = True
) -> TradeSession:
    """Open the ledger, bind it to this broker and (for a new paper account) book the deposit."""
    ledger = Ledger.open(ledger_path, create=create, durable=durable)
    ledger.bind(broker=broker.name, account=getattr(broker, "account_label", broker.name))
    kind = "orders" if hasattr(decider, "decide_orders") else "weights"
    have = ledger.meta("decides")
    if have is not None and have != kind:
        what = {"orders": "an order strategy (--strategy / --only)", "weights": "a checkpoint's target weights"}
        raise LedgerError(
            f"{ledger_path}: this account is traded by {what[have]}, not {what[kind]}",
            hint="give the other one its own account: --ledger PATH (e.g. --ledger runs/trade/mine/ledger.db)",
        )
    ledger.bind(decides=kind)
    if broker.name == "paper" and not ledger.events("deposit"):
        ledger.record("deposit", cash=cfg.capital, dedup="deposit:initial", data={"capital": cfg.capital})
    unknown = broker.unknown_symbols(list(decider.symbols))
    if unknown:
        raise DataError(
            f"the {broker.name} broker cannot trade {', '.join(unknown)}",
            hint="drop them from --symbols / [trade] symbols",
        )
    return TradeSession(ledger, broker, decider, cfg, account=ledger.meta("account") or broker.name)


def load_history(decider: Decider, data_cfg: DataConfig) -> Any:
    """The decider's symbols at its bar size, from the catalog or ``data_cfg.data_root``."""
    from mqc.core.data.panel import load_panel

    cfg = dataclasses.replace(data_cfg, symbols=decider.symbols, timeframe=decider.timeframe)
    panel = load_panel(config=cfg)
    if tuple(panel.symbols) != tuple(decider.symbols):
        raise DataError(
            f"the loaded bars hold {', '.join(panel.symbols)}, the strategy needs {', '.join(decider.symbols)}"
        )
    return panel


@dataclass
class ReplayResult:
    """A replay's bars, outcomes and equity (row t: after bar t's holding period, as a backtest's)."""

    ledger: Path
    outcomes: list[BarOutcome]
    equity: np.ndarray
    timestamps: np.ndarray


def parse_replay(text: str) -> tuple[str, str]:
    """``START:END`` (dates or ISO timestamps; either side may be empty)."""
    if text.count(":") == 1:
        a, b = text.split(":")
    elif " : " in text or "::" in text:
        a, b = text.replace("::", " : ").split(" : ", 1)
    else:  # ISO timestamps with colons: split at the colon between two dates
        parts = text.split(":")
        cut = next((i for i in range(1, len(parts)) if len(parts[i]) >= 10 and parts[i][4] == "-"), None)
        if cut is None:
            raise ConfigError(f"--replay {text!r}: expected START:END, e.g. 2024-01-02:2024-06-28")
        a, b = ":".join(parts[:cut]), ":".join(parts[cut:])
    return a.strip(), b.strip()


def replay(
    session: TradeSession,
    panel: Any,
    start: str | None,
    end: str | None,
    *,
    on_bar: Callable[[BarOutcome], None] | None = None,
    batch: bool = True,
) -> ReplayResult:
    """Drive the real loop over ``panel``'s bars from ``start`` to ``end`` with a simulated clock.

    A replay that was killed resumes where it stopped (finished bars are skipped by the ledger).
    ``batch``: run the policy once over the bars (rows are causal) instead of once per bar.
    """
    from mqc.core.backtest.engine import resolve_bounds

    lo, hi = resolve_bounds(panel.timestamps, start or None, end or None)
    if batch and hasattr(session.decider, "decide_orders"):
        session.decider.precompute(panel.slice(0, hi), lo)  # type: ignore[attr-defined]  # fits anchored at START
    elif batch and hasattr(session.decider, "precompute"):
        session.decider.precompute(panel.slice(0, hi))
    ts = np.asarray(panel.timestamps).astype("datetime64[ns]").astype(np.int64)
    outcomes = []
    for t in range(lo, hi):
        out = trade_bar(session, panel.slice(0, t + 1), int(ts[t + 1]) if t + 1 < hi else None)
        outcomes.append(out)
        if on_bar:
            on_bar(out)
        if out.status == "killed":
            break
    rows = {r["bar"]: r for r in session.ledger.equity_curve()}
    from mqc.core.trade.loop import bar_label

    labels = [bar_label(int(x)) for x in ts[lo:hi]]
    eq = [rows[b]["pre"] for b in labels[1:] if b in rows]
    if labels[-1] in rows:
        eq.append(rows[labels[-1]]["post"])
    return ReplayResult(session.ledger.path, outcomes, np.asarray(eq, dtype=np.float64), panel.timestamps[lo:hi])


def next_bar_close(last_ns: int, timeframe_s: int, calendar_code: str, now_ns: int) -> int:
    """When the bar after the stored ones closes (ns): the next session close for daily equity bars,
    else the next multiple of the bar length (inside a session for equities)."""
    import pandas as pd

    from mqc.core.calendar import exchange_calendar

    step = timeframe_s * 1_000_000_000
    if calendar_code == "24/7":
        return (max(now_ns, last_ns) // step + 1) * step
    cal = exchange_calendar(calendar_code)
    if timeframe_s >= 86_400:
        return int(cal.next_close(pd.Timestamp(max(now_ns, last_ns), unit="ns")).value)
    t = (max(now_ns, last_ns) // step + 1) * step
    if not cal.is_open(pd.Timestamp(t - 1, unit="ns")):
        t = int(cal.next_open(pd.Timestamp(t, unit="ns")).value) + step
    return t


def _following_close(last_ns: int, timeframe_s: int, calendar_code: str) -> int:
    """When the bar after the stored last one closes (ns)."""
    own = next_bar_close(last_ns, timeframe_s, calendar_code, last_ns)  # the stored bar's own close
    return next_bar_close(last_ns, timeframe_s, calendar_code, own)


def run_loop(
    session: TradeSession,
    load: Callable[[], Any],
    *,
    once: bool = False,
    stop: threading.Event | None = None,
    heartbeat: Callable[[BarOutcome], None] | None = None,
    calendar_code: str = "XNYS",
    settle_s: float = 5.0,
    max_bars: int | None = None,
    feed: Any = None,
    clock: Callable[[], int] = time.time_ns,
) -> list[BarOutcome]:
    """Trade live: decide the latest closed bar now (if the ledger has no decision for it), then
    after each bar closes. ``stop`` ends the loop between bars (Ctrl-C / SIGTERM).

    ``feed`` (a ``feed.BarFeed``): fetch the new bars into the catalog before each decision. A failed
    fetch is recorded (``fetch_error``) and the bar skipped; while the provider has not delivered a
    bar that has closed, the loop asks again every ``min(60 s, bar / 10)`` (within the stale limit).
    ``clock``: ns since the epoch (tests drive a simulated one).
    """
    from mqc.core.data.timeframe import parse_timeframe
    from mqc.core.trade.loop import bar_label

    stop = stop or threading.Event()
    tf_s = parse_timeframe(session.decider.timeframe)
    poll_s = min(60.0, tf_s / 10)
    outcomes: list[BarOutcome] = []
    while not stop.is_set():
        if session.ledger.events("kill") and not session.ledger.events("resume"):
            raise LedgerError(
                f"{session.ledger.path}: a kill switch stopped trading "
                f"({session.ledger.events('kill')[-1]['data']['reason']})",
                hint="check mqc trade status, then mqc trade --resume",
            )
        now = clock()
        failed = None
        if feed is not None:
            try:
                feed.update(
                    session.decider.symbols,
                    session.decider.timeframe,
                    now / 1e9,
                    lambda m: session.ledger.record("fetch_retry", data={"message": m}),
                )
            except DataError as exc:  # an outage after the retries, or a bar refused by validation
                session.ledger.record("fetch_error", bar=bar_label(now), data={"error": str(exc), "hint": exc.hint})
                failed = BarOutcome(bar_label(now), "outage", message=f"fetch failed, bar skipped: {exc}")
        panel = load()
        ts = np.asarray(panel.timestamps).astype("datetime64[ns]").astype(np.int64)
        nxt = next_bar_close(int(ts[-1]), tf_s, calendar_code, now)
        following = _following_close(int(ts[-1]), tf_s, calendar_code)
        lagging = feed is not None and failed is None and following + settle_s * 1e9 <= now
        out = failed or trade_bar(session, panel, nxt, now_ns=now)
        if not (lagging and out.status == "skipped"):  # a poll for a late bar is not a new outcome
            outcomes.append(out)
            if heartbeat:
                heartbeat(out)
        if once or out.status == "killed" or (max_bars is not None and len(outcomes) >= max_bars):
            break
        if lagging and now - following < (session.config.stale_bars + 1) * tf_s * 1e9:
            wait = poll_s  # the provider has not delivered the bar that closed: ask again soon
        else:
            wait = max(0.0, (nxt - clock()) / 1e9 + settle_s)
        stop.wait(wait)
    return outcomes


@dataclass
class TradeRun:
    """What ``run_trade`` did: the ledger, each bar's outcome and (replays) the equity curve."""

    ledger: Path
    outcomes: list[BarOutcome]
    replay: ReplayResult | None = None
    decide_s: list[float] = dataclasses.field(default_factory=list)


def run_trade(
    cfg: TradeConfig,
    data_cfg: DataConfig,
    checkpoint: str | None,
    *,
    decider: Any = None,
    ledger_path: Path | None = None,
    live: bool = False,
    once: bool = False,
    replay_range: str | None = None,
    resume: bool = False,
    stop: threading.Event | None = None,
    heartbeat: Callable[[BarOutcome], None] | None = None,
    warn: Callable[[str], None] | None = None,
    feed: Any = None,
    timeframe: str | None = None,
) -> TradeRun:
    """``mqc trade``: trade ``checkpoint``'s target weights (or an order strategy's ``decider``) live,
    once, or over ``replay_range``.

    Raises:
        ConfigError: live without the profile switch, a checkpoint of another ``timeframe``;
        DataError: other symbols, missing bars; LedgerError: a corrupt ledger or one of another account;
        BrokerError: missing keys.
    """
    from mqc.core.data.timeframe import parse_timeframe
    from mqc.core.trade.decide import checkpoint_decider

    if decider is None:
        decider = checkpoint_decider(str(checkpoint), cfg.symbols)
        if timeframe is not None and parse_timeframe(timeframe) != parse_timeframe(decider.timeframe):
            raise ConfigError(
                f"the checkpoint trades {decider.timeframe} bars, not --timeframe {timeframe}",
                hint=f"drop --timeframe, or train a checkpoint on {timeframe} bars",
            )
    if replay_range is not None and live:
        raise ConfigError("--replay with --live: a replay never sends real orders", hint="drop --live")
    if ledger_path is None:
        ledger_path = (
            paths.new_dir(paths.runs_dir() / "trade" / "replays") / "ledger.db"
            if replay_range is not None
            else default_ledger(cfg.broker, live)
        )
    if replay_range is not None and cfg.broker != "paper":
        raise ConfigError("--replay runs on the paper broker only", hint="pass --paper")
    check_live(cfg, live)
    _check_forecasters(decider)  # missing weights fail now, not at the first bar that is not stale
    if feed is not None and replay_range is None and _unstored(decider):
        # a symbol not stored yet: a first fetch brings the history to start from
        feed.update(decider.symbols, decider.timeframe, time.time(), lambda _: None)
    panel = load_history(decider, data_cfg)  # before any broker or ledger: bad data sends nothing
    for message in panel.report.warnings if warn else ():
        warn(f"data: {message}")  # e.g. a mixed crypto/equity close (look-ahead), heavy forward-filling
    Ledger.open(ledger_path).close()  # a corrupt ledger is refused before a broker is touched
    durable = replay_range is None  # a replay sends no real order: no fsync per commit
    broker = open_broker(cfg, ledger_path, decider.market, live=live, durable=durable, decider=decider)
    session = open_session(cfg, decider, ledger_path, broker, durable=durable)
    if resume:
        session.ledger.record("resume", data={"by": "mqc trade --resume"})
    if replay_range is not None:
        start, end = parse_replay(replay_range)
        res = replay(session, panel, start, end, on_bar=heartbeat)
        return TradeRun(ledger_path, res.outcomes, res, session.stats["decide_s"])
    code = "24/7" if all(c == "crypto" for c in panel.asset_classes) else "XNYS"
    outcomes: list[BarOutcome] = []
    interrupted = False
    try:
        outcomes = run_loop(
            session,
            lambda: load_history(decider, data_cfg),
            once=once,
            stop=stop,
            heartbeat=heartbeat,
            calendar_code=code,
            feed=feed,
        )
    except KeyboardInterrupt:  # Ctrl-C: leave or cancel the open orders, record the stop, re-raise
        interrupted = True
    if (interrupted or not once) and cfg.on_exit == "cancel":
        from mqc.core.trade.loop import apply_state

        for row in session.ledger.orders(open_only=True):
            state = broker.cancel(row.client_order_id)
            if state is not None:
                apply_state(session.ledger, state, row.bar)
    session.ledger.record("stop", data={"bars": len(outcomes), "interrupted": interrupted})
    if interrupted:
        raise KeyboardInterrupt
    return TradeRun(ledger_path, outcomes, None, session.stats["decide_s"])


def _check_forecasters(decider: Any) -> None:
    """Build an order strategy's forecasters once (Chronos and Kronos find their weights here).

    Raises:
        ArtifactNotFound: weights that are not on this machine (the hint names the download).
    """
    from mqc.core.forecast import base

    forecast = getattr(decider, "forecast", None)
    if forecast is None:
        return
    configs = list(forecast.values()) if isinstance(forecast, dict) else [forecast]
    for c in {repr(c): c for c in configs}.values():
        base.create(c.model, config=c)


def _unstored(decider: Any) -> bool:
    """Whether the catalog lacks any of the decider's symbols at its bar size."""
    from mqc.core.data.catalog import Catalog

    stored = {e.symbol for e in Catalog().entries(decider.timeframe)}
    return not set(decider.symbols) <= stored


def flatten_ledger(cfg: TradeConfig, ledger_path: Path, *, live: bool = False) -> list[Any]:
    """``mqc trade flatten``: close every position of the ledger's account now (at the paper
    broker's last bar; at the market for a real broker)."""
    from mqc.core.trade.broker import client_order_id
    from mqc.core.trade.loop import bar_label, flatten_account

    ledger = Ledger.open(ledger_path, create=False)
    try:
        broker = open_broker(cfg, ledger_path, MarketConfig(), live=live)
        ledger.bind(broker=broker.name)
        bars = ledger.events("mark")
        bar = bars[-1]["bar"] if bars and broker.name == "paper" else bar_label(time.time_ns())
        account = ledger.meta("account") or broker.name
        states = flatten_account(
            ledger,
            broker,
            bar,
            lambda b, s, leg: client_order_id(f"{account}|flatten", b, s, leg),
            reason="mqc trade flatten",
        )
        return states
    finally:
        ledger.close()
