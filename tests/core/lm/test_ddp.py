"""``torchrun --nproc-per-node 2 -m mqc stage1``: two gloo CPU ranks equal one process with the same global batch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from tests.core.lm.conftest import random_walk, write_csv

from mqc.core import runs

ARGS = [
    *("--layers", "1", "--heads", "2", "--kv-heads", "1", "--embd", "32", "--seq-len", "32", "--vocab", "16"),
    *("--batch", "8", "--epochs", "1", "--eval-interval", "3", "--tokenizer-steps", "20", "--device", "cpu"),
    *("--muon-lr", "0.01", "--json", "--quiet"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], runs_dir: Path) -> dict:
    env = {**os.environ, "MQC_RUNS_DIR": str(runs_dir), "OMP_NUM_THREADS": "1"}
    src = Path(__file__).resolve().parents[3] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(res.stdout)


def test_two_gloo_ranks_equal_one_process(tmp_path: Path) -> None:
    root = tmp_path / "bars"
    root.mkdir()
    write_csv(root, "AAA", random_walk(300, 1))
    write_csv(root, "BBB", random_walk(300, 2))
    args = ["stage1", "--data-root", str(root), *ARGS]
    one = _run([sys.executable, "-m", "mqc", *args], tmp_path / "one")
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
    ]  # fmt: skip
    two = _run([*torchrun, "-m", "mqc", *args], tmp_path / "two")
    assert one["steps"] == two["steps"] > 1
    a = runs.read_checkpoint(runs.checkpoint_path(Path(one["run_dir"]), runs.LATEST))["state_dict"]
    b = runs.read_checkpoint(runs.checkpoint_path(Path(two["run_dir"]), runs.LATEST))["state_dict"]
    for k in a:
        # float tolerance: the all-reduce sums in another order, and Adam rescales tiny gradients
        torch.testing.assert_close(a[k], b[k], rtol=1e-3, atol=2e-4)
    assert abs(one["val_metrics"]["bits_per_candle"] - two["val_metrics"]["bits_per_candle"]) < 1e-4
    assert len(list((tmp_path / "two").rglob("config.json"))) == 1  # rank 0 alone wrote
