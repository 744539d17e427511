"""Rolling-origin evaluation: causality, metrics, tune/select files, hyperparams validation."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mqc.core.errors import ConfigError
from mqc.core.forecast import hyperparams
from mqc.core.forecast.config import EvalConfig, ForecastConfig
from mqc.core.forecast.evaluation import evaluate, model_configs, origin_grid
from mqc.core.forecast.scoring import score
from mqc.core.forecast.tuning import select, tune

EC = EvalConfig(origins=40, horizons=(1, 3), chunk=16)


def _cfgs(names):
    return model_configs(names, ForecastConfig(window=60), EC.quantile_levels)


def test_forecasts_unchanged_when_bars_after_origin_change(synth):
    frames = synth(n_assets=3, n_bars=300, seed=7)
    res = evaluate(frames, _cfgs(["ewma-vol", "bootstrap", "drift"]), EC)
    cut = 15  # perturb every bar after origin #cut
    t_cut = res.origins[cut]
    bumped = {}
    for s, df in frames.items():
        df = df.copy()
        after = df["timestamp"] > t_cut
        for col in ("open", "high", "low", "close"):
            df.loc[after, col] *= 1.5
        bumped[s] = df
    res2 = evaluate(bumped, _cfgs(["ewma-vol", "bootstrap", "drift"]), EC)
    for m in res.models:
        assert np.array_equal(res.predictions[m][: cut + 1], res2.predictions[m][: cut + 1])
        assert not np.allclose(res.predictions[m][cut + 1 :], res2.predictions[m][cut + 1 :])


def test_origins_leave_room_for_context_and_horizon(synth):
    frames = synth(n_assets=2, n_bars=100, seed=1)
    grid = origin_grid(frames, 1000, 1, 32, 5)
    assert grid.index.min() == 31 and grid.index.max() == 100 - 1 - 5


def test_score_known_answers():
    levels = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
    last = np.full((4, 3), 100.0)
    actual = np.array([[101.0, 99.0, 100.0]] * 4)
    perfect = np.repeat(actual[..., None], len(levels), axis=-1)
    m = score(perfect, actual, last, levels)
    assert m["mae"] == 0 and m["crps"] == 0 and m["coverage_90"] == 1.0 and m["mase"] == 0
    persist = np.full((4, 3, len(levels)), 100.0)
    assert score(persist, actual, last, levels)["mase"] == pytest.approx(1.0)
    assert score(persist, actual, last, levels)["hit_rate"] is None


def test_tune_writes_validated_hyperparams(synth, tmp_path):
    frames = synth(n_assets=1, n_bars=260, seed=2)
    base = ForecastConfig(model="ewma-vol", window=60, hyperparams_dir=str(tmp_path))
    res = tune(frames, "SYN0", base, EC, {"ewma_lambda": (0.9, 0.97)})
    hp = hyperparams.load(res.path)
    assert res.path == tmp_path / "ewma-vol" / "SYN0.1d.json"
    assert hp.config["ewma_lambda"] in (0.9, 0.97) and hp.validation["metric"] == "crps"
    assert hp.windows["validation"]["last_origin"] < hp.windows["test"]["first_origin"]


def test_select_writes_best_records(synth, tmp_path):
    frames = synth(n_assets=2, n_bars=260, seed=3)
    res = select(frames, ["naive", "ewma-vol"], ForecastConfig(window=60, hyperparams_dir=str(tmp_path)), EC)
    for s in frames:
        rec = hyperparams.load(tmp_path / "best" / f"{s}.1d.json")
        assert rec.model == res.choices[s]["model"] == "ewma-vol"  # naive has no spread: far worse CRPS


def test_malformed_hyperparams_name_the_key(tmp_path):
    p = tmp_path / "chronos2" / "AAPL.json"
    p.parent.mkdir(parents=True)
    p.write_text(json.dumps({"symbol": "AAPL", "model": "chronos2", "config": {"context_lenght": 512}}))
    with pytest.raises(ConfigError, match="unknown key 'context_lenght'; did you mean 'context_length'"):
        hyperparams.find("chronos2", "AAPL", "1d", str(tmp_path))
    p.write_text(json.dumps({"symbol": "AAPL", "model": "chronos2", "config": {"batch_size": "big"}}))
    with pytest.raises(ConfigError, match="config.batch_size"):
        hyperparams.load(p)
    p.write_text(json.dumps({"symbol": "AAPL", "model": "chronos2", "config": {}, "valdation": {}}))
    with pytest.raises(ConfigError, match="did you mean 'validation'"):
        hyperparams.load(p)
    p.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid JSON"):
        hyperparams.load(p)


def test_shipped_hyperparams_are_valid():
    d = hyperparams.shipped_dir()
    assert d is not None
    files = sorted(d.glob("*/*.json"))
    assert files
    for f in files:
        hyperparams.load(f)


@pytest.mark.parametrize("metric", ["rank_ic"])
def test_cross_sectional_metric_is_rejected_for_per_symbol_choices(synth, tmp_path, metric):
    from mqc.core.forecast.scoring import PER_SYMBOL_METRICS

    frames = synth(n_assets=4, n_bars=260, seed=3)
    ec = EvalConfig(origins=40, horizons=(1,), chunk=16, metric=metric)
    base_cfg = ForecastConfig(window=60, hyperparams_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="cross-sectional") as err:
        select(frames, ["naive", "drift", "ewma-vol"], base_cfg, ec)
    assert "crps" in err.value.hint and set(PER_SYMBOL_METRICS) <= set(err.value.hint.replace(",", " ").split())
    with pytest.raises(ConfigError, match="cross-sectional"):
        tune(
            frames,
            "SYN0",
            ForecastConfig(model="drift", window=60, hyperparams_dir=str(tmp_path)),
            ec,
            {"window": (20, 60)},
        )
    assert not list(tmp_path.rglob("*.json"))


def test_choice_fails_when_every_candidate_scores_none(synth, tmp_path):
    from mqc.core.errors import DataError

    frames = synth(n_assets=2, n_bars=260, seed=3)
    ec = EvalConfig(origins=40, horizons=(1,), chunk=16, metric="hit_rate")  # undefined for flat forecasts
    with pytest.raises(DataError, match="no candidate has a hit_rate score"):
        select(frames, ["naive", "seasonal-naive"][:1], ForecastConfig(hyperparams_dir=str(tmp_path)), ec)
    with pytest.raises(DataError, match="no candidate has a hit_rate score"):
        tune(
            frames,
            "SYN0",
            ForecastConfig(model="hist-vol", window=60, hyperparams_dir=str(tmp_path)),
            ec,
            {"window": (20, 60)},
        )
    assert not list(tmp_path.rglob("*.json"))


def test_window_baselines_use_the_whole_window_beyond_context_length(synth):
    frames = synth(n_assets=1, n_bars=2600, seed=5)
    ec = EvalConfig(origins=3, horizons=(1,), chunk=16)
    cfgs = {f"w{w}": ForecastConfig(model="hist-vol", window=w, context_length=512) for w in (1000, 2000)}
    res = evaluate(frames, cfgs, ec)
    assert not np.allclose(res.predictions["w1000"], res.predictions["w2000"])
    close = frames["SYN0"]["close"].to_numpy()
    levels = res.quantile_levels
    rows = origin_grid(frames, 3, 1, 32, 1).index[:, 0]
    assert len(rows) == 3
    for w in (1000, 2000):
        for o, i in enumerate(rows):
            r = np.diff(np.log(close[i - w : i + 1]))
            assert len(r) == w
            hi = close[i] * np.exp(1.6448536269514722 * r.std(ddof=1))  # the 0.95 quantile of the next close
            assert res.predictions[f"w{w}"][o, 0, levels.index(0.95), 0] == pytest.approx(hi, rel=1e-9)


def test_bootstrap_forecast_independent_of_batch_and_chunking(synth):
    frames = synth(n_assets=3, n_bars=400, seed=6)
    sym = "SYN1"
    cfg = ForecastConfig(model="bootstrap", window=120, block_length=20)
    from mqc.core.forecast import base

    ctx = {s: df.iloc[:-30] for s, df in frames.items()}
    ctx["SHORT"] = frames["SYN0"].iloc[:-30].iloc[-40:]  # few returns: its block length must not shrink the others'
    together = base.create("bootstrap", config=cfg).predict(ctx, 7, (0.1, 0.5, 0.9))[sym]
    alone = base.create("bootstrap", config=cfg).predict({sym: ctx[sym]}, 7, (0.1, 0.5, 0.9))[sym]
    assert np.array_equal(together.quantiles, alone.quantiles) and np.array_equal(together.samples, alone.samples)
    cfgs = {"b": cfg}
    r64 = evaluate(frames, cfgs, EvalConfig(origins=30, horizons=(1, 7), chunk=64))
    r10 = evaluate(frames, cfgs, EvalConfig(origins=30, horizons=(1, 7), chunk=10))
    assert np.array_equal(r64.predictions["b"], r10.predictions["b"]) and r64.rows == r10.rows
    # eval forecasts equal live forecasts from the same origin (same random stream)
    i = int(r64.origins.size - 1)
    live = base.create("bootstrap", config=cfg).predict(
        {sym: frames[sym][frames[sym]["timestamp"] <= r64.origins[i]]}, 7, r64.quantile_levels
    )[sym]
    assert np.allclose(live.quantiles[:, :, 3], r64.predictions["b"][i, 1])


def test_per_symbol_configs_match_evaluating_each_symbol_alone(synth):
    import dataclasses

    import numpy as np

    frames = synth(n_assets=2, n_bars=260, seed=4)
    ec = EvalConfig(origins=30, horizons=(1, 3), chunk=16)
    a = ForecastConfig(model="ewma-vol", window=60, ewma_lambda=0.9, quantile_levels=ec.quantile_levels)
    b = dataclasses.replace(a, ewma_lambda=0.97)
    grid = origin_grid(frames, ec.origins, ec.step, a.min_context, ec.max_horizon)
    mixed = evaluate(
        frames, {"ewma-vol": {"SYN0": a, "SYN1": b}}, ec, grid=grid, settings_files={"ewma-vol": {"SYN0": "x.json"}}
    )
    only_a = evaluate(frames, {"ewma-vol": a}, ec, grid=grid)
    only_b = evaluate(frames, {"ewma-vol": b}, ec, grid=grid)
    p = mixed.predictions["ewma-vol"]
    assert np.allclose(p[:, 0], only_a.predictions["ewma-vol"][:, 0]) and np.allclose(
        p[:, 1], only_b.predictions["ewma-vol"][:, 1]
    )
    assert not np.allclose(
        p[:, 1], only_a.predictions["ewma-vol"][:, 1]
    )  # the second symbol really used its own lambda
    assert mixed.configs["ewma-vol"]["per_symbol"]["SYN1"]["ewma_lambda"] == 0.97
    assert mixed.settings_files["ewma-vol"] == {"SYN0": "x.json", "SYN1": None}
    assert mixed.to_dict()["requested_origins"] == 30


def test_select_scores_and_records_the_tuned_settings(synth, tmp_path):
    from mqc.core.forecast.service import model_settings

    frames = synth(n_assets=2, n_bars=260, seed=3)
    (tmp_path / "ewma-vol").mkdir()
    tuned = tmp_path / "ewma-vol" / "SYN0.json"
    tuned.write_text(json.dumps({"symbol": "SYN0", "model": "ewma-vol", "config": {"ewma_lambda": 0.9, "window": 60}}))
    settings = model_settings(
        ["naive", "ewma-vol"],
        list(frames),
        flags={"hyperparams_dir": str(tmp_path)},
        quantile_levels=EC.quantile_levels,
    )
    assert (
        settings.configs["ewma-vol"]["SYN0"].ewma_lambda == 0.9
        and settings.configs["ewma-vol"]["SYN1"].ewma_lambda == 0.94
    )
    res = select(frames, ["naive", "ewma-vol"], ForecastConfig(hyperparams_dir=str(tmp_path)), EC, settings=settings)
    rec = hyperparams.load(tmp_path / "best" / "SYN0.1d.json")
    assert rec.model == "ewma-vol" and rec.config["ewma_lambda"] == 0.9 and rec.config["window"] == 60
    assert rec.metadata["settings_file"] == str(tuned) == res.choices["SYN0"]["settings_file"]
    assert hyperparams.load(tmp_path / "best" / "SYN1.1d.json").config["ewma_lambda"] == 0.94
    with pytest.raises(ConfigError, match="'best' is not a model"):
        model_settings(["best"], ["SYN0"])


def test_horizon_cap_and_origin_shortfall_are_recorded(synth):
    from mqc.core.forecast.config import MAX_HORIZON

    with pytest.raises(ConfigError, match="maximum of 10,000 bars"):
        ForecastConfig(prediction_length=MAX_HORIZON + 1)
    assert ForecastConfig(prediction_length=MAX_HORIZON).prediction_length == MAX_HORIZON
    with pytest.raises(ConfigError, match="maximum"):
        EvalConfig(horizons=(1, MAX_HORIZON + 1))
    frames = synth(n_assets=1, n_bars=120, seed=1)
    res = evaluate(
        frames,
        {"naive": ForecastConfig(model="naive", quantile_levels=EC.quantile_levels)},
        EvalConfig(origins=5000, horizons=(1,)),
    )
    assert res.requested_origins == 5000 and len(res.origins) < 120


def test_unset_season_is_learned_per_symbol_from_bars_before_the_first_origin(synth):
    eq = synth(n_assets=1, n_bars=300, seed=3, weekdays_only=True)["SYN0"]
    crypto = synth(n_assets=1, n_bars=420, seed=4, weekdays_only=False)["SYN0"]
    crypto.attrs["asset_class"] = "crypto"
    crypto = crypto[crypto["timestamp"] >= eq["timestamp"].iloc[0]].reset_index(drop=True)
    res = evaluate({"EQ": eq, "BTCUSD": crypto}, _cfgs(["seasonal-naive"]), EC)
    seasons = {s: c["season_length"] for s, c in res.configs["seasonal-naive"]["per_symbol"].items()}
    assert seasons == {"EQ": 5, "BTCUSD": 7}
    # Learned from the bars before the first origin: weekend bars after every origin do not count.
    tail = eq.iloc[[-1] * 7].copy()
    tail["timestamp"] = eq["timestamp"].iloc[-1] + pd.to_timedelta(np.arange(1, 8), unit="D")
    late = pd.concat([eq, tail], ignore_index=True)
    res3 = evaluate({"EQ": eq, "LATE": late}, _cfgs(["seasonal-naive"]), EC)
    cfg = res3.configs["seasonal-naive"]
    assert cfg.get("per_symbol", {"LATE": cfg})["LATE"]["season_length"] == 5


def _apart(synth, n_bars=500, cut=220):
    """Two symbols whose histories do not overlap: A = the first ``cut`` bars of one path, B = the rest of another."""
    f = synth(n_assets=2, n_bars=n_bars, seed=11)
    return {"A": f["SYN0"].iloc[:cut].reset_index(drop=True), "B": f["SYN1"].iloc[cut + 20 :].reset_index(drop=True)}


def test_univariate_models_use_each_symbols_own_origins(synth):
    from mqc.core.errors import DataError

    frames = _apart(synth)
    assert frames["A"]["timestamp"].iloc[-1] < frames["B"]["timestamp"].iloc[0]
    res = evaluate(frames, _cfgs(["naive", "ewma-vol"]), EC)
    assert res.grid.counts == {"A": 40, "B": 40} and not res.grid.joint
    assert set(res.origin_modes.values()) == {"per-symbol"}
    for s, df in frames.items():
        ts = res.grid.timestamps_of(s)
        assert ts[-1] == df["timestamp"].iloc[-1 - EC.max_horizon]  # the symbol's own latest usable bar
        alone = evaluate({s: df}, _cfgs(["naive", "ewma-vol"]), EC)  # each symbol scored as if evaluated alone
        mine = [{k: v for k, v in r.items() if k != "symbol"} for r in res.per_symbol if r["symbol"] == s]
        assert mine == [{k: v for k, v in r.items() if k != "rank_ic"} | {"rank_ic": None} for r in alone.rows]
    pooled = next(r for r in res.rows if r["model"] == "ewma-vol" and r["horizon"] == 1)
    parts = [r for r in res.per_symbol if r["model"] == "ewma-vol" and r["horizon"] == 1]
    assert pooled["n"] == 80 and pooled["crps"] == pytest.approx(np.mean([r["crps"] for r in parts]))
    assert pooled["rank_ic"] is None  # no origin is shared: no cross-section
    d = res.to_dict()
    assert d["origins"]["mode"] == "per-symbol" and d["origins"]["per_symbol"]["A"]["n"] == 40
    with pytest.raises(DataError, match="no common origin for A, B") as err:
        evaluate(frames, _cfgs(["naive"]), EvalConfig(origins=40, horizons=(1, 3), joint_origins=True))
    assert "--joint-origins" in err.value.hint


def test_symbols_with_fewer_origins_are_pooled_by_their_count(synth):
    f = synth(n_assets=2, n_bars=400, seed=12)
    frames = {"LONG": f["SYN0"], "SHORT": f["SYN1"].iloc[-60:].reset_index(drop=True)}
    res = evaluate(frames, _cfgs(["ewma-vol"]), EvalConfig(origins=100, horizons=(1,)))
    n_short = 60 - 32 + 1 - 1  # bars with 32 of context before and 1 after
    assert res.grid.counts == {"LONG": 100, "SHORT": n_short}
    parts = {r["symbol"]: r for r in res.per_symbol}
    pooled = res.rows[0]
    assert pooled["n"] == 100 + n_short
    assert pooled["mae"] == pytest.approx(
        (parts["LONG"]["mae"] * 100 + parts["SHORT"]["mae"] * n_short) / (100 + n_short)
    )
    assert (
        np.isnan(res.predictions["ewma-vol"][: 100 - n_short, 1]).all()
        and np.isfinite(res.predictions["ewma-vol"][100 - n_short :, 1]).all()
    )


def _sharing_factory(name, cfg):
    from mqc.core.forecast import base

    m = base.create(name, config=cfg)
    if name == "drift":
        m.shares_across_series = True  # stands in for Chronos-2 cross-learning
    return m


def test_only_models_that_share_across_series_get_joint_origins(synth):
    from mqc.core.errors import DataError

    f = synth(n_assets=2, n_bars=300, seed=13)
    frames = {"A": f["SYN0"], "B": f["SYN1"].iloc[:-50].reset_index(drop=True)}  # overlapping, B ends 50 bars earlier
    res = evaluate(frames, _cfgs(["ewma-vol", "drift"]), EC, factory=_sharing_factory)
    assert res.origin_modes == {"ewma-vol": "per-symbol", "drift": "joint (shares across series)"}
    joint = res.grids["drift"]
    assert (
        joint.joint
        and (joint.stamps == joint.stamps[:, :1]).all()
        and joint.timestamps[-1] == frames["B"]["timestamp"].iloc[-1 - 3]
    )
    assert res.grids["ewma-vol"].timestamps_of("A")[-1] == frames["A"]["timestamp"].iloc[-1 - 3]
    assert set(res.to_dict()["joint_origins_by_model"]) == {"drift"}
    with pytest.raises(DataError, match="no common origin") as err:
        evaluate(_apart(synth), _cfgs(["ewma-vol", "drift"]), EC, factory=_sharing_factory)
    assert "drift share(s) information across the symbols" in err.value.hint


def test_select_and_tune_on_histories_that_do_not_overlap(synth, tmp_path):
    frames = _apart(synth, n_bars=700, cut=320)
    base_cfg = ForecastConfig(window=60, hyperparams_dir=str(tmp_path))
    res = select(frames, ["naive", "ewma-vol"], base_cfg, EC)
    assert res.origins == "per-symbol" and set(res.choices) == {"A", "B"}
    for s, df in frames.items():
        rec = hyperparams.load(tmp_path / "best" / f"{s}.1d.json")
        w = rec.windows
        first, last = df["timestamp"].iloc[0].isoformat(), df["timestamp"].iloc[-1].isoformat()
        assert (
            first
            <= w["validation"]["first_origin"]
            < w["validation"]["last_origin"]
            < w["test"]["first_origin"]
            <= last
        )
    t = tune(frames, "B", dataclasses_replace(base_cfg, model="ewma-vol"), EC, {"ewma_lambda": (0.9, 0.97)})
    assert hyperparams.load(t.path).windows["test"]["last_origin"] == frames["B"]["timestamp"].iloc[-1 - 3].isoformat()


def dataclasses_replace(cfg, **kw):
    import dataclasses

    return dataclasses.replace(cfg, **kw)


def test_tune_and_select_refuse_too_few_validation_origins_naming_the_history(synth, tmp_path):
    # The issue: a 50-row history tuned on 1 validation origin (and 4 test) and wrote the file silently;
    # a 41-row one hinted "raise --origins", which cannot help.
    from mqc.core.errors import DataError
    from mqc.core.forecast.origins import MIN_VALIDATION_ORIGINS

    ec = EvalConfig(chunk=16)  # defaults: 250 origins, horizons 1 and 7
    base = ForecastConfig(model="ewma-vol", hyperparams_dir=str(tmp_path))
    for n_bars in (50, 41):
        frames = synth(n_assets=1, n_bars=n_bars, seed=2)
        with pytest.raises(DataError, match=f"the {n_bars}-bar history allows only") as err:
            tune(frames, "SYN0", base, ec, {"ewma_lambda": (0.9, 0.97)})
        assert f"need at least {MIN_VALIDATION_ORIGINS} validation origins" in str(err.value)
        assert "--origins cannot help" in str(err.value) and "--horizon" in err.value.hint
        assert "raise --origins" not in err.value.hint and "import more history" in err.value.hint
        with pytest.raises(DataError, match="history allows only"):
            select(frames, ["naive", "ewma-vol"], base, ec)
    assert not list(tmp_path.rglob("*.json"))


def test_too_few_origins_asked_for_hints_the_origins_that_suffice(synth, tmp_path):
    from mqc.core.errors import DataError

    frames = synth(n_assets=1, n_bars=300, seed=2)
    ec = EvalConfig(origins=30, horizons=(1, 7), chunk=16)  # 30 origins: 9 test, embargo 7, 14 validation
    with pytest.raises(DataError, match="14 validation origin") as err:
        select(frames, ["naive", "ewma-vol"], ForecastConfig(hyperparams_dir=str(tmp_path)), ec)
    assert err.value.hint == "raise --origins to 38 or more"
    ok = select(frames, ["naive", "ewma-vol"], ForecastConfig(hyperparams_dir=str(tmp_path)), EvalConfig(origins=38))
    assert ok.choices
