"""Daily bars written with UTC offsets land on their calendar date; Adj Close is flagged or applied;
load_panel warns about heavy forward-filling and refuses duplicate symbols under --data-root."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mqc.core.data.catalog import Catalog
from mqc.core.data.config import DataConfig, ImportConfig
from mqc.core.data.importer import import_paths
from mqc.core.data.panel import align_arrays, load_panel
from mqc.core.errors import DataError


def _daily(synth, n=300):
    df = synth(n_assets=2, n_bars=n, seed=3)
    return df["SYN0"], df["SYN1"]


def test_daily_file_with_offsets_lands_on_calendar_dates(tmp_path, synth):
    a, b = _daily(synth)
    a.assign(timestamp=a["timestamp"].dt.strftime("%Y-%m-%d")).to_csv(tmp_path / "SPY.csv", index=False)
    local = b["timestamp"].dt.tz_localize(None).dt.tz_localize("America/New_York")  # local midnight, -05:00 / -04:00
    b.assign(timestamp=local.map(lambda t: t.isoformat())).to_csv(tmp_path / "AAPL.csv", index=False)
    assert pd.read_csv(tmp_path / "AAPL.csv")["timestamp"].iloc[0].endswith(("-05:00", "-04:00"))
    cat = Catalog(tmp_path / "cat")
    res = import_paths([tmp_path / "SPY.csv", tmp_path / "AAPL.csv"], catalog=cat)
    notes = {i.symbol: [x for x in i.report.issues if x.kind == "calendar"] for i in res.items}
    assert notes["SPY"] == [] and len(notes["AAPL"]) == 1 and notes["AAPL"][0].action == "note"
    assert "300 daily timestamps" in notes["AAPL"][0].detail and "UTC offset" in notes["AAPL"][0].detail
    stored = cat.load("AAPL")["timestamp"]
    assert (stored == b["timestamp"]).all()  # midnight UTC of the local date
    panel = load_panel(["SPY", "AAPL"], "1d", catalog=cat)
    assert len(panel) == 300 and panel.report.filled == {"SPY": 0, "AAPL": 0} and panel.report.warnings == []


def test_intraday_offsets_are_converted_not_floored(tmp_path, synth):
    h = synth(n_assets=1, n_bars=50, timeframe="1h")["SYN0"]
    local = h["timestamp"].dt.tz_convert("Europe/Berlin")
    h.assign(timestamp=local.map(lambda t: t.isoformat())).to_csv(tmp_path / "EUR.csv", index=False)
    cat = Catalog(tmp_path / "cat")
    res = import_paths([tmp_path / "EUR.csv"], catalog=cat)
    assert not [x for x in res.items[0].report.issues if x.kind == "calendar"]
    assert (cat.load("EUR")["timestamp"] == h["timestamp"]).all()


def test_panel_warns_when_a_symbol_is_mostly_forward_filled():
    day = 86_400_000_000_000
    base = np.arange(100, dtype=np.int64) * day
    cols = {c: np.full(100, 10.0) for c in ("open", "high", "low", "close", "volume")}
    shifted = base + 5 * 3_600_000_000_000  # the same days, 05:00 UTC: every bar misaligned
    panel = align_arrays({"A": (base, cols), "B": (shifted, cols)})
    assert len(panel) == 198  # 99 real bars each, none shared
    assert any(w.startswith("A: 99 of 198 bars") for w in panel.report.warnings)
    assert "warnings" in panel.report.to_dict()
    ok = align_arrays({"A": (base, cols), "B": (base, cols)})
    assert ok.report.warnings == []


def _adj_file(tmp_path):
    p = tmp_path / "XYZ.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,10,11,9,10,9,100\n"
        "2024-01-03,10,12,10,11,9.9,100\n"
        "2024-01-04,11,12,10,12,10.8,100\n"
    )
    return p


def test_adj_close_is_flagged_by_default(tmp_path):
    cat = Catalog(tmp_path / "cat")
    res = import_paths([_adj_file(tmp_path)], catalog=cat)
    warn = [i for i in res.items[0].report.issues if i.kind == "adjusted"]
    assert len(warn) == 1 and warn[0].action == "warning" and "--adjusted" in warn[0].detail
    assert cat.load("XYZ")["close"].tolist() == [10, 11, 12] and cat.find("XYZ").adjustment == ""


def test_adjusted_import_scales_ohlc_by_adj_close(tmp_path):
    cat = Catalog(tmp_path / "cat")
    res = import_paths([_adj_file(tmp_path)], ImportConfig(adjusted=True), catalog=cat)
    assert not res.items[0].report.warnings
    df = cat.load("XYZ")
    np.testing.assert_allclose(df["close"], [9, 9.9, 10.8])
    np.testing.assert_allclose(df["open"], [9, 9, 9.9])
    np.testing.assert_allclose(df["high"], [9.9, 10.8, 10.8])
    assert df["volume"].tolist() == [100, 100, 100]
    assert "Adj Close" in cat.find("XYZ").adjustment


def test_data_root_duplicate_symbol_names_both_files(tmp_path, synth):
    a = synth(n_assets=1, n_bars=30)["SYN0"]
    root = tmp_path / "root"
    root.mkdir()
    a.to_csv(root / "AAA.csv", index=False)
    a.assign(symbol="AAA").to_csv(root / "long.csv", index=False)
    with pytest.raises(DataError, match=r"symbol AAA comes from two files: .*AAA\.csv and .*long\.csv"):
        load_panel(config=DataConfig(data_root=str(root)))
