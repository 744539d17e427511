"""load_panel / align: no back-fill, marked forward-fills, dropped rows reported; time_split embargo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import DataConfig
from mqc.core.data.panel import align_frames, load_panel, time_split
from mqc.core.errors import ArtifactNotFound, DataError


def _frame(dates, close):
    c = np.asarray(close, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(dates, utc=True),
            "open": c,
            "high": c * 1.01,
            "low": c * 0.99,
            "close": c,
            "volume": 10.0,
        }
    )


def test_align_never_backfills_and_marks_forward_fills():
    a = _frame(["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"], [1, 2, 3, 4, 5])
    b = _frame(["2020-01-02", "2020-01-04", "2020-01-05", "2020-01-06"], [20, 40, 50, 60])
    p = align_frames({"A": a, "B": b})
    # Starts at B's first bar (no back-fill), ends at A's last bar.
    assert [str(t)[:10] for t in p.timestamps] == ["2020-01-02", "2020-01-03", "2020-01-04", "2020-01-05"]
    assert p.filled.tolist() == [[False, False], [False, True], [False, False], [False, False]]
    # The filled bar repeats B's previous close with zero volume.
    assert p.values[1, 1].tolist() == [20, 20, 20, 20, 0]
    assert p.report.rows_before_common_start == {"A": 1, "B": 0}
    assert p.report.rows_after_common_end == {"A": 0, "B": 1}
    assert p.report.filled == {"A": 0, "B": 1}
    assert p.timestamps.dtype == np.dtype("datetime64[ns]")


def test_inner_align_drops_and_reports():
    a = _frame(["2020-01-01", "2020-01-02", "2020-01-03"], [1, 2, 3])
    b = _frame(["2020-01-01", "2020-01-03"], [10, 30])
    p = align_frames({"A": a, "B": b}, align="inner")
    assert len(p) == 2 and not p.filled.any() and p.report.dropped_timestamps == 1


def test_no_overlap_is_an_error():
    a = _frame(["2020-01-01", "2020-01-02"], [1, 2])
    b = _frame(["2021-01-01", "2021-01-02"], [1, 2])
    with pytest.raises(DataError, match=r"do not overlap \(A 2020-01-01..2020-01-02, B 2021-01-01..2021-01-02\)"):
        align_frames({"A": a, "B": b})


def test_load_panel_from_catalog_and_dates(tmp_path, synth):
    cat = Catalog(tmp_path / "cat")
    for sym, df in synth(n_assets=3, n_bars=120).items():
        cat.write(sym, df, source="synth")
    p = load_panel(("SYN0", "SYN2"), "1d", start="2015-02-01", end="2015-02-28", catalog=cat)
    assert p.symbols == ("SYN0", "SYN2") and p.values.shape == (28, 2, 5)
    assert p.report.sources["SYN0"] == "catalog:1d/SYN0"
    same = load_panel(config=DataConfig(symbols=("SYN0", "SYN2"), start="2015-02-01", end="2015-02-28"), catalog=cat)
    assert same.fingerprint == p.fingerprint
    everything = load_panel(catalog=cat)
    assert everything.symbols == ("SYN0", "SYN1", "SYN2")
    with pytest.raises(ArtifactNotFound, match="'SYN9' is not in the catalog"):
        load_panel(("SYN9",), catalog=cat)


def test_load_panel_from_data_root(tmp_path, synth):
    for sym, df in synth(n_assets=2, n_bars=60).items():
        df.to_csv(tmp_path / f"{sym}.csv", index=False)
    p = load_panel(config=DataConfig(symbols=("SYN1",), data_root=str(tmp_path)))
    assert p.symbols == ("SYN1",) and len(p) == 60


def test_time_split_embargo():
    s = time_split(1000, val_frac=0.1, test_frac=0.2, embargo=15)
    assert s.test == (800, 1000)
    assert s.val == (685, 785) and s.val[1] + 15 == s.test[0]
    assert s.train == (0, 670) and s.train[1] + 15 == s.val[0]
    with pytest.raises(DataError, match="too few"):
        time_split(50, 0.4, 0.4, embargo=10)
