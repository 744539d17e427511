"""Stage 4: policy-gradient fine-tuning on **sampled** horizons.

Per context, ``group`` horizons are sampled from the current policy; each is decoded to a return
path and scored (``pnl``: the decoded cumulative return sets a position held over the horizon,
scored by the shared market model net of costs; ``return_mse``; ``token_acc``: position-by-position
agreement with the realised tokens). The advantage is the reward minus its group's mean over the
group's std (GRPO); the loss is ``-advantage * log pi(sampled tokens)`` plus ``kl`` times the exact
KL of the policy to the frozen stage-3 model at the sampled positions. Episodes come from the
train split only; val measures.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mqc.core.lm.data import Windows
from mqc.core.lm.engine import generate
from mqc.core.lm.tokenizer import CandleTokenizer
from mqc.core.lm.trainer import LMTrainer, eval_rows
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import fee_rates, simulate


def grpo_loss(
    policy_logits: torch.Tensor,
    ref_logits: torch.Tensor,
    tokens: torch.Tensor,
    horizon: int,
    advantages: torch.Tensor,
    kl: float,
    codes: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Policy-gradient loss on the sampled horizon tokens plus the KL to the reference.

    Args:
        policy_logits, ref_logits: ``[N, L+H-1, V]`` logits of ``tokens[:, :-1]`` (or their last
            ``H`` positions and up).
        tokens: ``[N, L+H]`` context then the sampled horizon (or the horizon alone).
        advantages: ``[N]`` group-normalised rewards (no gradient).
        codes: the candle ids (below it) the samples were drawn from.
    """
    logp = F.log_softmax(policy_logits[:, -horizon:, :codes], dim=-1)
    ref = F.log_softmax(ref_logits[:, -horizon:, :codes].detach(), dim=-1)
    sampled = logp.gather(-1, tokens[:, -horizon:, None])[..., 0]
    pg = -(advantages.detach()[:, None] * sampled).mean()
    p = logp.exp()
    kl_term = (p * (logp - ref)).sum(-1).mean()
    entropy = -(p * logp).sum(-1).mean()
    loss = pg + kl * kl_term
    return loss, {"loss": float(loss.detach()), "kl": float(kl_term.detach()), "entropy": float(entropy.detach())}


