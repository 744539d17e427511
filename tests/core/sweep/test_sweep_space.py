"""Sweep files: grid expansion, keys named as profiles name them, values checked before anything runs."""

from __future__ import annotations

import pytest

from mqc.core import config
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.sweep.space import config_key, parse_space
from mqc.core.train.config import DMTrainConfig

TABLES = {
    "data": DataConfig,
    "market": MarketConfig,
    "features": FeatureConfig,
    "split": SplitConfig,
    "dm": DMTrainConfig,
}
BASE = {t: config.to_dict(cls()) for t, cls in TABLES.items()}


def space(doc):
    return parse_space(doc, TABLES, BASE, "sweep.toml", seed_table="dm")


def test_grid_expands_the_product_of_the_axes_with_fixed_values_and_seeds_apart() -> None:
    s = space({"train": {"steps": 5, "lookback": [16, 32], "lr": [1e-3, 3e-3, 1e-2]}, "seed": [0, 1]})
    grid = s.grid()
    assert len(grid) == 6 == s.size()
    assert grid[0] == {"dm.steps": 5, "dm.lookback": 16, "dm.lr": 1e-3}
    assert grid[-1] == {"dm.steps": 5, "dm.lookback": 32, "dm.lr": 1e-2}
    assert s.seeds == (0, 1) and all("dm.seed" not in g for g in grid)
    assert len({config_key(g) for g in grid}) == 6


def test_values_are_coerced_to_the_field_type_and_a_list_field_takes_a_list_of_lists() -> None:
    s = space({"data": {"symbols": [["SPY", "QQQ"], ["TLT"]]}, "market": {"equity_fee_bps": [1, 5]}})
    assert s.axes["data.symbols"] == [["SPY", "QQQ"], ["TLT"]]
    assert s.axes["market.equity_fee_bps"] == [1.0, 5.0] and all(
        isinstance(v, float) for v in s.axes["market.equity_fee_bps"]
    )
    fixed = space({"data": {"symbols": ["SPY", "QQQ"]}})  # a flat list for a list field is one value
    assert fixed.fixed == {"data.symbols": ["SPY", "QQQ"]} and fixed.grid() == [{"data.symbols": ["SPY", "QQQ"]}]
    assert fixed.seeds == (0,)  # the base seed when the file names none


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"train": {"lokback": [16]}}, "unknown key dm.lokback; did you mean 'lookback'"),
        ({"dmm": {"lookback": [16]}}, "unknown table 'dmm'; did you mean 'dm'"),
        ({"sharpe": {"lookback": [16]}}, "unknown table 'sharpe'"),  # not a table of train dm
        ({"seeds": [0, 1]}, "did you mean 'seed'"),
        ({}, "the sweep is empty"),
        ({"train": {"lookback": []}}, "dm.lookback is an empty list"),
        ({"train": {"lookback": ["long"]}}, r"dm.lookback\[0\]: expected an integer"),
        ({"train": {"lr": [0.001, -1.0]}}, r"dm.lr\[1\] = -1.0"),  # the table's own invariant
        ({"train": {"objective": ["grpo", "ppo"]}}, "'ppo' is not one of"),
        ({"train": {"lookback": [16, 16]}}, "lists a value twice"),
        ({"train": {"lr": {"low": 0.1, "high": 0.01}}}, "low must be below high"),
        ({"train": {"lr": {"lo": 0.1, "high": 0.2}}}, "a range is"),
        ({"train": {"objective": {"low": 0, "high": 1}}}, "a range needs a numeric key"),
        ({"seed": {"low": 0, "high": 3}}, "seed takes a list"),
    ],
)
def test_bad_sweep_files_are_refused_with_the_key_and_the_fix(doc, message) -> None:
    with pytest.raises(ConfigError, match=message):
        space(doc)


def test_a_range_is_searched_not_enumerated() -> None:
    s = space({"train": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}, "hidden_size": {"low": 8, "high": 32}}})
    assert s.ranges["dm.lr"].log and not s.ranges["dm.lr"].integer
    assert s.ranges["dm.hidden_size"].integer
    with pytest.raises(ConfigError, match="a range is searched, not enumerated") as exc:
        s.grid()
    assert "--samples N" in exc.value.hint


def test_the_selection_metric_is_one_a_trainer_selects_on(tmp_path) -> None:
    from mqc.core.sweep.runner import SweepRequest, plan

    grid = tmp_path / "g.toml"
    grid.write_text("dm.lookback = [16, 24]\n")
    req = SweepRequest(kind="dm", grid_file=grid, sweep_dir=tmp_path / "s", base=BASE, metric="sortino")
    assert plan(req).metric == "sortino"
    with pytest.raises(ConfigError, match="--metric: 'sharp' is not one of.*did you mean 'sharpe'"):
        plan(SweepRequest(kind="dm", grid_file=grid, sweep_dir=tmp_path / "s", base=BASE, metric="sharp"))
    assert not (tmp_path / "s").exists()
