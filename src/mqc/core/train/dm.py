"""``mqc train dm``: the Dirichlet GRU policy trained through the differentiable market.

Per step: sample ``batch_windows`` windows of ``horizon`` consecutive decision bars from the train
split; for each decision the GRU reads the ``lookback`` bars ending there and emits Dirichlet
concentrations over the legs; ``rollout_groups`` K weight paths are sampled per window and run
through the torch simulator (the same equations as the float64 backtest).

* ``grpo``: score-function gradient with advantages normalised within each window's K rollouts,
  plus ``kl_coef * KL(pi || pi_ref)`` to an EMA copy of the policy and an entropy bonus.
* ``pathwise``: reparameterised samples (``Dirichlet.rsample``) so the reward's gradient flows
  through the simulator into the policy.
* ``hybrid``: the sum of both, on one shared set of K reparameterised draws (each term's gradient
  estimate stays unbiased; the draws and the market simulation are paid for once).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch.distributions import Dirichlet, kl_divergence

from mqc.core.market.rewards import max_drawdown, portfolio_reward
from mqc.core.policy.networks import legs_to_weights
from mqc.core.train.base import BaseTrainer
from mqc.core.train.config import DMTrainConfig
from mqc.core.train.harness import TrainerSpec, register_trainer


class DMTrainer(BaseTrainer):
    """GRPO / pathwise / hybrid trainer of ``DirichletGRUPolicy`` (see module docstring)."""

    kind = "dm"
    model_type = "dirichlet_gru"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ref = copy.deepcopy(self.model).eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)

    def extra_state(self) -> dict[str, Any]:
        return {"ref_state_dict": {k: v.detach().cpu().clone() for k, v in self.ref.state_dict().items()}}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.ref.load_state_dict(state["ref_state_dict"])

    @torch.no_grad()
    def after_step(self) -> None:
        d = self.cfg.ema_decay
        for pr, p in zip(self.ref.parameters(), self.model.parameters(), strict=True):
            pr.mul_(d).add_(p.detach(), alpha=1.0 - d)

    def _rollouts(self, legs: torch.Tensor, idx: torch.Tensor, ovn: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Simulate leg samples ``[K, b, H, legs]`` -> (rewards ``[K, b]``, net returns ``[K, b, H]``)."""
        mc = self.model_cfg
        w = legs_to_weights(legs, mc.mode, mc.n_assets, mc.cap)
        # Filled bars are held as the backtest engine holds them (see ``rollout``).
        sim = self.rollout(w, idx, ovn)
        # Annual units (see ``portfolio_reward``): annualised log growth or annualised Sharpe, so
        # the penalty weights mean the same thing whatever the horizon or bar size.
        rew = portfolio_reward(
            sim.net_returns,
            objective=self.cfg.reward,
            risk_aversion=self.cfg.risk_aversion,
            drawdown_lambda=self.cfg.drawdown_lambda,
            bars_per_year=self.data.panel.bars_per_year,
        )
        return rew, sim.net_returns

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        cfg, h, k = self.cfg, self.cfg.horizon, self.cfg.rollout_groups
        idx = t0[:, None] + torch.arange(h, device=t0.device)  # [b, H]
        alpha = self.span(self.inputs_t, t0, h).float()
        dist = Dirichlet(alpha, validate_args=False)
        ovn = self.data.overnight[idx.cpu().numpy()]
        loss = torch.zeros((), device=alpha.device)
        stats: dict[str, float] = {"policy": 0.0, "pathwise": 0.0}
        pathwise_on = cfg.objective in ("pathwise", "hybrid")
        # One set of K draws serves both terms: reparameterised (rsample) when the pathwise term
        # needs its gradient, plain otherwise. The GRPO term scores the same draws, detached, with
        # the rewards of the same rollouts, so hybrid pays for one sample and one simulation.
        with torch.set_grad_enabled(pathwise_on and torch.is_grad_enabled()):
            raw = dist.rsample((k,)) if pathwise_on else dist.sample((k,))
            legs = raw.clamp(min=1e-6)
            legs = legs / legs.sum(-1, keepdim=True)
            rew, net = self._rollouts(legs, idx, ovn)
        rew_log, net_log = rew.detach(), net.detach()
        if cfg.objective in ("grpo", "hybrid"):
            adv = (rew_log - rew_log.mean(0)) / (rew_log.std(0) + 1e-6)
            logp = dist.log_prob(legs.detach()).sum(-1)  # [K, b]
            policy = -(adv * logp).mean() / h
            loss = loss + policy
            stats["policy"] = float(policy.detach())
        if pathwise_on:
            # The reward is already annualised: an O(0.1-1) scale next to GRPO's normalised term.
            pathwise = -rew.mean()
            loss = loss + pathwise
            stats["pathwise"] = float(pathwise.detach())
        entropy = dist.entropy().mean()
        loss = loss - cfg.entropy_coef * entropy
        kl = torch.zeros((), device=alpha.device)
        if cfg.kl_coef:
            # KL on every kl_every-th decision: an unbiased subsample that saves most of the
            # reference policy's forward pass.
            # inference_mode: the reference is a constant here; skips autograd's version tracking.
            with torch.inference_mode():
                alpha_ref = self.ref.forward_span(self.inputs_t, t0, h, stride=cfg.kl_every).float()
            kl = kl_divergence(
                Dirichlet(alpha[:, :: cfg.kl_every], validate_args=False),
                Dirichlet(alpha_ref.clone(), validate_args=False),
            ).mean()
            loss = loss + cfg.kl_coef * kl
        stats.update(
            loss=float(loss.detach()),
            entropy=float(entropy.detach()),
            kl=float(kl.detach()),
            drawdown_penalty=float(max_drawdown(net_log).mean()) * cfg.drawdown_lambda,
            reward_mean=float(rew_log.mean()),
            reward_std=float(rew_log.std(0).mean()) if rew_log.shape[0] > 1 else 0.0,
        )
        return loss, stats


register_trainer(TrainerSpec("dm", DMTrainConfig, DMTrainer))
