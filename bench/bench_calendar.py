"""Calendar benchmarks: per-origin cost of a forecast's future timestamps, and the exchange calendar's
one-time costs (import, construction).

Run: ``python bench/bench_calendar.py``. One core; per-origin figures are CPU time (best of 5). The per-origin figure
is what Kronos feature
precompute and every forecast pay per symbol: learn the calendar from the trailing 500 bars, then
build ``horizon`` future timestamps from it (``core/forecast/kronos/features.py`` does exactly this).
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv"


def _stamps(timeframe: str, symbol: str) -> pd.DatetimeIndex:
    frame = pd.read_csv(SHARED / timeframe / f"{symbol}.csv")
    return pd.DatetimeIndex(pd.to_datetime(frame["timestamp"], utc=True))


def _per_origin_us(
    stamps: pd.DatetimeIndex,
    horizon: int,
    asset_class: str = "equity",
    tz: str = "America/New_York",
    origins: int = 400,
    same: bool = False,
) -> float:
    from mqc.core.forecast.calendar import future_timestamps, learn_calendar, utc_ns

    ns = utc_ns(stamps)
    # origins spread over the whole history in time order (Kronos precompute, forecast eval), or
    # one origin over and over (every cache warm: the best case)
    ends = np.full(origins, ns.size - 1) if same else np.linspace(600, ns.size - 1, origins).astype(int)

    def run() -> None:
        for t in ends:
            history = ns[t - 500 : t]
            cal = learn_calendar(history, asset_class=asset_class, tz=tz)
            future_timestamps(history[-2:], horizon, calendar=cal)

    run()  # warm: caches, lazy imports
    best = min(_timed(run) for _ in range(5))
    return best / origins * 1e6


def _timed(fn) -> float:
    """CPU seconds of ``fn`` (this process): steadier than wall time on a shared machine."""
    t = time.process_time()
    fn()
    return time.process_time() - t


def _fresh_process_seconds(code: str) -> float:
    """Best of 3 wall times of ``code`` in a fresh interpreter, minus an empty interpreter with pandas."""

    def once(c: str) -> float:
        out = subprocess.run(
            [sys.executable, "-c", f"import time,pandas;t=time.perf_counter();{c};print(time.perf_counter()-t)"],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(out.stdout.strip().splitlines()[-1])

    return min(once(code) for _ in range(3))


def main() -> None:
    print(
        f"# calendar benchmark: {platform.processor() or platform.machine()}, python {platform.python_version()},"
        f" pandas {pd.__version__}"
    )
    print("\n| workload (500-bar history -> future timestamps) | horizon | us per origin |")
    print("|---|---:|---:|")
    daily, hourly = _stamps("daily", "SPY"), _stamps("hourly", "SPY")
    crypto = _stamps("hourly", "BTCUSDT")
    for label, stamps, h, kw in (
        ("SPY daily, NYSE-aware, one origin repeated", daily, 48, {"same": True}),
        ("SPY daily, NYSE-aware", daily, 48, {}),
        ("SPY daily, weekdays only (Europe/London tz)", daily, 48, {"tz": "Europe/London"}),
        ("SPY hourly, NYSE-aware sessions, one origin repeated", hourly, 48, {"same": True}),
        ("SPY hourly, NYSE-aware sessions", hourly, 48, {}),
        ("SPY hourly, NYSE-aware sessions", hourly, 7, {}),
        ("BTCUSDT hourly, 24/7", crypto, 48, {"asset_class": "crypto"}),
    ):
        print(f"| {label} | {h} | {_per_origin_us(stamps, h, **kw):.0f} |")
    try:
        import exchange_calendars  # noqa: F401
    except ImportError:
        return
    imp = _fresh_process_seconds("import exchange_calendars")
    print(f"\nimport exchange_calendars (after pandas), fresh process: {imp * 1e3:.0f} ms")
    try:
        from mqc.core.calendar import exchange_calendar  # noqa: F401
    except ImportError:
        return
    build = _fresh_process_seconds(
        "import exchange_calendars;t=time.perf_counter();from mqc.core.calendar import"
        " exchange_calendar;exchange_calendar('XNYS').closed_days(0, 30000)"
    )
    print(f"first XNYS calendar (construction + precomputed arrays), fresh process: {build * 1e3:.0f} ms")


if __name__ == "__main__":
    main()
