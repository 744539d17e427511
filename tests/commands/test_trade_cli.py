"""``mqc trade`` through the CLI: replay, views, export, and one clear line for each bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
TINY = dict(lookback=8, horizon=4, batch_windows=2, rollout_groups=2, hidden_size=4, steps=2, eval_interval=2)


@pytest.fixture
def run_dir(synth):
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.api import train_dm
    from mqc.core.train.config import DMTrainConfig

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=300, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")
    return train_dm(DataConfig(symbols=("SYN0", "SYN1"), timeframe="1d"), MarketConfig(), DMTrainConfig(**TINY)).run_dir


def test_replay_then_views_and_export(run_dir, tmp_path):
    led = str(tmp_path / "l" / "ledger.db")
    res = runner.invoke(
        app, ["trade", "--paper", "-c", str(run_dir), "--replay", "2015-05-01:2015-06-30", "--ledger", led, "--json"]
    )
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert len(doc["equity"]) == len(doc["bars"]) > 30
    status = json.loads(runner.invoke(app, ["trade", "status", "--ledger", led, "--json"]).stdout)
    assert status["bars"] == len(doc["bars"]) and status["equity"] == doc["equity"][-1]
    assert status["open_orders"] == 0 and not status["halted"]
    orders = json.loads(runner.invoke(app, ["trade", "orders", "--ledger", led, "--json"]).stdout)
    assert orders and {o["status"] for o in orders} == {"filled"}
    assert len({o["client_order_id"] for o in orders}) == len(orders)
    pos = json.loads(runner.invoke(app, ["trade", "positions", "--ledger", led, "--json"]).stdout)
    assert {p["symbol"] for p in pos} <= {"SYN0", "SYN1"}
    res = runner.invoke(app, ["trade", "export", str(tmp_path / "ev.csv"), "--ledger", led])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "ev.csv").read_text().startswith("seq,at,bar,kind")
    res = runner.invoke(app, ["trade", "flatten", "--ledger", led, "--json"])
    assert res.exit_code == 0, res.output
    assert all(s["status"] == "filled" for s in json.loads(res.stdout))
    pos = json.loads(runner.invoke(app, ["trade", "positions", "--ledger", led, "--json"]).stdout)
    assert pos == []


def test_live_without_the_profile_switch_is_refused(run_dir, tmp_path):
    res = runner.invoke(
        app, ["trade", "--broker", "alpaca", "--live", "-c", str(run_dir), "--once", "--ledger", str(tmp_path / "x.db")]
    )
    assert res.exit_code == 1
    assert "live = true" in res.output
    assert not (tmp_path / "x.db").exists()  # nothing opened, nothing sent


def test_checkpoint_for_other_symbols(run_dir, tmp_path):
    res = runner.invoke(
        app, ["trade", "-c", str(run_dir), "--symbols", "AAPL", "--once", "--ledger", str(tmp_path / "x.db")]
    )
    assert res.exit_code == 1
    assert "the checkpoint trades SYN0, SYN1, not AAPL" in res.output


def test_corrupt_ledger_refuses_to_start(run_dir, tmp_path):
    bad = tmp_path / "ledger.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    res = runner.invoke(app, ["trade", "-c", str(run_dir), "--once", "--ledger", str(bad)])
    assert res.exit_code == 1
    assert str(bad) in res.output and "not a usable trading ledger" in res.output
    assert bad.read_bytes() == b"this is not sqlite" * 100  # left as it was


def test_neither_a_checkpoint_nor_a_strategy_names_both_ways_to_decide(run_dir):
    res = runner.invoke(app, ["trade", "--paper", "--once"])
    assert res.exit_code == 2
    assert "--checkpoint" in res.output and "--strategy" in res.output


def test_only_alone_trades_maxdiff_on_the_catalogs_symbols(synth, tmp_path):
    """What users type: `mqc trade --paper --only MODEL` (MaxDiff on that forecaster, the catalog's daily symbols)."""
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=2, n_bars=300, seed=3, timeframe="1d").items():
        cat.write(sym, df, source="test", timeframe="1d")
    res = runner.invoke(app, ["trade", "--paper", "--only", "naive", "--once", "--ledger", str(tmp_path / "l.db")])
    assert res.exit_code == 0, res.output
    assert "symbols: SYN0, SYN1 (the catalog's 1d symbols" in res.output and (tmp_path / "l.db").exists()


