"""Look-ahead guard for ``train kronos`` checkpoints replayed through the backtest engine.

A tiny random Kronos feeds a tiny ``dm`` policy; the stored checkpoint rebuilds the Kronos feature
provider, so the whole chain (Kronos path features -> candle features -> policy -> engine) must use
bars up to t only for the decision at t.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mqc.core.backtest.engine import run_backtest
from mqc.core.data.config import DataConfig, FeatureConfig
from mqc.core.data.panel import Panel, load_panel

CUT = 120  # the decision bar t of the guard; the panel has 160 bars


@pytest.fixture
def kronos_run(synth, tmp_path: Path) -> tuple[Path, Path]:
    """(bars root, best checkpoint) of a tiny ``train kronos`` run."""
    from mqc.core.forecast.kronos.config import KronosFeatureConfig
    from mqc.core.forecast.kronos.presets import save_random
    from mqc.core.market.config import MarketConfig
    from mqc.core.train.config import DMTrainConfig
    from mqc.core.train.kronos import KronosTrainer

    root = tmp_path / "bars"
    root.mkdir()
    for sym, df in synth(n_assets=2, n_bars=160, seed=11).items():
        out = df.copy()
        out["timestamp"] = out["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        out.to_csv(root / f"{sym}.csv", index=False)
    model_dir, tok_dir = save_random(tmp_path / "kronos", "tiny", seed=2)
    kronos = KronosFeatureConfig(
        model_path=str(model_dir),
        tokenizer_path=str(tok_dir),
        context=16,
        horizons=(1, 3),
        sample_count=2,
        top_k=0,
        top_p=0.95,
    )
    train = DMTrainConfig(
        lookback=8,
        horizon=4,
        batch_windows=2,
        rollout_groups=2,
        hidden_size=8,
        steps=2,
        eval_interval=2,
        device="cpu",
        save_dir=str(tmp_path / "runs"),
    )
    feats = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)
    res = KronosTrainer(kronos, DataConfig(data_root=str(root)), MarketConfig(), train, features=feats).fit()
    return root, Path(res.best_checkpoint)


def _perturbed_after(panel: Panel, k: int, seed: int) -> Panel:
    """The panel with every bar after k rescaled (a consistent OHLC bar, different prices)."""
    values = panel.values.copy()
    scale = np.random.default_rng(seed).uniform(0.7, 1.3, size=(len(panel) - k - 1, panel.n_assets, 1))
    values[k + 1 :, :, :4] *= scale
    values[k + 1 :, :, 1] = values[k + 1 :, :, :4].max(axis=2)
    values[k + 1 :, :, 2] = values[k + 1 :, :, :4].min(axis=2)
    return Panel(panel.timestamps, panel.symbols, values, panel.filled.copy(), panel.timeframe, panel.asset_classes)


def _appended(panel: Panel, extra: int) -> Panel:
    """The panel with ``extra`` later bars (a gentle drift) appended."""
    step = panel.timestamps[-1] - panel.timestamps[-2]
    ts = np.concatenate([panel.timestamps, panel.timestamps[-1] + np.arange(1, extra + 1) * step])
    drift = np.cumprod(np.full(extra, 1.01))[:, None, None]
    tail = np.repeat(panel.values[-1:], extra, axis=0)
    tail[:, :, :4] *= drift
    values = np.concatenate([panel.values, tail])
    filled = np.concatenate([panel.filled, np.zeros((extra, panel.n_assets), bool)])
    return Panel(ts, panel.symbols, values, filled, panel.timeframe, panel.asset_classes)


def _inputs(strategy, panel: Panel) -> np.ndarray:
    """The standardised policy inputs (candle + Kronos features) the strategy feeds its model."""
    from mqc.core.policy.inputs import build_inputs

    inputs, _ = build_inputs(panel, strategy.feature_config, strategy.providers, stats=strategy.feature_stats)
    return np.asarray(inputs.values)


def test_kronos_checkpoint_replay_is_causal(kronos_run):
    from mqc.core.policy.strategy import load_strategy

    root, ckpt = kronos_run
    strategy = load_strategy(ckpt)
    assert [p.name for p in strategy.providers] == ["kronos"]
    panel = load_panel(config=DataConfig(data_root=str(root), symbols=strategy.symbols))
    k = CUT
    w = strategy.target_weights(panel)
    assert np.isfinite(w[k]).all() and np.abs(w[k]).sum() > 0
    bpy = panel.bars_per_year
    net = run_backtest(panel, w, strategy.market, bars_per_year=bpy).net_returns

    # prices after t rescaled: decisions up to t and net returns of bars before t are bit-identical
    changed = _perturbed_after(panel, k, seed=5)
    w_changed = strategy.target_weights(changed)
    np.testing.assert_array_equal(w[: k + 1], w_changed[: k + 1])
    assert not np.array_equal(w[k + 1 :], w_changed[k + 1 :])  # the guard can fail: the change reaches later bars
    # net return at bar i covers close i -> i+1, so bars < t do not see any change after t
    np.testing.assert_array_equal(
        net[:k], run_backtest(changed, w_changed, strategy.market, bars_per_year=bpy).net_returns[:k]
    )

    # bars appended: the policy inputs (candle + Kronos path features) of every existing bar are
    # bit-identical; the decisions agree to fp32 rounding only, because the policy decodes its last
    # chunk of windows in one batch whose size is set by the panel's end (core/policy/networks.decide)
    longer = _appended(panel, extra=12)
    np.testing.assert_array_equal(_inputs(strategy, panel), _inputs(strategy, longer)[: len(panel)])
    w_longer = strategy.target_weights(longer)
    np.testing.assert_allclose(w, w_longer[: len(panel)], rtol=0, atol=1e-6)
    net_longer = run_backtest(longer, w_longer, strategy.market, bars_per_year=bpy).net_returns
    np.testing.assert_allclose(net[: len(panel) - 1], net_longer[: len(panel) - 1], rtol=0, atol=1e-7)
