"""``mqc.core.dates``: one check for every start/end field, wired into the configs."""

from __future__ import annotations

import pytest

from mqc.core.backtest.config import BacktestConfig
from mqc.core.data.config import DataConfig, FetchConfig
from mqc.core.dates import check_range, check_timestamp
from mqc.core.errors import ConfigError


@pytest.mark.parametrize(
    "good", ["2017-01-31", "2017-01-31 14:30", "2017-01-31T14:30:00Z", "2017-01-31T09:30:00-05:00", " 2020-02-29 "]
)
def test_accepts_dates_and_iso_times(good):
    assert check_timestamp(good, "data.start") == good.strip()


def test_none_passes_through():
    assert check_timestamp(None, "data.start") is None


@pytest.mark.parametrize("bad", ["yesterday", "notadate", "2017-13-45", "2019-02-29", "", "now"])
def test_rejects_with_field_value_and_formats(bad):
    with pytest.raises(ConfigError) as info:
        check_timestamp(bad, "backtest.start")
    assert "backtest.start" in str(info.value) and repr(bad) in str(info.value)
    assert "YYYY-MM-DD" in info.value.hint


def test_range_start_after_end():
    check_range("2020-01-01", "2020-01-01", "data")
    with pytest.raises(ConfigError, match="after end"):
        check_range("2021-01-01", "2020-01-01", "data")


@pytest.mark.parametrize("cls,table", [(DataConfig, "data"), (BacktestConfig, "backtest"), (FetchConfig, "fetch")])
def test_configs_validate_start_and_end(cls, table):
    assert cls(start="2015-01-01", end="2016-01-01").start == "2015-01-01"
    with pytest.raises(ConfigError, match=f"{table}.start: invalid date/time 'notadate'"):
        cls(start="notadate")
    with pytest.raises(ConfigError, match=f"{table}.end: invalid date/time '2017-13-45'"):
        cls(end="2017-13-45")


def test_iso_seconds_is_one_spelling_for_every_timestamp_type():
    import numpy as np
    import pandas as pd

    from mqc.core.dates import iso_day, iso_seconds

    ns = np.datetime64("2020-01-02T03:04:05.999", "ns")
    assert iso_seconds(ns) == "2020-01-02T03:04:05"  # cut to the second, never rounded up
    assert iso_seconds(int(ns.astype("int64"))) == "2020-01-02T03:04:05"
    assert iso_seconds(pd.Timestamp("2020-01-01 22:04:05", tz="America/New_York")) == "2020-01-02T03:04:05"
    assert iso_seconds("2020-01-02T03:04:05.5Z") == "2020-01-02T03:04:05"
    assert iso_day(np.datetime64("2020-01-02")) == "2020-01-02"
