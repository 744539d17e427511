"""``mqc train sharpe``: a small per-asset network trained to maximise the Sharpe ratio net of costs.

No RL: deterministic weights (softmax over the legs) go straight through the torch simulator and
the loss is minus the annualised Sharpe of each sampled window (plus optional annualised-variance and
drawdown penalties: ``portfolio_reward(objective="sharpe")``, the same scales as ``dm``). Same
features, market model, splits, run directory and checkpoint format as ``dm``.
"""

from __future__ import annotations

import torch

from mqc.core.market.rewards import max_drawdown, portfolio_reward, sharpe_ratio
from mqc.core.policy.networks import legs_to_weights
from mqc.core.train.base import BaseTrainer
from mqc.core.train.config import SharpeTrainConfig
from mqc.core.train.harness import TrainerSpec, register_trainer


class SharpeTrainer(BaseTrainer):
    """Differentiable-Sharpe trainer of ``SharpeMLP``."""

    kind = "sharpe"
    model_type = "sharpe_mlp"

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, mc = self.cfg, self.model_cfg
        idx = t0[:, None] + torch.arange(cfg.horizon, device=t0.device)
        p = torch.softmax(self.span(self.inputs_t, t0, cfg.horizon).float(), -1)
        w = legs_to_weights(p, mc.mode, mc.n_assets, mc.cap)
        # Forward-filled bars are held, exactly as the backtest engine fills them (see ``rollout``).
        sim = self.rollout(w, idx, self.data.overnight[idx.cpu().numpy()])
        net = sim.net_returns
        bpy = self.data.panel.bars_per_year
        reward = portfolio_reward(
            net,
            objective="sharpe",
            risk_aversion=cfg.risk_aversion,
            drawdown_lambda=cfg.drawdown_lambda,
            bars_per_year=bpy,
        )
        with torch.no_grad():
            sharpe = sharpe_ratio(net, bars_per_year=bpy)
            dd = max_drawdown(net)
        loss = -reward.mean()
        return loss, {
            "loss": float(loss.detach()),
            "sharpe": float(sharpe.detach().mean()),
            "drawdown_penalty": float(dd.detach().mean()) * cfg.drawdown_lambda,
            "reward_mean": float(reward.detach().mean()),
            "reward_std": float(reward.detach().std()) if reward.numel() > 1 else 0.0,
            "turnover": float(sim.turnover.detach().mean()),
        }


register_trainer(TrainerSpec("sharpe", SharpeTrainConfig, SharpeTrainer))
