"""Real bars from ../shared/data/ohlcv (skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from mqc.core.data.catalog import Catalog
from mqc.core.data.importer import import_paths, validate_paths
from mqc.core.data.panel import load_panel


@pytest.mark.slow
def test_daily_basket_imports_and_aligns(shared_ohlcv, tmp_path):
    files = [p for p in sorted((shared_ohlcv / "daily").glob("*.csv")) if "USD" not in p.stem]
    cat = Catalog(tmp_path / "cat")
    res = import_paths(files, catalog=cat)
    assert len(res.items) == 30 and all(i.report.repaired == 0 and i.report.dropped == 0 for i in res.items)
    panel = load_panel([i.symbol for i in res.items], "1d", catalog=cat)
    assert panel.values.shape[1] == 30
    # All 30 overlap from FB's listing (2012-05-18) to the S2 end (2017-11-10), per SOURCES.md.
    assert str(panel.timestamps[0])[:10] == "2012-05-18" and str(panel.timestamps[-1])[:10] == "2017-11-10"
    assert np.isfinite(panel.values).all() and (panel.values[..., :4] > 0).all()


def test_hourly_and_15min_validate_clean(shared_ohlcv):
    res = validate_paths([shared_ohlcv / "hourly" / "SPY.csv", shared_ohlcv / "15min" / "BTCUSDT.csv"])
    assert not res.errors
    tfs = {i.symbol: i.timeframe for i in res.items}
    assert tfs == {"SPY": "1h", "BTCUSDT": "15m"}
    assert all(i.report.repaired == 0 for i in res.items)
