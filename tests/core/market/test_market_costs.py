"""``--cost-bps`` and "fee" mean one thing everywhere: the commission; slippage is apart; cash pays none."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.market.costs import cost_line, cost_summary
from mqc.core.market.simulator import fee_rates
from mqc.core.profiles import set_value

CLASSES = ("equity", "crypto", "cash")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fee_is_the_commission_and_the_simulator_charges_fee_plus_slippage(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = MarketConfig(
        equity_fee_bps=float(rng.uniform(0, 20)),
        crypto_fee_bps=float(rng.uniform(0, 50)),
        cash_fee_bps=float(rng.uniform(0, 2)),
        slippage_bps=float(rng.uniform(0, 10)),
    )
    s = cost_summary(m, CLASSES)
    assert s["fee_bps"] == {"equity": m.equity_fee_bps, "crypto": m.crypto_fee_bps, "cash": m.cash_fee_bps}
    assert s["slippage_bps"] == {"equity": m.slippage_bps, "crypto": m.slippage_bps, "cash": 0.0}
    charged = fee_rates(CLASSES, m) * 1e4
    np.testing.assert_allclose(charged, [s["fee_bps"][c] + s["slippage_bps"][c] for c in CLASSES], rtol=1e-15)
    np.testing.assert_allclose(charged, [m.one_way_bps(c) for c in CLASSES], rtol=1e-15)


def test_cost_flag_sets_the_commission_of_every_non_cash_asset() -> None:
    m = MarketConfig(cash_fee_bps=0.5).with_cost(7.0, 3.0)
    assert MarketConfig.cost_fields(7.0, 3.0) == {
        "equity_fee_bps": 7.0,
        "crypto_fee_bps": 7.0,
        "slippage_bps": 3.0,
    }
    assert MarketConfig.cost_fields() == {}
    assert cost_summary(m, CLASSES)["fee_bps"] == {"equity": 7.0, "crypto": 7.0, "cash": 0.5}
    assert (
        cost_line(cost_summary(m, ("equity",), {"cost_bps": 7.0}))
        == "costs (fee+slippage per trade): equity 7+3 bps; overrides: --cost-bps 7"
    )


def test_train_cost_flag_resolves_to_the_backtest_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """``mqc train --cost-bps`` and ``mqc backtest --cost-bps`` set the same fields, the same way."""
    import typer.main

    from mqc.cli import app
    from mqc.commands._options import given
    from mqc.commands.train._common import resolve_common

    dm = typer.main.get_command(app).commands["train"].commands["dm"]
    ctx = dm.make_context("dm", ["--cost-bps", "9", "--slippage-bps", "4"])  # parsed as on the command line
    market = resolve_common(given(ctx))["market"]
    assert market.value == MarketConfig().with_cost(9.0, 4.0)
    assert market.sources["equity_fee_bps"] == market.sources["crypto_fee_bps"] == "flag"


def test_profile_key_example_names_a_real_key() -> None:
    with pytest.raises(ConfigError, match="TABLE.KEY") as info:
        set_value("p", "cost_bps", "5")
    example = re.search(r"e\.g\. (\S+)", str(info.value)).group(1)
    assert set_value("p", example, "5") == 5.0