def test_timeframe_picks_the_bars_a_strategy_trades_and_must_match_a_checkpoints(synth, run_dir, tmp_path):
    """`mqc trade --only naive -t 1h` trades the catalog's hourly symbols; a daily checkpoint refuses `-t 1h`."""
    from mqc.core.data.catalog import Catalog

    cat = Catalog()
    for sym, df in synth(n_assets=1, n_bars=300, seed=5, timeframe="1h").items():
        cat.write("HR" + sym, df, source="test", timeframe="1h")
    led = str(tmp_path / "h.db")
    res = runner.invoke(app, ["trade", "--paper", "--only", "naive", "-t", "1h", "--once", "--ledger", led])
    assert res.exit_code == 0, res.output
    assert "symbols: HRSYN0 (the catalog's 1h symbols" in res.output
    res = runner.invoke(app, ["trade", "-c", str(run_dir), "-t", "1h", "--once", "--ledger", str(tmp_path / "x.db")])
    assert res.exit_code == 1
    assert "the checkpoint trades 1d bars, not --timeframe 1h" in res.output
    assert not (tmp_path / "x.db").exists()
    res = runner.invoke(app, ["trade", "-c", str(run_dir), "-t", "24h", "--replay", "2015-05-01:2015-05-08"])
    assert res.exit_code == 0, res.output  # the same bar size, spelt otherwise


def test_missing_ledger_for_status(tmp_path):
    res = runner.invoke(app, ["trade", "status", "--ledger", str(tmp_path / "none.db")])
    assert res.exit_code == 1
    assert "no trading ledger" in res.output


