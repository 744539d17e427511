"""The SB3 callback of ``mqc train ppo`` (``mqc.core.train.ppo.PPOTrainer``): progress over timesteps
with live val figures, the linear entropy anneal, SB3's training stats into metrics.jsonl, and the val
evaluation (and selection) every ``eval_freq`` timesteps."""

from __future__ import annotations

from typing import Any

import numpy as np

from mqc.core.train.harness import log_metrics


def ppo_callback(trainer: Any, model: Any) -> Any:
    """The SB3 callback: progress, entropy anneal, training metrics, val evaluation every ``eval_freq``."""
    from stable_baselines3.common.callbacks import BaseCallback

    cfg = trainer.cfg

    class _Cb(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            done = int(model.num_timesteps)
            self.next_eval = (done // cfg.eval_freq + 1) * cfg.eval_freq
            self.seen = done

        def _on_rollout_start(self) -> None:
            if cfg.ent_coef_final is not None:
                frac = min(1.0, self.num_timesteps / cfg.num_timesteps)
                self.model.ent_coef = cfg.ent_coef + frac * (cfg.ent_coef_final - cfg.ent_coef)

        def _on_step(self) -> bool:
            n = self.num_timesteps - self.seen
            self.seen = self.num_timesteps
            live = {"val_sharpe": trainer.last_val.get("sharpe", 0.0)} if trainer.last_val else {}
            trainer.progress.advance(n, **live)
            if self.num_timesteps >= self.next_eval:
                trainer._eval_and_save(self.model, self.num_timesteps)
                trainer._last_eval = self.num_timesteps
                self.next_eval += cfg.eval_freq
                if trainer.stop_after is not None and self.num_timesteps >= trainer.stop_after:
                    trainer.stopped = True
                    return False
            return True

        def _on_rollout_end(self) -> None:
            logs = {k: v for k, v in self.model.logger.name_to_value.items() if isinstance(v, (int, float))}
            ep = [e["r"] for e in self.model.ep_info_buffer] if self.model.ep_info_buffer else []
            log_metrics(
                trainer.kind,
                trainer.run_dir,
                {
                    "kind": "train",
                    "step": int(self.num_timesteps),
                    "ep_reward_mean": float(np.mean(ep)) if ep else None,
                    "ent_coef": float(self.model.ent_coef),
                    **{k.replace("/", "_"): float(v) for k, v in logs.items()},
                },
            )

    return _Cb()
