"""The Ray backend: the same trials give the same results as the local pool; a dead address fails fast."""

from __future__ import annotations

import socket
import time

import pytest

from mqc.core.errors import ConfigError
from mqc.core.sweep.runner import SweepRequest, read_trials, run_sweep

ray = pytest.importorskip("ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ray_gives_the_same_trial_results_as_the_local_pool(sweep_file, base, tmp_path) -> None:
    grid = sweep_file("dm.lookback = [16, 24]\nseed = [0, 1]\n")
    common = dict(kind="dm", grid_file=grid, base=base, max_concurrent=2, test=False)
    run_sweep(SweepRequest(sweep_dir=tmp_path / "local", **common))
    assert not ray.is_initialized()
    run_sweep(SweepRequest(sweep_dir=tmp_path / "ray", backend="ray", **common))  # a local 2-CPU instance
    assert not ray.is_initialized()  # the instance it started is shut down
    local, remote = read_trials(tmp_path / "local"), read_trials(tmp_path / "ray")
    assert set(local) == set(remote) and len(local) == 4
    for key in local:
        assert remote[key]["status"] == local[key]["status"] == "ok"
        assert remote[key]["val"] == local[key]["val"]  # bit for bit: same seed, one thread per trial
        assert remote[key]["run_dir"].startswith(str(tmp_path / "ray" / "trials" / key))


def test_a_ray_address_that_does_not_answer_fails_within_seconds(sweep_file, base, tmp_path) -> None:
    grid = sweep_file("dm.lookback = [16]\n")
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="does not answer") as exc:
        run_sweep(
            SweepRequest(
                kind="dm",
                grid_file=grid,
                base=base,
                sweep_dir=tmp_path / "s",
                backend="ray",
                address=f"ray://127.0.0.1:{_free_port()}",
            )
        )
    assert time.perf_counter() - t0 < 10 and "ray start --head" in exc.value.hint
    assert not ray.is_initialized() and not (tmp_path / "s" / "trials.jsonl").exists()
