"""``mqc trade``: the trading loop (paper by default) and its ledger views."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from mqc.commands import _options as o
from mqc.commands._console import info, out, print_json, state, want_json, warn
from mqc.commands._options import split_list

app = typer.Typer(
    help="Trade a strategy bar by bar (paper broker by default), with a crash-safe ledger.",
    invoke_without_command=True,
)

LIVE = o.Flag(("--live",), "Real money: needs live = true in the profile's [trade] table too.", default=False)
FETCH = o.Flag(
    ("--fetch",),
    "Each bar, fetch the new bars from yfinance, ccxt or alpaca into the catalog first (none: off; [trade] fetch).",
)
LedgerOpt = typer.Option(None, "--ledger", help="Ledger file (default: <runs dir>/trade/<broker>/ledger.db).")


def _trade_cfg(**flags: Any) -> Any:
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.trade.config import TradeConfig

    return resolve_with_profile(TradeConfig, state().profile, flags=flags).value


def _ledger(path: str | None, cfg: Any) -> Path:
    from mqc.core.trade.runner import default_ledger

    return Path(path).expanduser() if path else default_ledger(cfg.broker)


@app.callback()
def trade(
    ctx: typer.Context,
    checkpoint: str = o.CHECKPOINT(help="Trade a trained policy's target weights (run dir, file or 'latest')."),
    strategy: str = o.STRATEGY(help="Forecast-driven strategy (maxdiff, simple, ...)."),
    only: str = typer.Option(
        None, "--only", help="--strategy: this forecaster for every symbol (naive, ewma-vol, chronos2, ...)."
    ),
    model_path: str = o.MODEL_PATH(help="--strategy: model weights (Chronos, Kronos): local dir or cached HF id."),
    refit_every: int = o.REFIT_EVERY(help="--strategy: bars between walk-forward re-fits (replays)."),
    fit_window: int = o.FIT_WINDOW(help="--strategy: trailing bars per fit (0: the strategy's defaults)."),
    symbols: str = o.SYMBOLS(help="Comma-separated symbols (default: [trade] symbols, else the checkpoint's)."),
    paper: bool = typer.Option(False, "--paper", help="The local paper broker (the default broker)."),
    broker: str = typer.Option(None, "--broker", help="paper or alpaca (default: [trade] broker)."),
    live: bool = LIVE(),
    once: bool = typer.Option(False, "--once", help="Decide the latest closed bar and exit (for cron)."),
    replay: str = typer.Option(
        None,
        "--replay",
        help="START:END (dates, e.g. 2024-01-02:2024-06-28) - drive the loop over stored bars with a simulated clock.",
    ),
    data_root: str = o.DATA_ROOT(help="Folder of per-symbol bars (re-read every bar) instead of the catalog."),
    timeframe: str = o.TIMEFRAME(help="Bar size traded: 1d, 1h, ... (--strategy; a checkpoint trades its own)."),
    fetch: str = FETCH(),
    ledger: str = LedgerOpt,
    on_exit: str = typer.Option(None, "--on-exit", help="Open orders on Ctrl-C / SIGTERM: cancel or leave."),
    resume: bool = typer.Option(False, "--resume", help="Trade again after a kill switch stopped the loop."),
    json_out: bool = o.JSON(),
) -> None:
    """Every bar: update bars, decide, check risk, record the intent, send, record the fills.

    Examples: mqc trade --paper --checkpoint latest --once;
    mqc trade --paper --strategy maxdiff --only ewma-vol --symbols AAPL,MSFT --once
    """
    if ctx.invoked_subcommand is not None:
        return
    import signal
    import threading

    from mqc.core.data.config import DataConfig
    from mqc.core.errors import UsageError
    from mqc.core.profiles import resolve_with_profile
    from mqc.core.trade.runner import run_trade

    if strategy is None and checkpoint is None and only is not None:
        strategy = "maxdiff"  # `mqc trade --paper --only chronos2`: the MaxDiff strategy on that forecaster
    if (checkpoint is None) == (strategy is None):
        raise UsageError(
            "give one of --checkpoint RUN (a trained policy) or --strategy NAME (orders on forecasts)",
            hint="mqc trade --paper --strategy maxdiff --only naive --symbols AAPL --once",
        )
    if strategy is None and any(v is not None for v in (only, model_path, refit_every, fit_window)):
        raise UsageError("--only / --model-path / --refit-every / --fit-window apply to --strategy only")
    if paper and broker not in (None, "paper"):
        raise UsageError("--paper and --broker alpaca contradict each other")
    cfg = _trade_cfg(symbols=split_list(symbols), broker="paper" if paper else broker, on_exit=on_exit, fetch=fetch)
    data = resolve_with_profile(DataConfig, state().profile, flags=dict(data_root=data_root, timeframe=timeframe)).value
    decider = None
    if strategy is not None:
        from mqc.core.market.config import MarketConfig
        from mqc.core.trade.order_decide import default_symbols, order_decider

        syms = tuple(s.upper() for s in cfg.symbols)
        if not syms:  # the profile's [trade] symbols, else every catalog symbol at the bar size
            syms = default_symbols(data.data_root, data.timeframe)
            if syms:
                info(f"symbols: {', '.join(syms)} (the catalog's {data.timeframe} symbols; --symbols to choose)")
        decider = order_decider(
            strategy,
            syms,
            data.timeframe,
            resolve_with_profile(MarketConfig, state().profile).value,
            only=only,
            model_path=model_path,
            order_flags=dict(refit_every=refit_every, fit_window=fit_window),
            profile=state().profile,
        )
    from mqc.core.trade.feed import bar_feed

    feed = None if replay else bar_feed(cfg.fetch, data.data_root, state().profile)
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def heartbeat(o: Any) -> None:
        if not state().quiet:
            eq = "" if o.equity != o.equity else f" equity {o.equity:,.2f}"
            why = f" - {o.message}" if o.message else ""
            info(f"{o.bar} {o.status}: {o.orders} order(s), {o.rejected} rejected{eq}{why}")

    try:
        res = run_trade(
            cfg,
            data,
            checkpoint,
            decider=decider,
            timeframe=timeframe,
            ledger_path=Path(ledger).expanduser() if ledger else None,
            live=live,
            once=once,
            replay_range=replay,
            resume=resume,
            stop=stop,
            heartbeat=None if replay and want_json(json_out) else heartbeat,
            warn=warn,
            feed=feed,
        )
    except KeyboardInterrupt:
        stop.set()
        info("stopped (Ctrl-C)")
        raise typer.Exit(130) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    result = {"ledger": str(res.ledger), "bars": [vars(o) for o in res.outcomes]}
    if res.replay is not None:
        result["equity"] = [float(x) for x in res.replay.equity]
    if want_json(json_out):
        print_json(result)
    else:
        out.print(f"ledger: {res.ledger}")
        if len(res.outcomes) > 1:
            info(_summary(res.outcomes))


def _summary(outcomes: list[Any]) -> str:
    """One line over a run's bars: how each ended, orders, risk rejections, last equity."""
    counts: dict[str, int] = {}
    for bar in outcomes:
        counts[bar.status] = counts.get(bar.status, 0) + 1
    ends = ", ".join(f"{n} {k}" for k, n in counts.items())
    orders, rejected = sum(b.orders for b in outcomes), sum(b.rejected for b in outcomes)
    eq = next((b.equity for b in reversed(outcomes) if b.equity == b.equity), None)
    line = f"{len(outcomes)} bars ({ends}): {orders} order(s), {rejected} rejected by the risk limits"
    line += "" if not rejected else " (reasons: mqc trade status)"
    return line + ("" if eq is None else f"; equity {eq:,.2f}")


