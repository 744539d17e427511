"""Value checks every config table shares (finite numbers, ranges, a memory estimate) and strict JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mqc.core import atomic, config
from mqc.core.errors import ConfigError, UsageError


def _strict(text: str):
    def refuse(token: str):
        raise ValueError(f"not JSON: {token}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    ("table", "values", "message"),
    [
        ("market", {"equity_fee_bps": math.inf}, "market.equity_fee_bps must be a finite number, got inf"),
        ("market", {"slippage_bps": math.nan}, "market.slippage_bps must be a finite number, got nan"),
        ("dm", {"lr": math.nan}, "dm.lr must be a finite number, got nan"),
        ("dm", {"steps": 1e29}, "dm.steps must be at most 100,000,000, got 1e+29"),
        ("dm", {"hidden_size": 1e15}, "dm.hidden_size must be at most 65,536, got 1e+15"),
        ("dm", {"hidden_size": 65536, "layers": 64}, "needs at least"),
        ("sharpe", {"epochs": math.inf}, "sharpe.epochs must be a finite number"),
        ("backtest", {"block_length": math.nan}, "backtest.block_length must be a finite number"),
        ("split", {"val_frac": math.nan}, "split.val_frac must be a finite number"),
        ("backtest", {"seed": 2**70}, "backtest.seed is out of range"),
    ],
)
def test_every_table_refuses_non_finite_and_absurd_values(table, values, message):
    cls = config.known_tables()[table]
    with pytest.raises(ConfigError, match=message.replace("+", r"\+").replace("(", r"\(")) as info:
        config.resolve(cls, profile=values, profile_name="p")
    assert not isinstance(info.value, UsageError) and info.value.hint
    flag = next(iter(values))
    with pytest.raises(UsageError):  # the same value as a flag is a usage error (exit 2)
        config.resolve(cls, flags={flag: values[flag]} if len(values) == 1 else values)


def test_memory_estimate_against_the_device():
    from mqc.core.train.config import DMTrainConfig, check_memory

    cfg = DMTrainConfig(hidden_size=16384)
    need = cfg.min_memory_bytes(n_inputs=40, n_assets=4)
    assert need > 16 * 6 * 16384**2  # 6 h^2 recurrent weights, 4 copies of 4 bytes
    with pytest.raises(ConfigError, match=r"needs at least .* GiB .*; memory of cpu: 1.0 GiB"):
        check_memory(cfg, need, 2**30, "memory of cpu")
    check_memory(DMTrainConfig(), DMTrainConfig().min_memory_bytes(40, 4), 2**30, "memory of cpu")  # the default fits


def test_json_writer_is_strict(tmp_path):
    obj = {
        "a": math.nan,
        "b": [math.inf, -math.inf, 1.5],
        "c": np.float32("nan"),
        "d": np.array([1.0, np.nan]),
        "e": (np.int64(3),),
    }
    path = tmp_path / "r.json"
    atomic.write_json(path, obj)
    assert _strict(path.read_text()) == {"a": None, "b": [None, None, 1.5], "c": None, "d": [1.0, None], "e": [3]}
    assert _strict(atomic.dumps({"x": float("nan")})) == {"x": None}


def test_costs_above_100_percent_are_refused():
    from mqc.core.market.config import MarketConfig

    with pytest.raises(ConfigError, match="market.slippage_bps must be at most 10,000, got 1e"):
        MarketConfig(slippage_bps=1e6)
    assert MarketConfig(equity_fee_bps=10_000).equity_fee_bps == 10_000
