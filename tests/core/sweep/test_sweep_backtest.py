"""``mqc sweep backtest``: order-strategy settings chosen on val, the choice's test figures once (deflated)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mqc.core import config
from mqc.core.backtest.config import BacktestConfig, OrderBacktestConfig
from mqc.core.backtest.order_runner import run_order_backtest
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import ConfigError
from mqc.core.forecast.config import ForecastConfig
from mqc.core.market.config import MarketConfig
from mqc.core.sweep.runner import SweepRequest, read_trials, run_sweep
from mqc.core.sweep.space import apply_overrides

GRID = """
orders.grid_points = 3
orders.fit_window = [0, 60]
forecast.model = ["naive", "drift"]
"""


@pytest.fixture
def bt_base(tmp_path: Path) -> dict:
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    root = tmp_path / "bars"
    write_synth_csv(SynthSpec(n_assets=2, n_bars=400, seed=5), root)
    return {
        "data": config.to_dict(DataConfig(data_root=str(root))),
        "market": config.to_dict(MarketConfig()),
        "split": config.to_dict(SplitConfig()),
        "orders": config.to_dict(OrderBacktestConfig(strategy="maxdiff")),
        "forecast": config.to_dict(ForecastConfig(model="naive", window=30)),
    }


def _direct(base: dict, overrides: dict, split: str, **bt) -> object:
    """The same backtest run by hand (``mqc backtest --strategy`` with the trial's settings)."""
    v = apply_overrides(base, overrides)
    known = config.known_tables()
    t = {k: config.from_dict(known[k], x, k) for k, x in v.items()}
    cfg = BacktestConfig(split=split, plots=False, write_trades=False, **bt)
    return run_order_backtest(
        t["orders"].strategy,
        t["forecast"],
        t["data"],
        cfg,
        t["orders"],
        t["market"],
        split_cfg=t["split"],
        fit_windows=True,
        write=False,
    )


def test_backtest_sweep_selects_on_val_and_reports_test_once_deflated(bt_base, tmp_path) -> None:
    grid = tmp_path / "bt.toml"
    grid.write_text(GRID)
    req = SweepRequest(
        kind="backtest",
        grid_file=grid,
        base=bt_base,
        sweep_dir=tmp_path / "s",
        max_concurrent=1,
        bootstrap_samples=50,
    )
    result = run_sweep(req)
    rows = read_trials(tmp_path / "s")
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows.values())
    # each trial's val figures are those of the ordinary order backtest on the val split
    for r in rows.values():
        direct = _direct(bt_base, r["overrides"], "val", bootstrap_samples=0)
        assert r["val"]["sharpe"] == pytest.approx(direct.metrics["sharpe"], rel=1e-12, abs=1e-12)
        assert (Path(r["run_dir"]) / "report.json").is_file()
    # the choice is the best val Sharpe; the test split played no part
    best = max(rows.values(), key=lambda r: r["val"]["sharpe"])
    assert result.chosen["config"] == best["config"] and result.n_configs == 4
    # the test figures: computed once, the deflated Sharpe ratio counting the 4 configurations
    test = result.test
    assert test["n_configs"] == 4 and not test["reused"] and len(test["runs"]) == 1
    direct = _direct(bt_base, best["overrides"], "test", n_trials=4, bootstrap_samples=50)
    assert test["metrics"]["sharpe"]["mean"] == pytest.approx(direct.metrics["sharpe"], rel=1e-12, abs=1e-12)
    assert test["dsr"]["mean"] == pytest.approx(direct.significance["dsr"], rel=1e-9)
    assert (tmp_path / "s" / "test" / best["trial"] / "report.json").is_file()
    # deflation bites: the same test Sharpe counted as one configuration scores higher
    alone = _direct(bt_base, best["overrides"], "test", n_trials=1, bootstrap_samples=50)
    assert alone.significance["dsr"] >= direct.significance["dsr"]
    # re-running the finished sweep keeps every trial and shows the stored test figures
    again = run_sweep(req)
    assert again.counts["done"] == 0 and again.counts["skipped"] == 4 and again.test["reused"]


def test_backtest_sweep_bad_input_fails_before_anything_runs(bt_base, tmp_path) -> None:
    grid = tmp_path / "bad.toml"
    grid.write_text("orders.fit_windw = [0, 60]\n")
    with pytest.raises(ConfigError, match="did you mean 'fit_window'"):
        run_sweep(SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s1"))
    grid.write_text("dm.lookback = [16]\n")  # a trainer's table: not a backtest's
    with pytest.raises(ConfigError, match="unknown table 'dm'"):
        run_sweep(SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s2"))
    for axis in ('orders.intrabar = ["conservative", "optimistic"]', "market.equity_fee_bps = [0.0, 5.0]"):
        grid.write_text(GRID + axis + "\n")  # an assumption searched on val: the flattering one would win
        with pytest.raises(ConfigError, match="assumption about fills or costs") as exc:
            run_sweep(SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s4"))
        assert "one value" in exc.value.hint
    grid.write_text(GRID + "market.equity_fee_bps = 5.0\n")  # a fixed assumption is fine
    from mqc.core.sweep.runner import plan

    assert plan(SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s4"))
    grid.write_text(GRID)
    with pytest.raises(ConfigError, match="nothing to stop early"):
        run_sweep(
            SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s3", pruner="median")
        )
    assert not any((tmp_path / d).exists() for d in ("s1", "s2", "s3", "s4"))


def test_a_backtest_trial_that_raises_is_recorded_and_the_sweep_goes_on(bt_base, tmp_path) -> None:
    grid = tmp_path / "bt.toml"
    # a fit window longer than the val history: that trial fails with the backtest's own message
    grid.write_text("orders.grid_points = 3\norders.fit_window = [0, 5000]\n")
    result = run_sweep(
        SweepRequest(kind="backtest", grid_file=grid, base=bt_base, sweep_dir=tmp_path / "s", max_concurrent=1)
    )
    rows = read_trials(tmp_path / "s")
    status = sorted(r["status"] for r in rows.values())
    assert status == ["failed", "ok"] and result.counts["failed"] == 1
    failed = next(r for r in rows.values() if r["status"] == "failed")
    assert failed["error"] and "DataError" in failed["error"]
    assert result.chosen is not None and result.test["n_configs"] == 2


def test_the_shipped_example_sweep_files_are_valid(bt_base, base, tmp_path) -> None:
    from mqc.core.sweep.runner import plan

    root = Path(__file__).resolve().parents[3] / "hyperparams" / "sweeps"
    bt = plan(
        SweepRequest(
            kind="backtest",
            grid_file=root / "maxdiff-small.toml",
            base={**bt_base, "orders": {**bt_base["orders"], "fit_window": 120}},
            sweep_dir=tmp_path / "a",
        )
    )
    assert bt.space.size() == 8
    dm = plan(SweepRequest(kind="dm", grid_file=root / "dm-small.toml", base=base, sweep_dir=tmp_path / "b"))
    assert dm.space.size() == 4 and dm.space.seeds == (0, 1)