def _show(rows: Any, json_out: bool, title: str) -> None:
    if want_json(json_out):
        print_json(rows)
        return
    from rich.table import Table

    if isinstance(rows, dict):
        for k, v in rows.items():
            if k != "recent":
                out.print(f"{k}: {v}")
        return
    if not rows:
        out.print(f"{title}: none")
        return
    t = Table(title=title)
    for col in rows[0]:
        t.add_column(col)
    for r in rows:
        t.add_row(*[f"{v:,.6g}" if isinstance(v, float) else str(v) for v in r.values()])
    out.print(t)


@app.command("status")
def status(ledger: str = LedgerOpt, json_out: bool = o.JSON()) -> None:
    """Broker, last bar, equity, cash, open orders, whether a kill switch halted trading."""
    from mqc.core.trade import views

    _show(views.status(_ledger(ledger, _trade_cfg())), json_out, "status")


@app.command("positions")
def positions(ledger: str = LedgerOpt, json_out: bool = o.JSON()) -> None:
    """Positions derived from the ledger's fills, at the last close."""
    from mqc.core.trade import views

    _show(views.positions(_ledger(ledger, _trade_cfg())), json_out, "positions")


@app.command("orders")
def orders(
    ledger: str = LedgerOpt,
    open_only: bool = typer.Option(False, "--open", help="Only orders not yet final."),
    json_out: bool = o.JSON(),
) -> None:
    """Every order with its client order id and state."""
    from mqc.core.trade import views

    _show(views.orders(_ledger(ledger, _trade_cfg()), open_only=open_only), json_out, "orders")


@app.command("history")
def history(ledger: str = LedgerOpt, json_out: bool = o.JSON()) -> None:
    """Equity per bar, before and after its orders."""
    from mqc.core.trade import views

    rows = [{"bar": r["bar"], "pre": r["pre"], "post": r["post"]} for r in views.history(_ledger(ledger, _trade_cfg()))]
    _show(rows, json_out, "equity")


@app.command("export")
def export(
    out_path: str = typer.Argument(..., help="Output file: .csv, else JSON lines."),
    ledger: str = LedgerOpt,
) -> None:
    """Write every ledger event to a file."""
    from mqc.core.trade import views

    out.print(str(views.export(_ledger(ledger, _trade_cfg()), Path(out_path).expanduser())))


@app.command("flatten")
def flatten(ledger: str = LedgerOpt, live: bool = LIVE(), json_out: bool = o.JSON()) -> None:
    """Close every position now (orders recorded in the ledger before they are sent)."""
    from mqc.core.trade.runner import flatten_ledger

    cfg = _trade_cfg()
    states = flatten_ledger(cfg, _ledger(ledger, cfg), live=live)
    _show([{"client_order_id": s.client_order_id, "status": s.status} for s in states], json_out, "flatten orders")
