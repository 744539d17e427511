"""Data-layer benchmarks (results in docs/benchmarks-data.md).

(a) Import + validate of an N-row 1-minute OHLCV CSV (default 5M rows) against a bare
    ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table`` of the same file, side by side in one run.
    Target: mqc throughput >= 0.8x the bare one.
(b) ``load_panel`` of the 30-symbol daily basket of ../shared/data/ohlcv/daily (imported into a
    temp catalog first): warm time, target < 0.5 s.

Usage: python bench/bench_data.py [--rows 5000000] [--repeat 2] [--skip-panel]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SHARED_DAILY = Path(__file__).resolve().parents[2] / "shared" / "data" / "ohlcv" / "daily"


def machine() -> str:
    model = "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        import torch

        tv = torch.__version__
    except ImportError:
        tv = "not installed"
    return f"{platform.platform()}; CPU {model}; {os.cpu_count()} cores; Python {platform.python_version()}; pyarrow {pa.__version__}; numpy {np.__version__}; torch {tv}"


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """A 1-minute OHLCV file (24/7, ISO-8601 UTC timestamps) written in chunks to bound memory."""
    rng = np.random.default_rng(seed)
    t0 = np.datetime64("2015-01-01T00:00:00", "s")
    price = 100.0
    with open(path, "wb") as fh:
        fh.write(b"timestamp,open,high,low,close,volume\n")
        for lo in range(0, rows, 1_000_000):
            n = min(1_000_000, rows - lo)
            ts = t0 + (lo + np.arange(n)).astype("timedelta64[m]")
            close = price * np.exp(np.cumsum(rng.normal(0, 5e-4, n)))
            open_ = np.concatenate([[price], close[:-1]])
            price = float(close[-1])
            high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 2e-4, n)))
            low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 2e-4, n)))
            table = pa.table({
                "timestamp": pa.array(np.char.add(ts.astype(str), "Z")),
                "open": np.round(open_, 4), "high": np.round(high, 4), "low": np.round(low, 4), "close": np.round(close, 4),
                "volume": np.round(rng.lognormal(3, 1, n), 3),
            })
            pacsv.write_csv(table, fh, pacsv.WriteOptions(include_header=False, quoting_style="none"))


def bare(csv_path: Path, out: Path) -> float:
    t = time.perf_counter()
    table = pacsv.read_csv(csv_path)
    pq.write_table(table, out)
    return time.perf_counter() - t


def mqc_import(csv_path: Path, root: Path) -> tuple[float, dict]:
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.importer import import_paths

    t = time.perf_counter()
    res = import_paths([csv_path], catalog=Catalog(root))
    elapsed = time.perf_counter() - t
    item = res.items[0]
    return elapsed, {"rows": item.rows, "status": item.status, "timeframe": item.timeframe, "issues": len(item.report.issues)}


def bench_import(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="mqc-bench-") as tmp:
        tmp = Path(tmp)
        csv_path = tmp / "BENCH.csv"
        t = time.perf_counter()
        make_csv(csv_path, rows)
        print(f"generated {rows:,} rows ({csv_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        bare_t, mqc_t = [], []
        for k in range(repeat):
            # Alternate the order so page-cache and CPU-contention effects hit both sides equally.
            runs = [("bare", lambda k=k: bare(csv_path, tmp / f"bare{k}.parquet")), ("mqc", lambda k=k: mqc_import(csv_path, tmp / f"cat{k}"))]
            for name, fn in (runs if k % 2 == 0 else runs[::-1]):
                r = fn()
                if name == "bare":
                    bare_t.append(r)
                else:
                    mqc_t.append(r[0])
                    info = r[1]
        b, m = min(bare_t), min(mqc_t)
        print(f"(a) bare pyarrow read_csv + write_table : best {b:.2f}s of {[round(x, 2) for x in bare_t]}  -> {rows / b / 1e6:.2f} M rows/s")
        print(f"    mqc import + validate + catalog      : best {m:.2f}s of {[round(x, 2) for x in mqc_t]}  -> {rows / m / 1e6:.2f} M rows/s  {info}")
        print(f"    throughput ratio mqc / bare = {b / m:.2f}x (target >= 0.80x)")


def bench_panel(repeat: int) -> None:
    if not SHARED_DAILY.is_dir():
        print(f"(b) skipped: {SHARED_DAILY} not found")
        return
    from mqc.core.data.catalog import Catalog
    from mqc.core.data.importer import import_paths
    from mqc.core.data.panel import load_panel

    files = [p for p in sorted(SHARED_DAILY.glob("*.csv")) if "USD" not in p.stem]  # the 30 stocks/ETFs
    with tempfile.TemporaryDirectory(prefix="mqc-bench-") as tmp:
        cat = Catalog(Path(tmp) / "cat")
        t = time.perf_counter()
        res = import_paths(files, catalog=cat)
        print(f"(b) imported {len(res.items)} daily symbols in {time.perf_counter() - t:.2f}s")
        symbols = [i.symbol for i in res.items]
        t = time.perf_counter()
        panel = load_panel(symbols, "1d", catalog=cat)
        cold = time.perf_counter() - t
        warm = []
        for _ in range(max(3, repeat * 3)):
            t = time.perf_counter()
            panel = load_panel(symbols, "1d", catalog=cat)
            warm.append(time.perf_counter() - t)
        print(f"    load_panel 30 symbols -> {panel.values.shape}: first {cold * 1e3:.0f} ms, warm best {min(warm) * 1e3:.0f} ms, "
              f"median {np.median(warm) * 1e3:.0f} ms (target < 500 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows of the 1-minute CSV (default 5M)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs of each side")
    ap.add_argument("--skip-panel", action="store_true")
    ap.add_argument("--skip-import", action="store_true")
    args = ap.parse_args()
    print(machine())
    if not args.skip_import:
        bench_import(args.rows, args.repeat)
    if not args.skip_panel:
        bench_panel(args.repeat)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
