"""``mqc data show`` reports a symbol's figures as a backtest does: through the one metrics module.

Its volatility used to be that of log returns (a second definition): on volatile bars it disagreed
with the buy-and-hold figures of ``mqc backtest``. Now they are the same numbers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mqc.core.backtest.engine import run_backtest
from mqc.core.data.catalog import Catalog
from mqc.core.data.importer import import_paths
from mqc.core.data.panel import align_arrays
from mqc.core.data.summary import summarize
from mqc.core.market.config import MarketConfig


@pytest.mark.parametrize("timeframe", ["1d", "1h"])
def test_show_figures_equal_a_buy_and_hold_backtest(tmp_path, synth, timeframe: str) -> None:
    df = synth(n_assets=1, n_bars=300, timeframe=timeframe, seed=5)["SYN0"]
    path = tmp_path / "AAA.csv"
    df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(path, index=False)
    cat = Catalog(tmp_path / "cat")
    import_paths([path], catalog=cat)
    stats = summarize("AAA", catalog=cat).stats

    _, ts, cols = cat.load_arrays("AAA")
    panel = align_arrays({"AAA": (ts, cols)}, asset_classes={"AAA": "equity"})
    free = MarketConfig(equity_fee_bps=0.0, slippage_bps=0.0, financing_rate=0.0)
    report = run_backtest(panel, np.ones((len(panel), 1)), free).metrics  # enter at the first close, hold

    assert math.isclose(stats["total_return"], report["total_return"], rel_tol=1e-9)
    assert math.isclose(stats["annual_return"], report["annual_return"], rel_tol=1e-9)
    assert math.isclose(stats["annual_volatility"], report["volatility"], rel_tol=1e-9)
    assert math.isclose(stats["max_drawdown"], report["max_drawdown"], rel_tol=1e-9)
    logr = np.diff(np.log(cols["close"]))
    assert (
        abs(stats["annual_volatility"] - logr.std(ddof=1) * math.sqrt(stats["bars_per_year"])) > 1e-6
    )  # not the old figure
