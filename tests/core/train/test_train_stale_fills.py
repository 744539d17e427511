"""Training rollouts fill orders as the backtest engine does: no trade on a forward-filled bar.

The panel mixes a 7-day crypto asset X with a weekday equity Y whose Monday move is X's weekend
move. The only profitable rule "buys" Y on Sunday at Friday's forward-filled close after seeing the
weekend: the engine refuses that fill, so the training reward must not pay for it either.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mqc.core.backtest.engine import run_backtest
from mqc.core.data.config import FeatureConfig
from mqc.core.data.panel import align_arrays
from mqc.core.market.config import MarketConfig
from mqc.core.train.config import SharpeTrainConfig
from mqc.core.train.sharpe import SharpeTrainer

FEATS = FeatureConfig(vol_windows=(5,), momentum_windows=(5, 10), volume_window=5)


def _weekend_panel(n_days: int = 420, seed: int = 0):
    rng = np.random.default_rng(seed)
    days = pd.date_range("2018-01-01", periods=n_days, freq="D")
    wd = days.day_of_week.to_numpy()
    rx = rng.normal(0, 0.02, n_days)
    ry = rng.normal(0, 0.01, n_days)
    for i in range(2, n_days):
        if wd[i] == 0:
            ry[i] = rx[i - 1] + rx[i - 2]  # Friday close -> Monday close = the weekend's crypto move
    ry[wd >= 5] = 0.0
    cx, cy = 100 * np.exp(np.cumsum(rx)), 100 * np.exp(np.cumsum(ry))

    def cols(c: np.ndarray) -> dict[str, np.ndarray]:
        return {"open": c.copy(), "high": c * 1.001, "low": c * 0.999, "close": c, "volume": np.ones_like(c)}

    ts = days.to_numpy().astype("datetime64[ns]").view(np.int64)
    weekday = wd < 5
    series = {"X-USD": (ts, cols(cx)), "Y": (ts[weekday], cols(cy[weekday]))}
    return align_arrays(series, asset_classes={"X-USD": "crypto", "Y": "equity"})


def _sunday_rule(panel) -> np.ndarray:
    """Hold Y from Sunday's (stale) close iff X rose over the weekend: causal, but needs a stale fill."""
    w = np.zeros((len(panel), 2))
    for t in range(2, len(panel)):
        if pd.Timestamp(panel.timestamps[t]).day_of_week == 6:
            w[t, 1] = float(panel.close[t, 0] > panel.close[t - 2, 0])
    return w


def _trainer(panel, market: MarketConfig) -> SharpeTrainer:
    cfg = SharpeTrainConfig(lookback=4, horizon=16, batch_windows=4, hidden_size=8, steps=1)
    return SharpeTrainer(panel, market, cfg, feature_cfg=FEATS)


def _window(trainer: SharpeTrainer, w: np.ndarray, a: int, b: int) -> np.ndarray:
    idx = torch.arange(a, b)[None, :]
    sim = trainer.rollout(torch.as_tensor(w[a:b], dtype=torch.float32)[None], idx, trainer.data.overnight[idx.numpy()])
    return sim.net_returns[0].double().numpy()


def test_training_reward_of_a_stale_fill_rule_equals_the_engine() -> None:
    panel = _weekend_panel()
    assert panel.filled[:, 1].any() and not panel.filled[:, 0].any()
    market = MarketConfig().with_cost(0.0, 0.0)
    trainer = _trainer(panel, market)
    w = _sunday_rule(panel)
    a = next(t for t in range(20, len(panel)) if pd.Timestamp(panel.timestamps[t]).day_of_week == 0)
    b = len(panel) - 2
    train_net = _window(trainer, w, a, b)
    engine = run_backtest(panel, w, market, start=a, end=b + 1)
    # The engine ends at close b (last bar earns nothing): compare the bars both score.
    np.testing.assert_allclose(train_net, engine.net_returns[: b - a], atol=1e-6)
    assert abs(np.prod(1 + train_net) - 1) < 1e-6  # the stale-fill rule earns nothing, as in the engine
    # What the loss used to score (every target filled at its bar) is a large, fake profit.
    assert np.sum(w[a:b, 1] * trainer.data.returns[a:b, 1]) > 0.5


def test_held_assets_and_leverage_room_match_the_engine_on_random_paths() -> None:
    panel = _weekend_panel(n_days=200, seed=3)
    market = MarketConfig().with_cost(0.0, 0.0)
    trainer = _trainer(panel, market)
    rng = np.random.default_rng(1)
    w = rng.uniform(0.0, 0.8, size=(len(panel), 2))  # gross up to 1.6 > cap 1: scaling is exercised
    a = next(t for t in range(20, len(panel)) if not panel.filled[t].any())
    b = a + 60
    w[a] = [0.3, 0.0]  # the engine enters from cash (free at zero cost); the window starts holding it
    engine = run_backtest(panel, np.vstack([np.zeros((a, 2)), w[a:]]), market, start=a, end=b + 1)
    np.testing.assert_allclose(_window(trainer, w, a, b), engine.net_returns[: b - a], atol=1e-6)
    assert np.abs(engine.weights[: b - a][panel.filled[a:b]] - w[a:b][panel.filled[a:b]]).max() > 0.01  # holds did bite


def test_held_path_stays_differentiable() -> None:
    panel = _weekend_panel(n_days=120)
    trainer = _trainer(panel, MarketConfig())
    a = 30
    idx = torch.arange(a, a + 16)[None, :]
    logits = torch.zeros(1, 16, 2, requires_grad=True)
    sim = trainer.rollout(torch.softmax(logits, -1), idx, trainer.data.overnight[idx.numpy()])
    sim.net_returns.sum().backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
