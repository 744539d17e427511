"""``mqc train sharpe``: a small per-asset network trained to maximise the Sharpe ratio net of costs.

No RL: deterministic weights (softmax over the legs) go straight through the torch simulator and
the loss is minus the per-bar Sharpe of each sampled window (plus optional variance and drawdown
penalties). Same features, market model, splits, run directory and checkpoint format as ``dm``.
"""

from __future__ import annotations

import torch

from mqc.core.market.rewards import max_drawdown, sharpe_ratio, variance_penalty
from mqc.core.policy.networks import legs_to_weights
from mqc.core.train.base import BaseTrainer


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
        sharpe = sharpe_ratio(net)
        dd = max_drawdown(net)
        loss = -sharpe.mean()
        if cfg.risk_aversion:
            loss = loss + cfg.risk_aversion * variance_penalty(net).mean()
        if cfg.drawdown_lambda:
            loss = loss + cfg.drawdown_lambda * dd.mean()
        return loss, {
            "loss": float(loss.detach()),
            "sharpe": float(sharpe.detach().mean()),
            "drawdown_penalty": float(dd.detach().mean()) * cfg.drawdown_lambda,
            "reward_mean": float(sharpe.detach().mean()),
            "reward_std": float(sharpe.detach().std()) if sharpe.numel() > 1 else 0.0,
            "turnover": float(sim.turnover.detach().mean()),
        }
