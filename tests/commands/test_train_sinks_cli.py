"""Metric sinks (``--tensorboard DIR``, ``--wandb PROJECT``, the ``[log]`` table) through the CLI:
the files they write are read back and compared with metrics.jsonl, row by row."""

from __future__ import annotations

import json
import math
import struct
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
TINY = ["--lookback", "16", "--horizon", "8", "--batch-windows", "4", "--hidden-size", "8", "--steps", "4"]
TINY += ["--eval-interval", "2", "--rollout-groups", "2"]
SKIP = {"kind", "step", "best", "microbatch", "windows"}


@pytest.fixture
def data_root(synth, tmp_path: Path) -> Path:
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=320, seed=4).items():
        df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%d")).to_csv(root / f"{sym}.csv", index=False)
    return root


@pytest.fixture
def wandb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """W&B offline, writing under tmp_path (no network, no login)."""
    d = tmp_path / "wandb-home"
    d.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(d))
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(d / "config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(d / "cache"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    wandb = pytest.importorskip("wandb")
    wandb.teardown()  # the process-wide W&B settings are read once: start from this test's variables
    yield d
    wandb.teardown()


def expected(rows: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """The (step, value) series each sink must hold: every finite number of every metrics.jsonl row."""
    out: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        prefix = "val" if row["kind"] == "eval" else row["kind"]
        for k, v in row.items():
            if k in SKIP or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                continue
            out.setdefault(f"{prefix}/{k.removeprefix('eval_')}", []).append((row["step"], float(v)))
    return out


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]


def tensorboard_scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalars of the TensorBoard event files in ``logdir`` (TFRecord: length, crc, Event, crc)."""
    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    files = sorted(logdir.glob("events.out.tfevents.*"))
    assert files, f"no event files in {logdir}"
    for f in files:
        data, i = f.read_bytes(), 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def wandb_runs(wandb_dir: Path, timeout: float = 20.0) -> list[dict[str, Any]]:
    """``read_wandb_runs`` once every run's file is complete (W&B's service process writes it
    asynchronously; its last record is the run's exit)."""
    deadline = time.monotonic() + timeout
    while True:
        found = read_wandb_runs(wandb_dir)
        if (found and all("exit_code" in r for r in found)) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def read_wandb_runs(wandb_dir: Path) -> list[dict[str, Any]]:
    """Each offline W&B run under ``wandb_dir``: its project, group, name and history rows, read from the
    run's .wandb file (LevelDB-style log: 7-byte header, 32 KiB blocks of crc/length/type records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    found = []
    for f in sorted(wandb_dir.glob("wandb/offline-run-*/run-*.wandb")):
        data = f.read_bytes()
        assert data[:4] == b":W&B"
        pos, block, buf = 7, 32768, b""
        run: dict[str, Any] = {"history": []}
        while pos + 7 <= len(data):
            left = block - pos % block
            if left < 7:
                pos += left
                continue
            _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
            if length == 0 and kind == 0:
                pos += left
                continue
            buf += data[pos + 7 : pos + 7 + length]
            pos += 7 + length
            if kind not in (1, 4):  # FIRST/MIDDLE pieces of a record: keep reading
                continue
            try:
                rec = pb.Record.FromString(buf)
            except Exception:  # a record still being written
                break
            buf = b""
            which = rec.WhichOneof("record_type")
            if which == "run":
                run.update(project=rec.run.project, group=rec.run.run_group, name=rec.run.display_name)
            elif which == "exit":
                run["exit_code"] = rec.exit.exit_code
            elif which == "history":
                run["history"].append(
                    {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                )
        found.append(run)
    return found


def wandb_series(history: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for h in history:
        for k, v in h.items():
            if "/" in k:
                out.setdefault(k, []).append((h["step"], v))
    return out


def same(got: dict[str, list[tuple[int, float]]], want: dict[str, list[tuple[int, float]]], rel: float) -> None:
    assert sorted(got) == sorted(want)
    for tag, series in want.items():
        assert [s for s, _ in got[tag]] == [s for s, _ in series], tag
        assert [v for _, v in got[tag]] == pytest.approx([v for _, v in series], rel=rel, abs=1e-12), tag


def test_train_dm_writes_tensorboard_and_wandb_equal_to_metrics_jsonl(data_root, tmp_path, wandb_dir) -> None:
    pytest.importorskip("tensorboardX")
    pytest.importorskip("wandb")
    tb = tmp_path / "tb"
    args = ["train", "dm", "--data-root", str(data_root), "--save-dir", str(tmp_path / "runs"), *TINY, "--json"]
    res = runner.invoke(app, [*args, "--tensorboard", str(tb), "--wandb", "mqc-test"])
    assert res.exit_code == 0, res.output
    run_dir = Path(json.loads(res.stdout)["run_dir"])
    rows = read_metrics(run_dir)
    want = expected(rows)
    assert {r["kind"] for r in rows} == {"train", "eval"} and "val/sharpe" in want and "train/loss" in want
    (logdir,) = tb.iterdir()  # one run: one subfolder named like its run directory
    assert logdir.name == run_dir.name
    same(tensorboard_scalars(logdir), want, rel=1e-6)  # event files hold float32
    (run,) = wandb_runs(wandb_dir)
    assert run["project"] == "mqc-test" and run["name"] == logdir.name
    same(wandb_series(run["history"]), want, rel=1e-12)


def test_the_log_table_resolves_like_every_table(tmp_path, monkeypatch) -> None:
    from mqc.core.config import resolve
    from mqc.core.train.config import LogConfig

    prof = {"tensorboard": "from-profile", "wandb": "p", "wandb_group": "g", "wandb_mode": "offline"}
    got = resolve(LogConfig, profile=prof, profile_name="x", env={"MQC_LOG_WANDB": "env"}, flags={"tensorboard": "f"})
    assert got.value == LogConfig(tensorboard="f", wandb="env", wandb_group="g", wandb_mode="offline")
    assert got.sources["tensorboard"] == "flag" and got.sources["wandb"] == "env:MQC_LOG_WANDB"
    assert got.sources["wandb_group"] == "profile:x"
    assert resolve(LogConfig, env={}).value.active is False


def test_a_profile_log_table_feeds_the_sinks_without_flags(data_root, tmp_path) -> None:
    pytest.importorskip("tensorboardX")
    prof = tmp_path / "mqc-config" / "profiles"
    prof.mkdir(parents=True)
    (prof / "tb.toml").write_text(f'[log]\ntensorboard = "{tmp_path / "tb"}"\n')
    args = ["--profile", "tb", "train", "sharpe", "--data-root", str(data_root), "--save-dir", str(tmp_path / "r")]
    res = runner.invoke(app, [*args, "--lookback", "4", "--horizon", "16", "--hidden-size", "8", "--steps", "3"])
    assert res.exit_code == 0, res.output
    (logdir,) = (tmp_path / "tb").iterdir()
    (run_dir,) = (tmp_path / "r").iterdir()
    assert logdir.name == run_dir.name
    same(tensorboard_scalars(logdir), expected(read_metrics(run_dir)), rel=1e-6)


def test_train_ppo_rows_reach_the_same_sinks(tmp_path, synth) -> None:
    pytest.importorskip("tensorboardX")
    pytest.importorskip("stable_baselines3")
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=400, seed=4).items():
        df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%d")).to_csv(root / f"{sym}.csv", index=False)
    tiny = ["--num-timesteps", "128", "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--eval-freq", "64"]
    tiny += ["--net-arch", "8", "--forecaster", "ewma-vol", "--episode-length", "16"]
    res = runner.invoke(
        app,
        ["train", "ppo", "--data-root", str(root), *tiny, "--save-dir", str(tmp_path / "r"), "--json"]
        + ["--tensorboard", str(tmp_path / "tb")],
    )
    assert res.exit_code == 0, res.output
    run_dir = Path(json.loads(res.stdout)["run_dir"])
    rows = read_metrics(run_dir)
    (logdir,) = (tmp_path / "tb").iterdir()
    assert logdir.name == run_dir.name
    want = expected(rows)
    assert "val/sharpe" in want and any(t.startswith("train/") for t in want)
    same(tensorboard_scalars(logdir), want, rel=1e-6)


def test_sweep_trials_get_one_tensorboard_folder_each_and_one_wandb_group(tmp_path, wandb_dir) -> None:
    pytest.importorskip("tensorboardX")
    pytest.importorskip("wandb")
    from mqc.core.data.synth import SynthSpec, write_synth_csv

    write_synth_csv(SynthSpec(n_assets=2, n_bars=300, seed=3), tmp_path / "bars")
    grid = tmp_path / "sweep.toml"
    grid.write_text(
        "features.vol_windows = [5]\nfeatures.momentum_windows = [5]\nfeatures.volume_window = 5\n"
        "dm.steps = 4\ndm.eval_interval = 2\ndm.batch_windows = 2\ndm.rollout_groups = 2\ndm.horizon = 8\n"
        "dm.hidden_size = 8\ndm.lookback = [16, 24]\n"
    )
    args = ["sweep", "train", "dm", "--grid", str(grid), "--data-root", str(tmp_path / "bars")]
    args += ["--max-concurrent", "1", "--sweep-dir", str(tmp_path / "sd"), "--json"]
    res = runner.invoke(app, [*args, "--tensorboard", str(tmp_path / "tb"), "--wandb", "mqc-sweep"])
    assert res.exit_code == 0, res.output
    trials = [json.loads(line) for line in (tmp_path / "sd" / "trials.jsonl").read_text().splitlines()]
    assert len(trials) == 2 and {t["status"] for t in trials} == {"ok"}
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(t["trial"] for t in trials)
    runs_ = {r["name"]: r for r in wandb_runs(wandb_dir)}
    assert sorted(runs_) == sorted(t["trial"] for t in trials)
    for t in trials:
        want = expected(read_metrics(Path(t["run_dir"])))
        same(tensorboard_scalars(tmp_path / "tb" / t["trial"]), want, rel=1e-6)
        run = runs_[t["trial"]]
        assert run["project"] == "mqc-sweep" and run["group"] == "sd"
        same(wandb_series(run["history"]), want, rel=1e-12)


def test_a_missing_sink_says_what_to_install_before_training(data_root, tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    args = ["train", "dm", "--data-root", str(data_root), "--save-dir", str(tmp_path / "runs"), *TINY]
    res = runner.invoke(app, [*args, "--wandb", "p"])
    assert res.exit_code == 1 and "pip install wandb" in res.output
    assert not (tmp_path / "runs").exists()  # nothing trained


def test_an_empty_sink_name_is_refused() -> None:
    from mqc.core.errors import ConfigError
    from mqc.core.train.config import LogConfig

    with pytest.raises(ConfigError, match="log.wandb is empty"):
        LogConfig(wandb="  ")


def test_ctrl_c_closes_the_sinks_with_the_rows_so_far(tmp_path, wandb_dir) -> None:
    pytest.importorskip("tensorboardX")
    pytest.importorskip("wandb")
    from mqc.core.train import harness
    from mqc.core.train.config import LogConfig
    from mqc.core.train.sinks import metric_sinks

    (tmp_path / "run").mkdir()
    rows = [{"kind": "train", "step": 1, "loss": 0.5}, {"kind": "eval", "step": 1, "best": True, "eval_sharpe": 1.25}]
    with pytest.raises(KeyboardInterrupt), metric_sinks(LogConfig(tensorboard=str(tmp_path / "tb"), wandb="p"), "r"):
        for row in rows:
            harness.log_metrics("dm", tmp_path / "run", row)
        raise KeyboardInterrupt
    assert harness._METRICS_LISTENERS == []
    want = {"train/loss": [(1, 0.5)], "val/sharpe": [(1, 1.25)]}
    same(tensorboard_scalars(tmp_path / "tb" / "r"), want, rel=1e-6)
    (run,) = wandb_runs(wandb_dir)
    same(wandb_series(run["history"]), want, rel=1e-12)
    assert run["exit_code"] == 1  # finished, marked as failed
