"""``mqc data validate --on-error repair`` on a file full of duplicate timestamps (docs/benchmarks-data.md).

Generates N rows of 1-minute bars where every timestamp appears twice (N/2 duplicates; default 1M
rows, 60 MB) in a temp dir, then runs the CLI once in a subprocess with ``-q``, as a user would, and
prints its wall time, peak memory (from ``resource``) and how many bytes it printed.

Usage: python bench/bench_data_repair.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_file(path: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    t = np.datetime64("2020-01-01T00:00:00", "s") + (np.arange(n) // 2) * np.timedelta64(60, "s")
    c = np.round(100 * np.exp(np.cumsum(rng.normal(0, 1e-4, n))), 4)
    stamps = np.char.add(np.datetime_as_string(t, unit="s"), "Z")
    with open(path, "w") as fh:
        fh.write("timestamp,open,high,low,close,volume\n")
        for a in range(0, n, 100_000):
            b = slice(a, a + 100_000)
            fh.writelines(
                f"{s},{x},{x * 1.0001:.4f},{x * 0.9999:.4f},{x},{v}\n"
                for s, x, v in zip(stamps[b].tolist(), c[b].tolist(), range(a, min(n, a + 100_000)), strict=True)
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "DUPS.csv"
        write_file(path, args.rows)
        env = {**os.environ, "MQC_DATA_DIR": str(Path(tmp) / "data")}
        t0 = time.perf_counter()
        res = subprocess.run(
            [sys.executable, "-m", "mqc", "-q", "data", "validate", str(path), "--on-error", "repair"],
            env=env,
            capture_output=True,
            check=False,
        )
        wall = time.perf_counter() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"rows {args.rows:,} ({path.stat().st_size / 1e6:.0f} MB): exit {res.returncode}, {wall:.2f} s, peak"
            f" {peak_mb:.0f} MB, stdout {len(res.stdout):,} bytes"
        )
        print(res.stdout.decode()[-400:])


if __name__ == "__main__":
    main()
