"""The stage 1 -> 4 chain on a tiny model: defaults of --in, checkpoints, known answer, determinism, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from tests.core.lm.conftest import TINY, TINY_MODEL

from mqc.core import runs
from mqc.core.data.config import DataConfig, SplitConfig
from mqc.core.errors import ArtifactNotFound, CheckpointError, ConfigError, DataError
from mqc.core.lm.config import Stage1Config, Stage2Config, Stage3Config, Stage4Config
from mqc.core.lm.gpt import GPT, GPTConfig
from mqc.core.lm.stages import run_stage1, run_stage2, run_stage3, run_stage4
from mqc.core.lm.tokenizer import CandleTokenizer
from mqc.core.market.config import MarketConfig


def _stage1(root: Path, **kw) -> object:
    cfg = Stage1Config(**{**TINY, **TINY_MODEL, "epochs": 2.0, **kw})
    return run_stage1(DataConfig(data_root=str(root)), SplitConfig(), cfg)


def test_chain_stage1_to_4(csv_root: Path) -> None:
    r1 = _stage1(csv_root)
    assert r1.train.val_metrics["bits_per_candle"] > 0 and set(r1.reports["tokenizer"]) == {"vq", "bsq", "fsq"}
    streams = np.load(r1.train.run_dir / "tokens.npz")
    assert set(streams.files) == {"train", "val", "test", "symbols"} and streams["val"][0] == 16  # separator first
    r2 = run_stage2(Stage2Config(**TINY, epochs=1.0), symbols=["AAA"])
    assert r2.source == str(r1.train.best_checkpoint)  # --in defaulted to the latest stage-1 run
    assert "bits_per_candle_other" in r2.reports["before"] and "bits_per_candle_other" in r2.reports["after"]
    r3 = run_stage3(Stage3Config(**TINY, epochs=0.2, context_len=24, horizon=6))
    assert r3.source == str(r2.train.best_checkpoint)
    assert {"horizon_bits", "token_acc", "path_rmse", "zero_rmse"} <= set(r3.train.test_metrics)
    r4 = run_stage4(
        Stage4Config(**{**TINY, "eval_interval": 2}, steps=4, batch_episodes=2, eval_episodes=4), MarketConfig()
    )
    assert r4.source == str(r3.train.best_checkpoint)
    assert {"reward", "pnl_per_episode", "long_pnl_per_episode"} <= set(r4.train.test_metrics)
    rows = runs.read_metrics(r4.train.run_dir)
    assert any("entropy" in r and "kl" in r for r in rows)
    for r in (r1, r2, r3, r4):
        # every checkpoint loads with weights_only=True and rebuilds the model and the tokenizer
        raw = torch.load(r.train.best_checkpoint, weights_only=True)
        model = GPT(GPTConfig(**raw["gpt_config"]))
        model.load_state_dict(raw["state_dict"])
        CandleTokenizer.from_state(raw["tokenizer"])
        assert (r.train.run_dir / runs.REPORT).is_file()


def test_bad_inputs_name_the_fix(csv_root: Path) -> None:
    with pytest.raises(ArtifactNotFound, match="no stage1 run") as exc:
        run_stage2(Stage2Config(**TINY), symbols=["AAA"])
    assert "mqc stage1 first" in exc.value.hint
    r1 = _stage1(csv_root, epochs=0.5)
    with pytest.raises(CheckpointError, match="stage4 --in takes a stage3 run"):
        run_stage4(Stage4Config(**TINY, in_run=str(r1.train.run_dir)), MarketConfig())
    with pytest.raises(CheckpointError, match="--vocab"):
        _stage1(csv_root, vocab=32, tokenizer=str(r1.train.run_dir))
    with pytest.raises(ConfigError, match="--symbols"):
        run_stage2(Stage2Config(**TINY))
    with pytest.raises(DataError, match="not in the loaded bars"):
        run_stage2(Stage2Config(**TINY), symbols=["ZZZ"])
    with pytest.raises(DataError, match="--context-len 200"):
        run_stage3(Stage3Config(**TINY, context_len=200, horizon=40))
    with pytest.raises(ConfigError, match="sequence length"):
        run_stage3(Stage3Config(**TINY, context_len=40, horizon=20))


def test_same_seed_same_run(csv_root: Path) -> None:
    a, b = _stage1(csv_root, epochs=1.0), _stage1(csv_root, epochs=1.0)
    assert a.train.val_metrics == b.train.val_metrics
    sa = runs.read_checkpoint(a.train.best_checkpoint)["state_dict"]
    sb = runs.read_checkpoint(b.train.best_checkpoint)["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_known_answer_periodic_candles(periodic_root: Path) -> None:
    """A period-4 candle pattern: stage 1 learns it to near-zero loss and stage 3 predicts the horizon."""
    model = {**TINY_MODEL, "vocab": 8, "embd": 32, "layers": 1, "heads": 2, "kv_heads": 2, "tokenizer_steps": 200}
    r1 = _stage1(periodic_root, **model, epochs=40.0, eval_interval=50, lr=0.01)
    last = [r for r in runs.read_metrics(r1.train.run_dir) if r["kind"] == "train"][-1]
    assert last["loss"] < 0.01
    # the one candle after the separator cannot be known (its phase); every other one is
    assert r1.train.val_metrics["bits_per_candle"] < 0.1
    r3 = run_stage3(Stage3Config(**TINY, epochs=2.0, context_len=16, horizon=8, in_run=str(r1.train.run_dir)))
    m = r3.train.test_metrics
    assert m["token_acc"] > 0.99
    assert m["path_rmse"] < 0.2 * m["zero_rmse"]  # the decoded paths follow the realised cycle


def test_resume_continues_the_run(csv_root: Path) -> None:
    r1 = _stage1(csv_root, epochs=1.0)
    ckpt = runs.read_checkpoint(runs.checkpoint_path(r1.train.run_dir, runs.LATEST))
    assert isinstance(ckpt["train_state"], dict) and ckpt["step"] == r1.train.steps
    # the flags given on resume do not matter: the run's stored settings (data, sizes) are used
    again = run_stage1(DataConfig(), SplitConfig(), Stage1Config(), resume=str(r1.train.run_dir))
    assert again.train.run_dir == r1.train.run_dir and again.train.resumed_from["step"] == r1.train.steps
    assert np.isfinite(again.train.val_metrics["bits_per_candle"])


def test_chain_on_real_daily_bars(shared_ohlcv: Path) -> None:
    """Real daily bars (../shared/data/ohlcv/daily): the tokenizer reconstructs returns better than
    their spread, and stages 1 -> 3 -> 4 run with finite figures."""
    data = DataConfig(data_root=str(shared_ohlcv / "daily"), symbols=("SPY", "TLT"), start="2012-01-01")
    r1 = run_stage1(data, SplitConfig(), Stage1Config(**{**TINY, **TINY_MODEL, "vocab": 32, "epochs": 1.0}))
    for rep in r1.reports["tokenizer"].values():
        assert rep["return_rmse"] < rep["return_std"]
    r3 = run_stage3(Stage3Config(**TINY, epochs=0.5, context_len=24, horizon=8, in_run=str(r1.train.run_dir)))
    assert np.isfinite(r3.train.test_metrics["path_rmse"])
    s4 = Stage4Config(**{**TINY, "eval_interval": 2}, steps=2, batch_episodes=2, eval_episodes=4)
    assert np.isfinite(run_stage4(s4, MarketConfig()).train.test_metrics["pnl_per_episode"])


def test_resume_keeps_the_runs_settings(csv_root: Path) -> None:
    _stage1(csv_root, epochs=1.0)
    r3 = run_stage3(Stage3Config(**TINY, epochs=0.5, context_len=24, horizon=6))
    # resumed with default flags (horizon 32 would not fit): the stored settings win
    again = run_stage3(Stage3Config(), resume=str(r3.train.run_dir))
    assert again.train.run_dir == r3.train.run_dir and again.train.resumed_from is not None
    assert runs.read_checkpoint(again.train.best_checkpoint)["horizon"] == 6
