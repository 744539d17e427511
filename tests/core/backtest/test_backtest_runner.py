"""Checkpoint and weights-file replays: formats, mismatches, bad input and the look-ahead guard."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from mqc.core import config
from mqc.core.backtest.config import BacktestConfig
from mqc.core.backtest.engine import run_backtest
from mqc.core.backtest.runner import run_checkpoint_backtest, run_weights_backtest
from mqc.core.backtest.weights_file import align_weights, read_weights_file
from mqc.core.data.config import DataConfig
from mqc.core.data.panel import Panel, load_panel
from mqc.core.errors import ArtifactNotFound, CheckpointError, DataError
from mqc.core.market.config import MarketConfig
from mqc.core.policy.strategy import load_strategy, register_loader
from mqc.core.runs import CHECKPOINT_FORMAT, CHECKPOINT_VERSION

FAST = BacktestConfig(window_length=32, stride=16, bootstrap_samples=50, plots=False)


@dataclasses.dataclass
class SmaStrategy:
    """Test-only strategy kind: equal weight across assets whose close is above their SMA."""

    kind: str
    symbols: tuple[str, ...]
    timeframe: str
    market: MarketConfig
    lookback: int

    def target_weights(self, panel: Panel) -> np.ndarray:
        close = panel.close
        c = np.cumsum(close, axis=0)
        sma = c.copy()
        sma[self.lookback :] -= c[: -self.lookback]
        sma /= self.lookback
        up = (close > sma).astype(float)
        up[: self.lookback] = 0.0
        n = up.sum(axis=1, keepdims=True)
        return np.divide(up, n, out=np.zeros_like(up), where=n > 0)


def _load_sma(ckpt: dict, path: Path) -> SmaStrategy:
    return SmaStrategy(
        kind=ckpt["kind"],
        symbols=tuple(ckpt["symbols"]),
        timeframe=ckpt["timeframe"],
        market=config.from_dict(MarketConfig, ckpt["market_config"]),
        lookback=int(ckpt["lookback"]),
    )


register_loader("test-sma", _load_sma)


def write_root(frames: dict, root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for sym, df in frames.items():
        df.to_csv(root / f"{sym}.csv", index=False)
    return root


def save_checkpoint(path: Path, symbols, timeframe="1d", **over) -> Path:
    ckpt = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "mqc_version": "test",
        "kind": "test-sma",
        "state_dict": {},
        "model_config": {},
        "feature_config": {},
        "market_config": config.to_dict(MarketConfig()),
        "symbols": list(symbols),
        "asset_classes": ["equity"] * len(symbols),
        "timeframe": timeframe,
        "lookback": 20,
        "data_fingerprint": None,
        "feature_stats": {},
        "step": 0,
        "metrics": {},
    }
    ckpt.update(over)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


@pytest.fixture
def root(synth, tmp_path) -> Path:
    return write_root(synth(n_assets=3, n_bars=400, seed=3), tmp_path / "bars")


def test_checkpoint_replay_writes_report(root, tmp_path):
    ck = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt", ["SYN0", "SYN1", "SYN2"])
    rep = run_checkpoint_backtest(tmp_path / "run", DataConfig(data_root=str(root)), FAST, out_dir=tmp_path / "out")
    assert rep.source["kind"] == "test-sma" and rep.source["path"] == str(ck)
    assert rep.segment["split"] == "test" and rep.segment["bars"] == 60  # 15% of 400
    assert (tmp_path / "out" / "report.json").is_file() and (tmp_path / "out" / "trades.jsonl").is_file()
    allbars = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, split="all"), write=False
    )
    assert allbars.segment["bars"] == 400 and allbars.out_dir is None
    stressed = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, cost_bps=50.0), write=False
    )
    assert stressed.market.equity_fee_bps == 50.0
    assert stressed.metrics["total_return"] < rep.metrics["total_return"]


def test_checkpoint_mismatches_are_errors(root, tmp_path):
    ck = save_checkpoint(tmp_path / "a.pt", ["SYN0", "SYN1", "NOPE"])
    with pytest.raises(DataError, match="NOPE"):
        run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), FAST, write=False)
    ck = save_checkpoint(tmp_path / "b.pt", ["SYN0", "SYN1", "SYN2"], timeframe="1h")
    with pytest.raises(DataError, match="1h bars but the data has 1d"):
        run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), FAST, write=False)
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), FAST, allow_mismatch=True, write=False)
    assert rep.source["allow_mismatch"]
    ck = save_checkpoint(tmp_path / "c.pt", ["SYN0", "SYN1", "SYN2"])
    with pytest.raises(DataError, match="the data symbols are SYN0, SYN1"):
        run_checkpoint_backtest(ck, DataConfig(data_root=str(root), symbols=("SYN0", "SYN1")), FAST, write=False)


def test_bad_checkpoints(root, tmp_path):
    other = save_checkpoint(tmp_path / "old.pt", ["SYN0"], format_version=CHECKPOINT_VERSION + 1, mqc_version="9.9")
    with pytest.raises(CheckpointError, match="format version"):
        run_checkpoint_backtest(other, DataConfig(data_root=str(root)), FAST, write=False)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable mqc checkpoint"):
        run_checkpoint_backtest(broken, DataConfig(data_root=str(root)), FAST, write=False)
    with pytest.raises(ArtifactNotFound):
        run_checkpoint_backtest(tmp_path / "missing.pt", DataConfig(data_root=str(root)), FAST, write=False)


def test_window_longer_than_segment(root, tmp_path):
    ck = save_checkpoint(tmp_path / "a.pt", ["SYN0", "SYN1", "SYN2"])
    long = dataclasses.replace(FAST, window_length=256)
    # an explicitly chosen window keeps the clear error
    with pytest.raises(DataError, match="--window-length 256 is longer than the 60 bars"):
        run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), long, fit_windows=False, write=False)
    # the default window shrinks to the segment: the main metrics are still reported
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), long, fit_windows=True, write=False)
    assert rep.aggregates["windows"] == 1 and rep.aggregates["window_length"] == 60
    assert "60 evaluated bars" in rep.aggregates["window_note"]
    assert np.isfinite(rep.metrics["sharpe"])
    # None: fit only the default length
    rep = run_checkpoint_backtest(ck, DataConfig(data_root=str(root)), long, write=False)
    assert rep.aggregates["window_length"] == 60


def test_start_before_split_is_an_error(root, tmp_path):
    ck = save_checkpoint(tmp_path / "a.pt", ["SYN0", "SYN1", "SYN2"])
    with pytest.raises(DataError, match=r"--start 2000-01-01 outside the test split, which covers \d{4}-"):
        run_checkpoint_backtest(
            ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, start="2000-01-01"), write=False
        )
    # with --split all the same start is inside the range
    rep = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, split="all", start="2000-01-01"), write=False
    )
    assert rep.segment["start_bar"] == 0


def test_capped_weight_rows_are_counted(root, tmp_path):
    panel = load_panel(config=DataConfig(data_root=str(root)))
    f = tmp_path / "w.csv"
    ts = [str(t)[:10] for t in panel.timestamps[:3]]
    f.write_text(f"timestamp,SYN0,SYN1\n{ts[0]},0.9,0.9\n{ts[1]},0.5,0.5\n{ts[2]},0.7,0.6\n")
    cfg = dataclasses.replace(FAST, split="all")
    rep = run_weights_backtest(
        f, DataConfig(data_root=str(root), symbols=("SYN0", "SYN1")), cfg, MarketConfig(), write=False
    )
    assert rep.source["capped_targets"] == 2
    assert any("2 target row(s) exceed the leverage cap" in w for w in rep.segment["warnings"])
    rep = run_weights_backtest(
        f,
        DataConfig(data_root=str(root), symbols=("SYN0", "SYN1")),
        cfg,
        MarketConfig(max_gross_leverage=2.0, max_overnight_leverage=2.0),
        write=False,
    )
    assert rep.source["capped_targets"] == 0 and not rep.segment.get("warnings")


def test_report_records_costs_used(root, tmp_path):
    ck = save_checkpoint(tmp_path / "a.pt", ["SYN0", "SYN1", "SYN2"])
    rep = run_checkpoint_backtest(
        ck, DataConfig(data_root=str(root)), dataclasses.replace(FAST, cost_bps=7.0), write=False
    )
    costs = rep.data["costs"]
    assert costs["overrides"] == {"cost_bps": 7.0}
    assert all(v == 7.0 for v in costs["fee_bps"].values())


def _assert_replay_causal(strategy, panel: Panel, k: int, market: MarketConfig) -> None:
    """Perturb every bar after k and append bars: weights up to k and equity up to k-1 must not move."""
    w = strategy.target_weights(panel)
    values = panel.values.copy()
    rng = np.random.default_rng(9)
    values[k + 1 :] *= rng.uniform(0.7, 1.3, size=(len(panel) - k - 1, panel.n_assets, 1))
    values[k + 1 :, :, 1] = values[k + 1 :, :, :4].max(axis=2)
    values[k + 1 :, :, 2] = values[k + 1 :, :, :4].min(axis=2)
    extra = 30
    step = panel.timestamps[1] - panel.timestamps[0]
    ts = np.concatenate([panel.timestamps, panel.timestamps[-1] + np.arange(1, extra + 1) * step])
    longer = Panel(
        ts,
        panel.symbols,
        np.concatenate([values, np.repeat(values[-1:], extra, axis=0)]),
        np.zeros((len(ts), panel.n_assets), bool),
        panel.timeframe,
        panel.asset_classes,
    )
    w2 = strategy.target_weights(longer)
    np.testing.assert_array_equal(w[: k + 1], w2[: k + 1])
    assert not np.array_equal(w[k + 1 :], w2[k + 1 : len(panel)]) or np.allclose(w, w[0])
    e1 = run_backtest(panel, w, market).equity
    e2 = run_backtest(longer, w2, market, bars_per_year=panel.bars_per_year).equity
    np.testing.assert_array_equal(e1[:k], e2[:k])


def test_lookahead_guard_checkpoint_replay(root, tmp_path):
    ck = save_checkpoint(tmp_path / "a.pt", ["SYN0", "SYN1", "SYN2"])
    strategy = load_strategy(ck)
    panel = load_panel(config=DataConfig(data_root=str(root), symbols=("SYN0", "SYN1", "SYN2")))
    _assert_replay_causal(strategy, panel, 250, strategy.market)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["dm", "sharpe"])
def test_lookahead_guard_trained_kinds(kind, root, tmp_path):
    pytest.importorskip("mqc.core.train.api")
    from mqc.core.data.config import FeatureConfig
    from mqc.core.train import api
    from mqc.core.train.config import DMTrainConfig, SharpeTrainConfig

    feats = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)
    data = DataConfig(data_root=str(root))
    if kind == "dm":
        cfg = DMTrainConfig(
            lookback=16,
            horizon=8,
            batch_windows=4,
            rollout_groups=4,
            hidden_size=8,
            steps=2,
            eval_interval=2,
            log_interval=1,
            save_dir=str(tmp_path / "runs"),
        )
        res = api.train_dm(data, MarketConfig(), cfg, feature_cfg=feats)
    else:
        cfg = SharpeTrainConfig(
            lookback=4,
            horizon=32,
            batch_windows=4,
            hidden_size=8,
            steps=2,
            eval_interval=2,
            log_interval=1,
            save_dir=str(tmp_path / "runs"),
        )
        res = api.train_sharpe(data, MarketConfig(), cfg, feature_cfg=feats)
    strategy = load_strategy(res.best_checkpoint)
    panel = load_panel(config=DataConfig(data_root=str(root), symbols=strategy.symbols))
    _assert_replay_causal(strategy, panel, 300, strategy.market)
    rep = run_checkpoint_backtest(res.run_dir, DataConfig(), FAST, write=False)  # data root read from the run
    assert rep.segment["split_source"] == "checkpoint" and rep.source["data_matches_checkpoint"]


def test_weights_file_rules(synth, tmp_path):
    frames = synth(n_assets=2, n_bars=200, seed=4)
    root = write_root(frames, tmp_path / "bars")
    ts = frames["SYN0"]["timestamp"]
    path = tmp_path / "w.csv"
    path.write_text(f"timestamp,SYN0,SYN1\n{ts[10]:%Y-%m-%d},0.5,0.5\n{ts[100]:%Y-%m-%d},0.3,\n")
    # an explicit --start before the first row: cash until the first row
    cfg = dataclasses.replace(FAST, split="all", start=f"{ts[0]:%Y-%m-%d}")
    rep = run_weights_backtest(path, DataConfig(data_root=str(root)), cfg, write=False)
    r = rep.result
    assert rep.segment["start_bar"] == 0 and "skipped_before_first_row" not in rep.segment
    assert np.all(r.weights[:10] == 0.0) and r.turnover[10] == pytest.approx(1.0)
    assert np.abs(r.trades[11:100]).max() < 1e-15  # held between rows: no orders
    assert r.weights[100, 0] == pytest.approx(0.3) and abs(r.trades[100, 1]) < 1e-15  # empty cell: SYN1 held
    assert not np.allclose(r.weights[50], 0.5)  # drifted
    # by default the evaluated segment starts at the file's first row (no cash years scored)
    rep = run_weights_backtest(
        path, DataConfig(data_root=str(root)), dataclasses.replace(FAST, split="all"), write=False
    )
    assert rep.segment["start_bar"] == 10 and rep.segment["skipped_before_first_row"] == 10
    assert rep.segment["first"][:10] == f"{ts[10]:%Y-%m-%d}" and rep.segment["active_from"] == "first weights row"
    assert rep.result.turnover[0] == pytest.approx(1.0) and rep.result.weights[90, 0] == pytest.approx(0.3)


def test_weights_file_from_mid_sample_scores_like_the_benchmark(synth, tmp_path):
    """A file that IS rebalanced 1/N from mid-sample scores the 1/N benchmark's Sharpe by default."""
    frames = synth(n_assets=3, n_bars=300, seed=9)
    root = write_root(frames, tmp_path / "bars")
    ts = frames["SYN0"]["timestamp"]
    rows = "".join(f"{t:%Y-%m-%d},{1 / 3},{1 / 3},{1 / 3}\n" for t in ts[150:])
    path = tmp_path / "w.csv"
    path.write_text("timestamp,SYN0,SYN1,SYN2\n" + rows)
    cfg = dataclasses.replace(FAST, split="all", bootstrap_samples=50)
    rep = run_weights_backtest(path, DataConfig(data_root=str(root)), cfg, write=False)
    bench = rep.benchmarks["equal_weight"].metrics
    assert rep.segment["start_bar"] == 150 and rep.metrics["n_bars"] == 150
    assert rep.metrics["sharpe"] == pytest.approx(bench["sharpe"], abs=1e-9)
    assert rep.metrics["annual_return"] == pytest.approx(bench["annual_return"], abs=1e-9)
    assert rep.significance["sharpe_diff"] == pytest.approx(0.0, abs=1e-9)