def episode_loss(
    policy: torch.nn.Module,
    ref: torch.nn.Module,
    ctx: torch.Tensor,
    drawn: torch.Tensor,
    advantages: torch.Tensor,
    kl: float,
    codes: int,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``grpo_loss`` of the horizons ``drawn [B * g, H]`` sampled after contexts ``ctx [B, L]`` (``g``
    consecutive rows per context). Policy and reference score the sampled tokens teacher-forced; each
    context is run once per model and shared by its group (``GPT.forward(..., suffix=)``), which gives
    the logits of the full pass over context + horizon at the horizon positions, gradients included."""
    with torch.no_grad():
        ref_logits = ref(ctx, suffix=drawn[:, :-1])
    return grpo_loss(policy(ctx, suffix=drawn[:, :-1]), ref_logits, drawn, drawn.shape[1], advantages, kl, codes)


def group_advantages(rewards: np.ndarray, group: int) -> np.ndarray:
    """``(r - group mean) / (group std + 1e-6)`` for rewards laid out group-major ``[B * group]``."""
    r = rewards.reshape(-1, group)
    return ((r - r.mean(1, keepdims=True)) / (r.std(1, keepdims=True) + 1e-6)).reshape(-1)


def positions(pred_cum: np.ndarray, scale: float, allow_short: bool = True) -> np.ndarray:
    """Position from a decoded cumulative log return: its sign, sized by ``pred / scale``, within
    [-1, 1] ([0, 1] when the market allows no shorts)."""
    return np.clip(pred_cum / max(scale, 1e-12), -1.0 if allow_short else 0.0, 1.0)


def pnl(
    pos: np.ndarray, simple: np.ndarray, asset_classes: list[str], market: MarketConfig, dt_years: float
) -> np.ndarray:
    """Log wealth of holding ``pos [N]`` over horizons of simple returns ``[N, H]`` (entered from
    cash, net of costs and financing) through the shared market model; ``[N]``."""
    out = np.zeros(len(pos))
    for cls in sorted(set(asset_classes)):
        m = np.array([c == cls for c in asset_classes])
        w = np.repeat(pos[m][:, None, None], simple.shape[1], axis=1)
        res = simulate(w, simple[m][:, :, None], fee_rates([cls], market), np.full(simple.shape[1], dt_years), market)
        out[m] = np.log1p(res.net_returns).sum(-1)
    return out


def rewards(
    kind: str,
    tok: CandleTokenizer,
    drawn: np.ndarray,
    win: Windows,
    rows: np.ndarray,
    *,
    scale: float,
    classes: list[str],
    market: MarketConfig,
    dt_years: float,
) -> np.ndarray:
    """Reward of each sampled horizon ``drawn [N, H]`` against window ``rows [N]`` of ``win``."""
    if kind == "token_acc":
        return (drawn == win.tokens[rows, -win.horizon :]).mean(-1)
    pred = np.cumsum(tok.decode(drawn)[..., 0], axis=-1)
    if kind == "return_mse":
        return -np.mean((pred - np.cumsum(win.log_returns[rows], axis=-1)) ** 2, axis=-1)
    return pnl(positions(pred[:, -1], scale, market.allow_short), win.simple_returns[rows], classes, market, dt_years)


class RLTrainer(LMTrainer):
    """Stage 4 on the shared harness; ``sample_t0`` draws train episodes."""

    def __init__(self, cfg: Any, *, windows: dict[str, Windows], market: MarketConfig, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.win, self.market = windows, market
        self.ref = copy.deepcopy(self.model).eval()
        for p in self.ref.parameters():
            p.requires_grad_(False)
        self.horizon = int(self.extra["horizon"])
        # the size of a typical horizon move, from the train split only: it sizes positions
        self.scale = float(np.std(self.win["train"].log_returns.sum(-1)))
        self.extra["position_scale"] = self.scale
        self.dt_years = float(np.median(np.diff(self.data.panel.timestamps).astype("timedelta64[s]").astype(float)))
        self.dt_years /= 365.25 * 86400
        self.total_steps = cfg.steps

    def _classes(self, win: Windows, rows: np.ndarray) -> list[str]:
        return [self.data.panel.asset_classes[a] for a in win.asset[rows]]

    def sample_t0(self, n: int) -> torch.Tensor:
        return self.draw(len(self.win["train"]), n)

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        g, win = self.cfg.group, self.win["train"]
        first = t0.cpu().numpy()
        rows = np.repeat(first, g)
        ctx = torch.from_numpy(win.tokens[first, : win.context_len]).to(self.device)
        drawn = generate(
            self.model,
            ctx,
            self.horizon,
            group=g,
            temperature=self.cfg.temperature,
            top_k=self.cfg.top_k,
            allowed=self.tok.spec.codes,
        )
        r = rewards(
            self.cfg.reward,
            self.tok,
            drawn.cpu().numpy(),
            win,
            rows,
            scale=self.scale,
            classes=self._classes(win, rows),
            market=self.market,
            dt_years=self.dt_years,
        )
        adv = torch.as_tensor(group_advantages(r, g), dtype=torch.float32, device=self.device)
        loss, st = episode_loss(self.net, self.ref, ctx, drawn, adv, self.cfg.kl, self.tok.spec.codes)
        st["reward"] = float(r.mean())
        return loss, st

    @torch.no_grad()
    def evaluate(self, segment: str) -> dict[str, float]:
        win, g = self.win[segment], self.cfg.group
        first = eval_rows(len(win), self.cfg.eval_episodes)
        rows = np.repeat(first, g)
        ctx = torch.from_numpy(win.tokens[first, : win.context_len]).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        drawn = (
            generate(
                self.model,
                ctx,
                self.horizon,
                group=g,
                generator=gen,
                temperature=self.cfg.temperature,
                top_k=self.cfg.top_k,
                allowed=self.tok.spec.codes,
            )
            .cpu()
            .numpy()
        )
        kw = {
            "scale": self.scale,
            "classes": self._classes(win, rows),
            "market": self.market,
            "dt_years": self.dt_years,
        }
        r = rewards(self.cfg.reward, self.tok, drawn, win, rows, **kw)
        pred = np.cumsum(self.tok.decode(drawn)[..., 0], axis=-1)[:, -1].reshape(-1, g).mean(1)
        one = rows[::g]
        trade = pnl(
            positions(pred, self.scale), win.simple_returns[one], kw["classes"][::g], self.market, self.dt_years
        )
        hold = pnl(np.ones(len(one)), win.simple_returns[one], kw["classes"][::g], self.market, self.dt_years)
        return {
            "reward": float(r.mean()),
            "pnl_per_episode": float(trade.mean()),
            "long_pnl_per_episode": float(hold.mean()),
            "token_acc": float((drawn == win.tokens[rows, -self.horizon :]).mean()),
            "score": float(r.mean()),
        }

    def eval_message(self, val: dict[str, float], improved: bool) -> str:
        return (
            f"step {self.step}: val reward {val['reward']:+.4f}, pnl/episode {val['pnl_per_episode']:+.4f} "
            f"(long {val['long_pnl_per_episode']:+.4f}){'  (best)' if improved else ''}"
        )

    def live_figures(self, stats: dict[str, float]) -> dict[str, float]:
        live = {"loss": stats["loss"], "reward": stats.get("reward", 0.0)}
        if self.last_val:
            live["val_reward"] = self.last_val["reward"]
        return live
