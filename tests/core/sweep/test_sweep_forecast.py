"""``mqc sweep forecast``: forecaster settings chosen by forecast error on val origins (each trial the
per-setting evaluation of ``forecast tune``), the choice's test figures once, labelled with the count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mqc.core import config
from mqc.core.data.catalog import Catalog
from mqc.core.data.config import DataConfig
from mqc.core.errors import ConfigError
from mqc.core.forecast import hyperparams
from mqc.core.forecast.config import EvalConfig, ForecastConfig
from mqc.core.forecast.tuning import candidate, score_setting, tune, windows
from mqc.core.sweep.runner import TRIALS, SweepRequest, plan, read_trials, run_sweep

SYMBOLS = ("SYN0", "SYN1")
GRID = "forecast.ewma_lambda = [0.8, 0.9, 0.97]\n"


@pytest.fixture
def frames(synth) -> dict:
    out = synth(n_assets=2, n_bars=260, seed=4, weekdays_only=True)
    cat = Catalog()
    for s, df in out.items():
        cat.write(s, df, source="synth", timeframe="1d", asset_class="equity")
    return {s: cat.load(s, "1d") for s in SYMBOLS}


@pytest.fixture
def fc_base(frames, tmp_path) -> dict:
    return {
        "data": config.to_dict(DataConfig(symbols=SYMBOLS)),
        "forecast": config.to_dict(ForecastConfig(model="ewma-vol", hyperparams_dir=str(tmp_path / "hp"))),
        "forecast_eval": config.to_dict(EvalConfig(origins=60, horizons=(1, 3))),
    }


def _req(tmp_path: Path, base: dict, body: str = GRID, name: str = "s", **kw) -> SweepRequest:
    grid = tmp_path / f"{name}.toml"
    grid.write_text(body)
    return SweepRequest(kind="forecast", grid_file=grid, base=base, sweep_dir=tmp_path / name, max_concurrent=1, **kw)


def _direct(frames: dict, lam: float, split: str) -> dict[str, float]:
    """Each symbol's CRPS of the setting, evaluated by hand as ``forecast tune`` does."""
    ec = EvalConfig(origins=60, horizons=(1, 3))
    cfg = candidate(ForecastConfig(model="ewma-vol", ewma_lambda=lam), ec)
    out = {}
    for s in SYMBOLS:
        val, test = windows({s: frames[s]}, cfg.min_context, ec)
        out[s] = score_setting({s: frames[s]}, cfg, ec, val if split == "val" else test)[0]
    return out


def test_forecast_sweep_val_figures_are_forecast_tunes_and_the_lowest_error_is_chosen(
    frames, fc_base, tmp_path
) -> None:
    result = run_sweep(_req(tmp_path, fc_base))
    rows = read_trials(tmp_path / "s")
    assert len(rows) == 3 and all(r["status"] == "ok" for r in rows.values())
    # each symbol's val figure is the one forecast tune gives that symbol for that setting, bit for bit
    for r in rows.values():
        lam = r["overrides"]["forecast.ewma_lambda"]
        direct = _direct(frames, lam, "val")
        assert {s: r["per_symbol"][s]["crps"] for s in SYMBOLS} == direct
        assert r["val"]["crps"] == pytest.approx(sum(direct.values()) / 2, rel=1e-15)
        assert json.loads((Path(r["run_dir"]) / "val.json").read_text())["split"] == "validation"
    for s in SYMBOLS:
        tr = tune(
            frames,
            s,
            ForecastConfig(model="ewma-vol", hyperparams_dir=str(tmp_path / "tune-hp")),
            EvalConfig(origins=60, horizons=(1, 3)),
            {"ewma_lambda": (0.8, 0.9, 0.97)},
        )
        for t in tr.trials:
            row = next(
                r for r in rows.values() if r["overrides"]["forecast.ewma_lambda"] == t["settings"]["ewma_lambda"]
            )
            assert row["per_symbol"][s]["crps"] == t["score"]
    # CRPS is an error: the lowest mean over symbols is chosen; the summary says so, mean ± std over symbols
    best = min(rows.values(), key=lambda r: r["val"]["crps"])
    assert result.lower and result.chosen["config"] == best["config"] and result.n_configs == 3
    assert [c["val"]["crps"]["mean"] for c in result.configs] == sorted(
        c["val"]["crps"]["mean"] for c in result.configs
    )
    chosen_sd = result.chosen["val"]["crps"]["std"]
    per = [best["per_symbol"][s]["crps"] for s in SYMBOLS]
    assert chosen_sd == pytest.approx(abs(per[0] - per[1]) / 2**0.5, rel=1e-12)
    # the test figures: once, the chosen setting on each symbol's test origins; no deflated Sharpe ratio
    test = result.test
    direct = _direct(frames, best["overrides"]["forecast.ewma_lambda"], "test")
    assert {s: test["runs"][0]["per_symbol"][s]["crps"] for s in SYMBOLS} == direct
    assert test["metrics"]["crps"]["mean"] == pytest.approx(sum(direct.values()) / 2, rel=1e-15)
    assert test["n_configs"] == 3 and test["dsr"]["mean"] is None and "forecast metric" in test["note"]
    assert not test["reused"] and not list((tmp_path / "hp").glob("**/*.json"))  # nothing saved unless asked
    # the finished sweep again: every trial kept, the stored test figures shown, not recomputed
    again = run_sweep(_req(tmp_path, fc_base))
    assert again.counts["done"] == 0 and again.counts["skipped"] == 3 and again.test["reused"]


