"""The Ray backend: the same trials give the same results as the local pool; a dead address fails fast."""

from __future__ import annotations

import socket
import time

import pytest

from mqc.core.errors import ConfigError
from mqc.core.sweep.runner import SweepRequest, read_trials, run_sweep

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_gives_the_same_trial_results_as_the_local_pool(sweep_file, base, tmp_path) -> None:
    grid = sweep_file("dm.lookback = [16, 24]\nseed = [0, 1]\n")
    common = dict(kind="dm", grid_file=grid, base=base, max_concurrent=2, test=False)
    run_sweep(SweepRequest(sweep_dir=tmp_path / "local", **common))
    assert not ray.is_initialized()
    run_sweep(SweepRequest(sweep_dir=tmp_path / "ray", backend="ray", **common))  # a local 2-CPU instance
    assert not ray.is_initialized()  # the instance it started is shut down
    local, remote = read_trials(tmp_path / "local"), read_trials(tmp_path / "ray")
    assert set(local) == set(remote) and len(local) == 4
    for key in local:
        assert remote[key]["status"] == local[key]["status"] == "ok"
        assert remote[key]["val"] == local[key]["val"]  # bit for bit: same seed, one thread per trial
        assert remote[key]["run_dir"].startswith(str(tmp_path / "ray" / "trials" / key))
    # they ran as Ray Tune trials: one Tune experiment in the sweep directory, a trial folder per trial
    (experiment,) = (tmp_path / "ray" / "tune").iterdir()
    assert sorted(p.name.rsplit("-", 1)[0] for p in experiment.iterdir() if p.is_dir()) == sorted(local)


def test_tunes_asha_scheduler_stops_a_bad_trial_from_its_reported_val_metrics(sweep_file, base, tmp_path) -> None:
    # one trial at a time: ASHA's first rung (the first evaluation, step 2 of 4) sees the trials before
    grid = sweep_file("dm.lookback = [16, 24]\nseed = [0, 1]\n")
    req = SweepRequest(
        kind="dm",
        grid_file=grid,
        base=base,
        max_concurrent=1,
        test=False,
        backend="ray",
        pruner="asha",
        sweep_dir=tmp_path / "s",
    )
    result = run_sweep(req)
    rows = read_trials(tmp_path / "s")
    pruned = [r for r in rows.values() if r["status"] == "pruned"]
    ok = [r for r in rows.values() if r["status"] == "ok"]
    assert pruned and ok and len(pruned) + len(ok) == 4 and result.counts["pruned"] == len(pruned)
    for r in pruned:  # stopped by Tune at its first report, its reported val metrics kept, its run dir found
        assert r["steps"] == 2 and "sharpe" in r["val"] and r["error"] is None
        assert r["run_dir"].startswith(str(tmp_path / "s" / "trials" / r["trial"]))
    assert all(r["steps"] == 4 and r["best_step"] is not None for r in ok)
    # a stopped trial does not count toward its configuration's mean, but the configuration was tried
    assert result.n_configs == 2


def test_a_ray_address_that_does_not_answer_fails_within_seconds(sweep_file, base, tmp_path) -> None:
    grid = sweep_file("dm.lookback = [16]\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="does not answer") as exc:
        run_sweep(
            SweepRequest(
                kind="dm",
                grid_file=grid,
                base=base,
                sweep_dir=tmp_path / "s",
                backend="ray",
                address=f"ray://127.0.0.1:{_free_port()}",
            )
        )
    assert time.perf_counter() - t0 < 10 and "ray start --head" in exc.value.hint
    assert not ray.is_initialized() and not (tmp_path / "s" / "trials.jsonl").exists()


def test_a_forecast_sweep_on_ray_gives_the_local_pools_figures(synth, tmp_path) -> None:
    from mqc.core import config
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.config import DataConfig
    from mqc.core.forecast.config import EvalConfig, ForecastConfig

    cat = Catalog()
    for s, df in synth(n_assets=2, n_bars=260, seed=4, weekdays_only=True).items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    base = {
        "data": config.to_dict(DataConfig(symbols=("SYN0", "SYN1"))),
        "forecast": config.to_dict(ForecastConfig(model="ewma-vol")),
        "forecast_eval": config.to_dict(EvalConfig(origins=60, horizons=(1, 3))),
    }
    grid = tmp_path / "g.toml"
    grid.write_text("forecast.ewma_lambda = [0.8, 0.97]\n")
    common = dict(kind="forecast", grid_file=grid, base=base, max_concurrent=2)
    local = run_sweep(SweepRequest(sweep_dir=tmp_path / "local", **common))
    remote = run_sweep(SweepRequest(sweep_dir=tmp_path / "ray", backend="ray", **common))
    assert not ray.is_initialized()
    a, b = read_trials(tmp_path / "local"), read_trials(tmp_path / "ray")
    assert set(a) == set(b) and len(a) == 2
    for key in a:  # the same trial function on both backends: the same figures, per symbol
        assert (
            b[key]["status"] == "ok" and b[key]["per_symbol"] == a[key]["per_symbol"] and b[key]["val"] == a[key]["val"]
        )
    assert remote.chosen["config"] == local.chosen["config"]
    assert remote.test["metrics"] == local.test["metrics"]
