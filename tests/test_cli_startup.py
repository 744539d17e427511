"""``mqc --help`` stays fast: no torch / pandas at import, answers quickly (freqtrade-style check)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

CHECK = """
import json, sys, time
t = time.perf_counter()
import mqc.cli
from typer.testing import CliRunner
r = CliRunner().invoke(mqc.cli.app, ["--help"])
r2 = CliRunner().invoke(mqc.cli.app, ["data", "--help"])
print(json.dumps({"exit": [r.exit_code, r2.exit_code], "heavy": sorted(m for m in ("torch", "pandas", "numpy", "pyarrow") if m in sys.modules), "seconds": time.perf_counter() - t}))
"""


def test_help_imports_no_torch_or_pandas():
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=True)
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert data["exit"] == [0, 0]
    assert "torch" not in data["heavy"] and "pandas" not in data["heavy"], data["heavy"]


def test_help_answers_quickly():
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mqc", "--help"], capture_output=True, text=True, timeout=60)
    elapsed = time.perf_counter() - t
    assert out.returncode == 0 and "data" in out.stdout
    print(f"mqc --help: {elapsed:.2f}s")
    # Typically ~0.3 s; generous bound because the CI machine is shared.
    assert elapsed < 2.0
