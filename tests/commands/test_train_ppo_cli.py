"""``mqc train ppo``, ``mqc data features``, ``mqc data offline`` and ``mqc backtest --policy`` through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

pytest.importorskip("gymnasium")
pytest.importorskip("stable_baselines3")

runner = CliRunner()
TINY = ["--num-timesteps", "256", "--n-envs", "2", "--n-steps", "32", "--batch-size", "32", "--eval-freq", "128"]
TINY += ["--net-arch", "8", "--forecaster", "ewma-vol", "--episode-length", "16"]


@pytest.fixture
def data_root(synth, tmp_path: Path) -> Path:
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=400, seed=4).items():
        df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%d")).to_csv(root / f"{sym}.csv", index=False)
    return root


def _symbols(root: Path) -> str:
    return ",".join(sorted(p.stem for p in root.glob("*.csv")))


def test_train_ppo_then_backtest_the_checkpoint(data_root, tmp_path):
    res = runner.invoke(
        app, ["train", "ppo", "--data-root", str(data_root), *TINY, "--save-dir", str(tmp_path / "r"), "--json"]
    )
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["kind"] == "ppo" and result["steps"] == 256
    doc = json.loads((Path(result["run_dir"]) / "config.json").read_text())
    assert doc["configs"]["ppo"]["net_arch"] == {"value": [8], "source": "flag"}
    assert doc["configs"]["cube"]["forecaster"]["source"] == "flag"
    bt = runner.invoke(app, ["backtest", "--checkpoint", result["run_dir"], "--no-plots", "--json"])
    assert bt.exit_code == 0, bt.output
    metrics = json.loads(bt.stdout)["metrics"]
    assert metrics["sharpe"] == pytest.approx(result["test_metrics"]["sharpe"], rel=1e-12)


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["--forecaster", "nope"], 1, "unknown model"),
        (["--net-arch", "a,b"], 2, "--net-arch"),
        (["--vec-env", "nope"], 2, "nope"),
        (["--num-timesteps", "0"], 2, "num_timesteps"),
        (["--resume", "somewhere"], 1, "--resume continues the run"),  # a bad flag value: usage error
    ],
)
def test_train_ppo_bad_input(data_root, tmp_path, args, code, text):
    res = runner.invoke(
        app, ["train", "ppo", "--data-root", str(data_root), *TINY, *args, "--save-dir", str(tmp_path / "r")]
    )
    assert res.exit_code == code, res.output
    assert text in res.output
    assert not (tmp_path / "r").exists()


def test_data_features_builds_then_reuses(data_root):
    args = [
        "data",
        "features",
        "--data-root",
        str(data_root),
        "--symbols",
        _symbols(data_root),
        "--forecaster",
        "ewma-vol",
        "--json",
    ]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    meta = json.loads(first.stdout)
    assert not meta["cached"] and meta["names"][0] == "fc_mean" and meta["warmup"] == 60
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["cached"] and again["key"] == meta["key"]
    short = runner.invoke(app, [*args[:-1], "--end", "2015-02-10"])
    assert short.exit_code == 1 and "too few" in short.output


def test_data_offline_and_backtest_policy(data_root, tmp_path):
    syms = _symbols(data_root)
    out = tmp_path / "ds.npz"
    res = runner.invoke(
        app,
        [
            "data",
            "offline",
            "--policy",
            "kelly",
            "--data-root",
            str(data_root),
            "--symbols",
            syms,
            "--forecaster",
            "ewma-vol",
            "--out",
            str(out),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert out.is_file() and summary["transitions"] > 50 and summary["action_mode"] == "long"
    bad = runner.invoke(app, ["data", "offline", "--policy", "nope", "--symbols", syms, "--out", str(out)])
    assert bad.exit_code == 2
    bt = runner.invoke(
        app,
        [
            "backtest",
            "--policy",
            "topk",
            "--data-root",
            str(data_root),
            "--symbols",
            syms,
            "--forecaster",
            "ewma-vol",
            "--no-plots",
            "--json",
        ],
    )
    assert bt.exit_code == 0, bt.output
    rep = json.loads(bt.stdout)
    assert rep["source"]["type"] == "policy" and rep["segment"]["split"] == "test"
    two = runner.invoke(app, ["backtest", "--policy", "topk", "--weights", "x.csv"])
    assert two.exit_code == 2
