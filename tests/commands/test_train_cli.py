"""``mqc train dm|sharpe`` through the real CLI: exit codes, JSON, profiles, errors, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mqc.cli import app

runner = CliRunner()
TINY = [
    "--lookback",
    "16",
    "--horizon",
    "8",
    "--batch-windows",
    "4",
    "--hidden-size",
    "8",
    "--steps",
    "4",
    "--eval-interval",
    "2",
]


@pytest.fixture
def data_root(synth, tmp_path: Path) -> Path:
    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=3, n_bars=320, seed=4).items():
        df.assign(timestamp=df["timestamp"].dt.strftime("%Y-%m-%d")).to_csv(root / f"{sym}.csv", index=False)
    return root


def test_train_dm_json_end_to_end(data_root: Path, tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "train",
            "dm",
            "--data-root",
            str(data_root),
            "--save-dir",
            str(tmp_path / "runs"),
            *TINY,
            "--rollout-groups",
            "3",
            "--objective",
            "grpo",
            "--cost-bps",
            "10",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    run = Path(out["run_dir"])
    assert out["kind"] == "dm" and out["steps"] == 4 and "sharpe" in out["test_metrics"]
    doc = json.loads((run / "config.json").read_text())
    assert doc["configs"]["market"]["equity_fee_bps"] == {"value": 10.0, "source": "flag"}
    assert doc["configs"]["dm"]["objective"]["value"] == "grpo"
    assert doc["command_line"].startswith("mqc")
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "report.json").is_file()


def test_train_sharpe_reads_a_profile_and_renders_a_table(data_root: Path, tmp_path: Path) -> None:
    prof = tmp_path / "mqc-config" / "profiles"
    prof.mkdir(parents=True)
    (prof / "tiny.toml").write_text(
        f'[data]\ndata_root = "{data_root}"\n[sharpe]\nsteps = 3\neval_interval = 3\nlookback = 2\nhorizon ='
        f' 16\nhidden_size = 8\nsave_dir = "{tmp_path / "runs"}"\n'
    )
    res = runner.invoke(app, ["--profile", "tiny", "train", "sharpe", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "TEST (once)" in res.stdout and "run directory" in res.stdout
    assert "test segment: " in res.stdout and "costs (fee+slippage per trade): equity 1+2 bps" in res.stdout
    run = Path(res.stdout.split("run directory:")[1].split()[0])
    doc = json.loads((run / "config.json").read_text())
    assert doc["configs"]["sharpe"]["steps"] == {"value": 3, "source": "profile:tiny"}


def test_resume_from_the_cli(data_root: Path, tmp_path: Path) -> None:
    from mqc.core.data.config import DataConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.config import DMTrainConfig
    from mqc.core.train.dm import DMTrainer

    panel = load_panel(config=DataConfig(data_root=str(data_root)))
    cfg = DMTrainConfig(
        lookback=16, horizon=8, batch_windows=4, hidden_size=8, steps=6, eval_interval=2, save_dir=str(tmp_path)
    )
    killed = DMTrainer(panel, MarketConfig(), cfg, data_cfg=DataConfig(data_root=str(data_root))).fit(stop_after=2)
    res = runner.invoke(app, ["train", "dm", "--resume", str(killed.run_dir), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["steps"] == 6
    # options given with --resume are errors naming them, and the kind must match
    res = runner.invoke(app, ["train", "dm", "--resume", str(killed.run_dir), "--steps", "500", "--long-only"])
    assert res.exit_code == 1 and "--steps" in res.output and "--enable-shorting/--long-only" in res.output
    res = runner.invoke(app, ["train", "sharpe", "--resume", str(killed.run_dir)])
    assert res.exit_code == 1 and "is a dm run" in " ".join(res.output.split())


def test_relative_data_root_is_stored_absolute(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(data_root.parent)
    res = runner.invoke(
        app,
        [
            "train",
            "sharpe",
            "--data-root",
            "bars",
            "--save-dir",
            str(tmp_path / "runs"),
            "--lookback",
            "2",
            "--horizon",
            "16",
            "--hidden-size",
            "8",
            "--steps",
            "2",
            "--eval-interval",
            "2",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    run = Path(json.loads(res.stdout)["run_dir"])
    doc = json.loads((run / "config.json").read_text())
    assert doc["configs"]["data"]["data_root"]["value"] == str(data_root.resolve())
    other = tmp_path / "elsewhere"
    other.mkdir()
    monkeypatch.chdir(other)
    monkeypatch.setenv("MQC_MARKET_SLIPPAGE_BPS", "9")  # a [market] setting a checkpoint backtest does not apply
    res = runner.invoke(
        app, ["backtest", "--checkpoint", str(run), "--no-plots", "--out", str(tmp_path / "bt"), "--json"]
    )
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["segment"]["market_config_ignored"] == ["slippage_bps"] and rep["market"]["slippage_bps"] == 2.0
    assert "[market] settings (slippage_bps) are ignored" in " ".join(res.stderr.split())
    res = runner.invoke(
        app,
        ["backtest", "--checkpoint", str(run), "--start", "2000-01-01", "--no-plots", "--out", str(tmp_path / "bt2")],
    )
    assert res.exit_code == 1 and "outside the test split, which covers" in " ".join(res.output.split())


def test_missing_symbol_is_one_clear_error() -> None:
    res = runner.invoke(app, ["train", "dm", "--symbols", "NOPE", "--steps", "1"])
    assert res.exit_code == 1
    assert "NOPE" in res.output and "Traceback" not in res.output


def test_too_few_bars_and_bad_values(data_root: Path) -> None:
    res = runner.invoke(app, ["train", "dm", "--data-root", str(data_root), "--lookback", "400"])
    assert res.exit_code == 1 and "too few" in res.output and "--lookback" in " ".join(res.output.split())
    res = runner.invoke(app, ["train", "dm", "--data-root", str(data_root), "--objective", "ppo"])
    assert res.exit_code == 2 and "grpo" in res.output and "ppo" in res.output
    res = runner.invoke(app, ["train", "dm", "--data-root", str(data_root), "--dtype", "fp8"])
    assert res.exit_code == 2 and "bf16" in res.output
    res = runner.invoke(app, ["train", "sharpe", "--data-root", str(data_root), "--steps", "0"])
    assert (
        res.exit_code == 2 and "steps" in res.output and "hint: pass a positive --steps" in res.output
    )  # bad flag value
    res = runner.invoke(app, ["train", "dm", "--resume", str(data_root)])
    assert res.exit_code == 1 and "not a training run directory" in " ".join(res.output.split())


def test_help_does_not_import_torch() -> None:
    code = "import sys, mqc.cli; assert 'torch' not in sys.modules and 'pandas' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert runner.invoke(app, ["train", "dm", "--help"]).exit_code == 0


def test_ctrl_c_names_the_resume_command_and_resume_says_where(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mqc.core.train.dm import DMTrainer

    real = DMTrainer.train_step
    calls = {"n": 0}

    def interrupted_at_step_3(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(DMTrainer, "train_step", interrupted_at_step_3)
    res = runner.invoke(
        app, ["train", "dm", "--data-root", str(data_root), "--save-dir", str(tmp_path / "runs"), *TINY]
    )
    assert res.exit_code == 130
    run = next((tmp_path / "runs").iterdir())
    err = " ".join(res.stderr.split())
    assert f"stopped at step 3 of 4; run directory {run}" in err
    assert f"continue from its last checkpoint (step 2): mqc train dm --resume {run}" in err and "interrupted" in err
    monkeypatch.setattr(DMTrainer, "train_step", real)
    res = runner.invoke(app, ["train", "dm", "--resume", str(run)])
    assert res.exit_code == 0, res.output
    said = " ".join(res.output.split())
    assert f"resumed at step 2 of 4 from {run / 'checkpoints' / 'latest.pt'}" in said
    # turnover in percent, as the backtest prints it
    row = next(line for line in res.stdout.splitlines() if "turnover" in line)
    assert row.count("%") >= 2, row


def test_ctrl_c_before_the_first_checkpoint_says_start_anew(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mqc.core.train.dm import DMTrainer

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(DMTrainer, "train_step", interrupted)
    res = runner.invoke(
        app, ["train", "dm", "--data-root", str(data_root), "--save-dir", str(tmp_path / "runs"), *TINY]
    )
    assert res.exit_code == 130
    assert "no checkpoint yet" in " ".join(res.stderr.split())


@pytest.fixture
def killed_run(data_root: Path, tmp_path: Path) -> Path:
    from mqc.core.data.config import DataConfig
    from mqc.core.data.panel import load_panel
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.config import DMTrainConfig
    from mqc.core.train.dm import DMTrainer

    panel = load_panel(config=DataConfig(data_root=str(data_root)))
    cfg = DMTrainConfig(
        lookback=16,
        horizon=8,
        batch_windows=4,
        hidden_size=8,
        steps=6,
        eval_interval=2,
        save_dir=str(tmp_path / "runs"),
    )
    return (
        DMTrainer(panel, MarketConfig(), cfg, data_cfg=DataConfig(data_root=str(data_root))).fit(stop_after=2).run_dir
    )


def _resume_error(run: Path) -> str:
    res = runner.invoke(app, ["train", "dm", "--resume", str(run)])
    assert res.exit_code == 1, res.output
    text = " ".join(res.output.split())
    assert "internal error" not in text and "Traceback" not in text
    return text


def test_best_pt_over_latest_pt_is_a_clear_resume_error(killed_run: Path) -> None:
    ckpts = killed_run / "checkpoints"
    (ckpts / "latest.pt").write_bytes((ckpts / "best.pt").read_bytes())
    text = _resume_error(killed_run)
    assert f"{ckpts / 'latest.pt'}: holds no training state" in text
    assert f"--init-checkpoint {ckpts / 'best.pt'}" in text
    (ckpts / "latest.pt").write_bytes(b"torn")  # a damaged latest.pt: the hint never says to copy best.pt over it
    text = _resume_error(killed_run)
    assert "not a readable mqc checkpoint" in text and f"--init-checkpoint {ckpts / 'best.pt'}" in text
    assert "use the run's checkpoints/best.pt" not in text


def test_garbled_config_json_is_a_clear_resume_error(killed_run: Path) -> None:
    path = killed_run / "config.json"
    path.write_text(path.read_text()[:-40])
    text = _resume_error(killed_run)
    assert f"{path}: not valid JSON" in text and "restore config.json" in text
    path.write_text('{"kind": "dm"}')
    assert "not an mqc run config" in _resume_error(killed_run)


def test_non_utf8_metrics_line_is_a_clear_resume_error(killed_run: Path) -> None:
    path = killed_run / "metrics.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0][:5] + b"\xff" + lines[0][5:]
    path.write_bytes(b"\n".join(lines))
    text = _resume_error(killed_run)
    assert f"{path}: line 1 is not UTF-8 text (byte 0xff at column 6)" in text and "delete or fix that line" in text


def test_absurd_profile_values_are_clear_errors_before_training(data_root: Path, tmp_path: Path) -> None:
    prof = tmp_path / "mqc-config" / "profiles"
    prof.mkdir(parents=True)
    runs = tmp_path / "runs"
    cases = {
        "[market]\nequity_fee_bps = inf\n": "market.equity_fee_bps must be a finite number, got inf",
        "[dm]\nsteps = 1e29\n": "dm.steps must be at most 100,000,000",
        "[dm]\nlr = nan\n": "dm.lr must be a finite number, got nan",
        "[train]\nhidden_size = 1e15\n": "dm.hidden_size must be at most 65,536",  # the old table name: same check
    }
    for body, message in cases.items():
        (prof / "bad.toml").write_text(body)
        res = runner.invoke(
            app, ["--profile", "bad", "train", "dm", "--data-root", str(data_root), "--save-dir", str(runs)]
        )
        text = " ".join(res.output.split())
        assert res.exit_code == 1 and message in text and "internal error" not in text, text
        assert "hint: fix the option that sets it, [" in text
    assert not runs.exists()  # refused before a run directory was made
    # a size below the caps that this machine cannot hold: the trainer's memory estimate
    res = runner.invoke(
        app,
        [
            "train",
            "dm",
            "--data-root",
            str(data_root),
            "--save-dir",
            str(runs),
            "--hidden-size",
            "65536",
            "--layers",
            "8",
            "--lookback",
            "16",
        ],
    )
    text = " ".join(res.output.split())
    assert res.exit_code == 1 and "needs at least" in text and "memory of cpu" in text, text