def test_forecast_sweep_resumes_and_records_a_failing_trial(frames, fc_base, tmp_path, monkeypatch) -> None:
    req = _req(tmp_path, fc_base)
    run_sweep(req)
    path = tmp_path / "s" / TRIALS
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2]) + "\n")  # the third trial "never finished"
    (tmp_path / "s" / "test.json").unlink()
    resumed = run_sweep(req)
    assert resumed.counts["done"] == 1 and resumed.counts["skipped"] == 2 and len(read_trials(tmp_path / "s")) == 3

    from mqc.core.forecast import tuning

    real = tuning.score_setting

    def broken(data, cfg, ec, grid, **kw):
        if cfg.ewma_lambda == 0.9:
            raise ValueError("model blew up")
        return real(data, cfg, ec, grid, **kw)

    monkeypatch.setattr(tuning, "score_setting", broken)  # the pool's workers are forked: they inherit it
    result = run_sweep(_req(tmp_path, fc_base, name="f"))
    rows = read_trials(tmp_path / "f")
    failed = [r for r in rows.values() if r["status"] == "failed"]
    assert len(failed) == 1 and "model blew up" in failed[0]["error"] and result.counts["failed"] == 1
    assert result.chosen["overrides"]["forecast.ewma_lambda"] != 0.9 and result.test["n_configs"] == 3


def test_save_best_writes_forecast_tunes_record_for_each_symbol(frames, fc_base, tmp_path) -> None:
    result = run_sweep(_req(tmp_path, fc_base, save_best=True))
    lam = result.chosen["overrides"]["forecast.ewma_lambda"]
    assert len(result.saved) == 2
    for s in SYMBOLS:
        hp = hyperparams.find("ewma-vol", s, "1d", str(tmp_path / "hp"))
        assert hp is not None and str(hp.path) in result.saved
        assert hp.config["ewma_lambda"] == lam and hp.validation["best"] == {"ewma_lambda": lam}
        assert len(hp.validation["trials"]) == 3 and hp.validation["metric"] == "crps"
        assert hp.test["score"] == result.test["runs"][0]["per_symbol"][s]["crps"]
        assert hp.metadata["sweep"]["n_configs"] == 3
        # the record forecast tune writes has the same sections and windows
        assert hp.windows["validation"]["origins"] > 0 and hp.windows["test"]["origins"] > 0


def test_bad_forecast_sweeps_fail_before_anything_runs(fc_base, tmp_path) -> None:
    with pytest.raises(ConfigError, match="did you mean 'ewma_lambda'"):
        run_sweep(_req(tmp_path, fc_base, "forecast.ewma_lamda = [0.9, 0.97]\n", name="a"))
    with pytest.raises(ConfigError, match="unknown table 'orders'"):
        run_sweep(_req(tmp_path, fc_base, "orders.fit_window = [0, 60]\n", name="b"))
    for axis in ('forecast.model = ["naive", "drift"]', "forecast_eval.origins = [40, 60]"):
        with pytest.raises(ConfigError, match="part of the yardstick") as exc:
            run_sweep(_req(tmp_path, fc_base, GRID + axis + "\n", name="c"))
        assert "one value" in exc.value.hint
    assert plan(_req(tmp_path, fc_base, GRID + "forecast_eval.origins = 40\n", name="d")).metric == "crps"
    rank = {**fc_base, "forecast_eval": {**fc_base["forecast_eval"], "metric": "rank_ic"}}
    with pytest.raises(ConfigError, match="cross-sectional"):
        run_sweep(_req(tmp_path, rank, name="e"))
    with pytest.raises(ConfigError, match="nothing to stop early"):
        run_sweep(_req(tmp_path, fc_base, name="f", pruner="median"))
    with pytest.raises(ConfigError, match="only a forecast sweep"):
        run_sweep(
            SweepRequest(
                kind="backtest", grid_file=tmp_path / "a.toml", base={}, sweep_dir=tmp_path / "g", save_best=True
            )
        )
    assert not any((tmp_path / d).exists() for d in "abcdefg")


def test_hit_rate_is_maximised_and_a_search_minimises_an_error(frames, fc_base, tmp_path) -> None:
    assert not plan(
        _req(
            tmp_path,
            {**fc_base, "forecast_eval": {**fc_base["forecast_eval"], "metric": "hit_rate"}},
            'forecast.model = "drift"\nforecast.window = [20, 60]\n',
            name="h",
        )
    ).lower
    pytest.importorskip("optuna")
    result = run_sweep(
        _req(
            tmp_path,
            fc_base,
            "forecast.ewma_lambda = {low = 0.8, high = 0.99}\n",
            name="r",
            samples=3,
            sampler="random",
        )
    )
    means = [c["val"]["crps"]["mean"] for c in result.configs]
    assert len(means) == 3 and result.chosen["val"]["crps"]["mean"] == min(means)


def test_the_shipped_forecast_sweep_file_is_valid(fc_base, tmp_path) -> None:
    root = Path(__file__).resolve().parents[3] / "hyperparams" / "sweeps"
    grid = root / "bootstrap-small.toml"
    base = {**fc_base, "forecast": {**fc_base["forecast"], "model": "bootstrap"}}
    p = plan(SweepRequest(kind="forecast", grid_file=grid, base=base, sweep_dir=tmp_path / "x"))
    assert p.space.size() == 6 and p.space.seeds == (0, 1) and p.lower