def test_weights_file_errors(synth, tmp_path):
    frames = synth(n_assets=2, n_bars=100, seed=4)
    root = write_root(frames, tmp_path / "bars")
    ts = frames["SYN0"]["timestamp"]
    unknown = tmp_path / "u.csv"
    unknown.write_text(f"timestamp,SYN0,ZZZ\n{ts[1]:%Y-%m-%d},0.5,0.5\n")
    with pytest.raises(DataError, match="column.s. ZZZ are not among the loaded symbols SYN0, SYN1"):
        run_weights_backtest(unknown, DataConfig(data_root=str(root), symbols=("SYN0", "SYN1")), FAST, write=False)
    misaligned = tmp_path / "m.csv"
    misaligned.write_text(f"timestamp,SYN0\n{ts[1]:%Y-%m-%d} 13:30,0.5\n")
    with pytest.raises(DataError, match="match no 1d bar"):
        run_weights_backtest(misaligned, DataConfig(data_root=str(root)), FAST, write=False)
    unsorted = tmp_path / "s.csv"
    unsorted.write_text(f"timestamp,SYN0\n{ts[5]:%Y-%m-%d},0.5\n{ts[2]:%Y-%m-%d},0.5\n")
    with pytest.raises(DataError, match="strictly increasing"):
        read_weights_file(unsorted)
    text = tmp_path / "t.csv"
    text.write_text(f"timestamp,SYN0\n{ts[5]:%Y-%m-%d},lots\n")
    with pytest.raises(DataError, match="not a number"):
        read_weights_file(text)
    with pytest.raises(ArtifactNotFound):
        read_weights_file(tmp_path / "none.csv")
    panel = load_panel(config=DataConfig(data_root=str(root)))
    with pytest.raises(DataError, match="no weight rows"):
        align_weights(np.array([], dtype="datetime64[ns]"), ("SYN0",), np.zeros((0, 1)), panel)