def test_once_on_a_folder_being_appended_to(run_dir, tmp_path):
    """Cron use: each --once decides the newest closed bar once; a new row in the folder is the next bar."""
    import pandas as pd

    from mqc.core.data.synth import SynthSpec, write_synth_csv

    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    start = (today - pd.Timedelta(days=150)).strftime("%Y-%m-%d")
    folder = tmp_path / "bars"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=150, start=start, seed=9), folder)  # last bar: yesterday
    for f in folder.glob("*.csv"):  # hold back the last row: "yesterday" arrives later
        lines = f.read_text().splitlines(keepends=True)
        (tmp_path / f.name).write_text(lines[-1])
        f.write_text("".join(lines[:-1]))
    led = str(tmp_path / "led" / "ledger.db")
    args = ["trade", "--paper", "-c", str(run_dir), "--once", "--data-root", str(folder), "--ledger", led, "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    (bar,) = json.loads(first.stdout)["bars"]
    assert bar["status"] == "done" and bar["orders"] >= 1
    again = runner.invoke(app, args)
    assert json.loads(again.stdout)["bars"][0]["status"] == "skipped"  # decided once
    for f in folder.glob("*.csv"):
        f.write_text(f.read_text() + (tmp_path / f.name).read_text())
    nxt = json.loads(runner.invoke(app, args).stdout)["bars"][0]
    assert nxt["status"] == "done" and nxt["bar"] > bar["bar"]
    hist = json.loads(runner.invoke(app, ["trade", "history", "--ledger", led, "--json"]).stdout)
    assert [h["bar"] for h in hist] == [bar["bar"], nxt["bar"]]


def test_data_warnings_are_shown_before_trading(run_dir, tmp_path):
    """Bars with another calendar (heavy forward-filling) are reported, as mqc backtest does."""
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    folder = tmp_path / "bars"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=300, seed=3), folder)
    weekdays = tmp_path / "weekdays"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=220, seed=4, weekdays_only=True), weekdays)
    (weekdays / "SYN1.csv").replace(folder / "SYN1.csv")
    res = runner.invoke(
        app,
        [
            "trade",
            "--paper",
            "-c",
            str(run_dir),
            "--data-root",
            str(folder),
            "--replay",
            "2015-05-01:2015-05-20",
            "--ledger",
            str(tmp_path / "l.db"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "data: SYN1" in res.stderr and "forward-filled" in res.stderr


def _recent_bars(tmp_path, n_bars=200):
    """SYN0, SYN1 daily bars up to yesterday in a folder; the last row held back (it "arrives" later)."""
    import pandas as pd

    from mqc.core.data.synth import SynthSpec, write_synth_csv

    today = pd.Timestamp.now(tz="UTC").normalize().tz_localize(None)
    start = (today - pd.Timedelta(days=n_bars)).strftime("%Y-%m-%d")
    folder = tmp_path / "bars"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=n_bars, start=start, seed=9), folder)
    for f in folder.glob("*.csv"):
        lines = f.read_text().splitlines(keepends=True)
        (tmp_path / f.name).write_text(lines[-1])
        f.write_text("".join(lines[:-1]))
    return folder


def test_strategy_once_places_orders_that_fill_on_the_next_bar(tmp_path):
    """mqc trade --paper --strategy maxdiff --only ewma-vol --once: the orders of the newest bar are
    recorded before they are sent, rest at the paper broker, and fill (or expire) on the next bar."""
    folder = _recent_bars(tmp_path)
    led = str(tmp_path / "led" / "ledger.db")
    args = ["trade", "--paper", "--strategy", "maxdiff", "--only", "ewma-vol", "--symbols", "SYN0,SYN1", "--once"]
    args += ["--data-root", str(folder), "--ledger", led, "--json"]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    (bar,) = json.loads(first.stdout)["bars"]
    assert bar["status"] == "done" and bar["orders"] >= 1
    orders = json.loads(runner.invoke(app, ["trade", "orders", "--ledger", led, "--json"]).stdout)
    assert {o["status"] for o in orders} == {"new"}  # resting at the broker until the next bar
    assert {o["order_type"] for o in orders} <= {"limit", "stop", "moo", "moc"}
    events = [json.loads(line) for line in _export(tmp_path, led)]
    decision = next(e for e in events if e["kind"] == "decision")
    assert decision["data"]["inputs"]["models"] == {"SYN0": "ewma-vol", "SYN1": "ewma-vol"}
    kinds = [e["kind"] for e in events]
    assert kinds.index("order_intent") < kinds.index("order_sent" if "order_sent" in kinds else "equity")
    for f in folder.glob("*.csv"):  # the next bar arrives
        f.write_text(f.read_text() + (tmp_path / f.name).read_text())
    nxt = runner.invoke(app, args)
    assert nxt.exit_code == 0, nxt.output
    assert json.loads(nxt.stdout)["bars"][0]["status"] == "done"
    after = {
        o["client_order_id"]: o
        for o in json.loads(runner.invoke(app, ["trade", "orders", "--ledger", led, "--json"]).stdout)
    }
    for o in orders:  # the first bar's orders are final now: filled, or expired unfilled
        assert after[o["client_order_id"]]["status"] in ("filled", "expired", "cancelled")


def _export(tmp_path, led):
    out = tmp_path / "events.jsonl"
    res = runner.invoke(app, ["trade", "export", str(out), "--ledger", led])
    assert res.exit_code == 0, res.output
    return out.read_text().splitlines()


def test_strategy_without_a_selection_record_names_forecast_select(tmp_path):
    folder = _recent_bars(tmp_path)
    args = ["trade", "--paper", "--strategy", "maxdiff", "--symbols", "SYN0,SYN1", "--once"]
    res = runner.invoke(app, [*args, "--data-root", str(folder), "--ledger", str(tmp_path / "x" / "l.db")])
    assert res.exit_code == 1
    assert "SYN0" in res.output and "mqc forecast select" in res.output and "--by pnl" in res.output
    assert not (tmp_path / "x" / "l.db").exists()  # nothing opened, nothing sent


def test_strategy_or_checkpoint_is_required(tmp_path):
    res = runner.invoke(app, ["trade", "--paper", "--once", "--ledger", str(tmp_path / "l.db")])
    assert res.exit_code == 2
    res = runner.invoke(
        app, ["trade", "--paper", "--only", "naive", "-c", "latest", "--ledger", str(tmp_path / "l.db")]
    )
    assert res.exit_code == 2 and "--strategy only" in res.output


def test_strategy_once_on_a_tiny_chronos2(tmp_path):
    """mqc trade --paper --strategy maxdiff --only chronos2 --model-path DIR --once (random-init weights)."""
    pytest.importorskip("chronos")
    from mqc.core.forecast.randinit import save_random_chronos2

    weights = save_random_chronos2(tmp_path / "chronos2", size="tiny")
    folder = _recent_bars(tmp_path, n_bars=120)
    led = str(tmp_path / "led" / "ledger.db")
    args = ["trade", "--paper", "--strategy", "maxdiff", "--only", "chronos2", "--model-path", str(weights)]
    args += ["--symbols", "SYN0,SYN1", "--once", "--data-root", str(folder), "--ledger", led, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    (bar,) = json.loads(res.stdout)["bars"]
    assert bar["status"] == "done"
    events = [json.loads(line) for line in _export(tmp_path, led)]
    decision = next(e for e in events if e["kind"] == "decision")
    assert decision["data"]["inputs"]["models"] == {"SYN0": "chronos2", "SYN1": "chronos2"}


def test_only_chronos2_without_weights_fails_before_anything_is_opened(tmp_path):
    """mqc trade --paper --only chronos2 --symbols ... with no Chronos-2 weights on the machine: one clear
    error naming the download and --model-path, exit 1, no ledger (also when the last bar is stale)."""
    pytest.importorskip("huggingface_hub")
    folder = _recent_bars(tmp_path, n_bars=60)
    led = tmp_path / "led" / "ledger.db"
    args = ["trade", "--paper", "--only", "chronos2", "--symbols", "SYN0,SYN1", "--once"]
    res = runner.invoke(app, [*args, "--data-root", str(folder), "--ledger", str(led)])
    assert res.exit_code == 1, res.output
    assert "not in the local Hugging Face cache" in res.output and "--model-path" in res.output
    assert not led.exists()


def test_only_chronos2_once_on_a_tiny_local_model(tmp_path):
    """The exact words of the issue: mqc trade --paper --only chronos2 --symbols ... (maxdiff by default)."""
    pytest.importorskip("chronos")
    from mqc.core.forecast.randinit import save_random_chronos2

    weights = save_random_chronos2(tmp_path / "chronos2", size="tiny")
    folder = _recent_bars(tmp_path, n_bars=120)
    led = str(tmp_path / "led" / "ledger.db")
    args = ["trade", "--paper", "--only", "chronos2", "--model-path", str(weights), "--symbols", "SYN0,SYN1"]
    res = runner.invoke(app, [*args, "--once", "--data-root", str(folder), "--ledger", led, "--json"])
    assert res.exit_code == 0, res.output
    (bar,) = json.loads(res.stdout)["bars"]
    assert bar["status"] == "done"
    decision = next(json.loads(e) for e in _export(tmp_path, led) if '"decision"' in e)
    assert decision["data"]["strategy"].startswith("maxdiff")


def test_a_replay_says_how_many_orders_the_risk_limits_rejected(tmp_path):
    """A replay whose limit orders fall outside the price band: the closing line counts the rejections
    and mqc trade status names the limit (so a replay that differs from the backtest says why)."""
    folder = _recent_bars(tmp_path, n_bars=80)
    assert runner.invoke(app, ["profile", "set", "trade.price_band", "0.001", "-n", "tight"]).exit_code == 0
    led = str(tmp_path / "led" / "ledger.db")
    args = ["--profile", "tight", "trade", "--paper", "--only", "naive", "--symbols", "SYN0,SYN1"]
    res = runner.invoke(app, [*args, "--replay", ":", "--data-root", str(folder), "--ledger", led])
    assert res.exit_code == 0, res.output
    summary = res.stderr.strip().splitlines()[-1]
    assert "bars (" in summary and "rejected by the risk limits" in summary and " 0 rejected by" not in summary
    status = json.loads(runner.invoke(app, ["trade", "status", "--ledger", led, "--json"]).stdout)
    assert set(status["risk_rejected"]) == {"price_band"} and status["risk_rejected"]["price_band"] > 0
    assert status["fetch_errors"] == 0 and status["outages"] == 0


def test_one_account_is_traded_by_one_decider(run_dir, tmp_path):
    """The default paper account after an order strategy: another strategy finds the bar decided and says by
    whom; a checkpoint (target weights, another kind of book) is refused with the way to its own account."""
    folder = _recent_bars(tmp_path)
    led = str(tmp_path / "acct" / "ledger.db")
    base = ["trade", "--paper", "--symbols", "SYN0,SYN1", "--once", "--data-root", str(folder), "--ledger", led]
    first = runner.invoke(app, [*base, "--only", "naive", "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["bars"][0]["status"] == "done"
    again = runner.invoke(app, [*base, "--only", "ewma-vol", "--json"])
    (bar,) = json.loads(again.stdout)["bars"]
    assert bar["status"] == "skipped" and "decided before by maxdiff-naive" in bar["message"]
    ckpt = runner.invoke(
        app, ["trade", "--paper", "-c", str(run_dir), "--once", "--data-root", str(folder)] + ["--ledger", led]
    )
    assert ckpt.exit_code == 1
    assert "traded by an order strategy" in ckpt.output and "--ledger" in ckpt.output
