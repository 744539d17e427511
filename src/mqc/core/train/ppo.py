"""``mqc train ppo``: Stable-Baselines3 PPO in the portfolio env, selected on val, reported once on test.

The panel becomes a feature cube (``mqc.core.gym.cube``, cached) and the env arrays; the split is the
one every trainer uses (``split_for`` with the cube's warm-up as embargo). PPO trains on episodes with
random starts in the train segment; every ``eval_freq`` timesteps the deterministic policy is replayed
(``gym.replay``) and scored on val through the backtest engine (``evaluate_segment``), and best.pt
follows the best val score, never the training reward. At the end best.pt is scored once on test,
next to the same baselines as ``train dm``. The run directory is written through ``mqc.core.runs``:
config.json, metrics.jsonl, checkpoints/best.pt and latest.pt (kind ``ppo``: policy weights,
normaliser statistics, env/cube/market settings; ``mqc backtest --checkpoint RUN`` replays them),
checkpoints/best.zip and latest.zip (SB3's own format), report.json.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mqc import __version__
from mqc.core import atomic, config, runs
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel, Split
from mqc.core.data.split import split_for
from mqc.core.errors import DataError, require
from mqc.core.gym.book import EnvData, env_data, resolve_mode
from mqc.core.gym.config import CubeConfig, EnvConfig, PPOTrainConfig
from mqc.core.gym.cube import build_cube, slice_cube
from mqc.core.gym.normalize import Identity, ObsNormalizer
from mqc.core.gym.replay import EnvPolicyStrategy, deterministic_act
from mqc.core.market.config import MarketConfig
from mqc.core.progress import NULL, Progress
from mqc.core.train.data import baselines, evaluate_segment
from mqc.core.train.harness import TrainerSpec, TrainResult, announce_run, log_metrics
from mqc.core.train.ppo_callback import ppo_callback


@dataclasses.dataclass
class _Segments:
    """What ``evaluate_segment`` / ``baselines`` read: the panel and its split."""

    panel: Panel
    split: Split


def _make_env(data: EnvData, cfg: EnvConfig, lo: int, hi: int, mode: str) -> Any:
    from stable_baselines3.common.monitor import Monitor

    from mqc.core.gym.env import PortfolioEnv

    return Monitor(PortfolioEnv(data, cfg, lo=lo, hi=hi, mode=mode))


class PPOTrainer:
    """SB3 PPO on ``PortfolioEnv`` (see module docstring)."""

    kind = "ppo"

    def __init__(
        self,
        panel: Panel,
        market: MarketConfig,
        cfg: PPOTrainConfig,
        *,
        data_cfg: DataConfig | None = None,
        feature_cfg: FeatureConfig | None = None,
        split_cfg: SplitConfig | None = None,
        providers: Sequence[Any] = (),
        progress: Progress | None = None,
        command_line: str | None = None,
        sources: dict[str, dict[str, str]] | None = None,
        resume_dir: str | Path | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        require("stable_baselines3", "rl")
        self.resume_dir = Path(resume_dir) if resume_dir else None
        extra = extra or {}
        self.cfg = cfg
        self.market = market
        self.env_cfg: EnvConfig = extra.get("env") or EnvConfig()
        self.cube_cfg: CubeConfig = extra.get("cube") or CubeConfig()
        self.data_cfg = data_cfg or DataConfig(symbols=tuple(panel.symbols), timeframe=panel.timeframe)
        self.split_cfg = split_cfg or SplitConfig()
        self.progress = progress or NULL
        self.command_line = command_line
        self.sources = sources or {}
        self.panel = panel
        self.mode = resolve_mode(self.env_cfg, market)
        self.cube = build_cube(panel, self.cube_cfg, progress=self.progress)
        self.data = env_data(panel, self.cube, market)
        try:
            self.split = split_for(len(panel), self.split_cfg, 1, self.cube.warmup)
        except DataError as exc:
            raise DataError(str(exc), hint=exc.hint or "load more history (--start earlier)") from exc
        lo, hi = self.split.train
        if hi - 2 < max(lo, self.data.first) + 1:
            raise DataError(
                f"the train split [{lo}, {hi}) leaves no decision bars after the features' warm-up ({self.data.first})",
                hint="load more history (--start earlier)",
            )
        for seg in ("val", "test"):
            s0, s1 = self.split.segment(seg)
            if s1 > s0 and s1 - 2 < max(s0, self.data.first):
                raise DataError(f"the {seg} split holds no decision bar", hint="load more history (--start earlier)")
        self.normalizer: Any = (
            ObsNormalizer(self.data.obs_size, clip=self.env_cfg.clip_obs) if self.env_cfg.normalize else Identity()
        )
        self.best_score = -np.inf
        self.best_step = 0
        self.best_metrics: dict[str, Any] = {}
        self.last_val: dict[str, Any] = {}
        self.resumed_from: dict[str, Any] | None = None

    # ----- envs -----------------------------------------------------------------------------
    def _train_env(self) -> Any:
        from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

        from mqc.core.gym.vec import BatchedPortfolioEnv, NormalizedVecEnv

        lo, hi = self.split.train
        c = self.cfg
        if c.vec_env == "batched":
            venv = BatchedPortfolioEnv(self.data, self.env_cfg, c.n_envs, lo=lo, hi=hi, seed=c.seed, mode=self.mode)
        else:
            fns = [functools.partial(_make_env, self.data, self.env_cfg, lo, hi, self.mode) for _ in range(c.n_envs)]
            venv = DummyVecEnv(fns) if c.vec_env == "dummy" else SubprocVecEnv(fns)
        venv.seed(c.seed)
        return NormalizedVecEnv(venv, self.normalizer)

    # ----- evaluation -----------------------------------------------------------------------
    def strategy(self, policy: Any) -> EnvPolicyStrategy:
        return EnvPolicyStrategy(
            kind="ppo",
            symbols=tuple(self.panel.symbols),
            timeframe=self.panel.timeframe,
            market=self.market,
            cube_cfg=self.cube_cfg,
            env_cfg=self.env_cfg,
            mode=self.mode,
            act=deterministic_act(policy),
            normalizer=self.normalizer,
            asset_classes=tuple(self.panel.asset_classes),
        )

    def evaluate(self, policy: Any, segment: str) -> dict[str, Any]:
        """The deterministic policy replayed on the bars up to the segment's end, scored by the engine
        on the segment: what ``mqc backtest --checkpoint RUN --split SEGMENT`` prints."""
        lo, hi = self.split.segment(segment)
        targets = np.zeros((len(self.panel), self.panel.n_assets))
        if hi > lo:
            strat = self.strategy(policy)
            targets[:hi] = strat.target_weights(self.panel.slice(0, hi), slice_cube(self.cube, 0, hi))
        return evaluate_segment(_Segments(self.panel, self.split), targets, segment, self.market)

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint(
        self, model: Any, step: int, metrics: dict[str, Any], *, train_state: bool = False
    ) -> dict[str, Any]:
        panel = self.panel
        ckpt = runs.make_checkpoint(
            self.kind,
            __version__,
            state_dict={k: v.detach().cpu().clone() for k, v in model.policy.state_dict().items()},
            policy_kwargs={"net_arch": list(self.cfg.net_arch)},
            obs_size=self.data.obs_size,
            n_actions=int(model.action_space.shape[0]),
            action_mode=self.mode,
            normalizer=self.normalizer.to_dict(),
            env_config=config.to_dict(self.env_cfg),
            cube_config=config.to_dict(self.cube_cfg),
            feature_names=list(self.cube.names),
            market_config=config.to_dict(self.market),
            train_config=config.to_dict(self.cfg),
            symbols=list(panel.symbols),
            asset_classes=list(panel.asset_classes),
            timeframe=panel.timeframe,
            lookback=1,
            data_fingerprint=panel.fingerprint,
            data_range=[str(panel.timestamps[0])[:29], str(panel.timestamps[-1])[:29]],
            split=self.split.to_dict(),
            split_times=self.split_times(),
        )
        ckpt.update(step=step, metrics=dict(metrics))
        if train_state:
            # with latest.zip (SB3's optimiser and counters) what --resume needs; the env's random
            # starts continue from a fresh stream, so a resumed run is not bit-identical
            ckpt["train_state"] = {
                "best_score": float(self.best_score),
                "best_step": int(self.best_step),
                "best_metrics": dict(self.best_metrics),
                "last_val": dict(self.last_val),
                "normalizer_frozen": bool(self.normalizer.frozen),
            }
        return ckpt

    def split_times(self) -> dict[str, list[str]]:
        ts = self.panel.timestamps
        out = {}
        for name in ("train", "val", "test"):
            lo, hi = self.split.segment(name)
            if hi > lo:
                out[name] = [str(ts[lo])[:29], str(ts[hi - 1])[:29]]
        return out

    def run_config(self) -> dict[str, Any]:
        tables = {
            "data": self.data_cfg,
            "market": self.market,
            "split": self.split_cfg,
            "env": self.env_cfg,
            "cube": self.cube_cfg,
            "ppo": self.cfg,
        }
        return {
            "kind": self.kind,
            "mqc_version": __version__,
            "command_line": self.command_line,
            "configs": {
                name: {
                    k: {"value": v, "source": self.sources.get(name, {}).get(k, "api")}
                    for k, v in config.to_dict(obj).items()
                }
                for name, obj in tables.items()
            },
            "symbols": list(self.panel.symbols),
            "asset_classes": list(self.panel.asset_classes),
            "timeframe": self.panel.timeframe,
            "data_fingerprint": self.panel.fingerprint,
            "panel": self.panel.describe(),
            "split": self.split.to_dict(),
            "feature_names": list(self.cube.names),
            "feature_cube": {"key": self.cube.key, "path": str(self.cube.path) if self.cube.path else None},
            "action_mode": self.mode,
            "device": self.cfg.device,
            "total_steps": self.cfg.num_timesteps,
        }

    # ----- the loop -------------------------------------------------------------------------
    def _eval_and_save(self, model: Any, step: int) -> None:
        frozen = self.normalizer.frozen
        self.normalizer.frozen = True
        try:
            val = self.evaluate(model.policy, "val") if self._has_val() else {}
        finally:
            self.normalizer.frozen = frozen
        self.last_val = val
        score = float(val.get(self.cfg.select_metric, 0.0)) if val else float(step)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_step, self.best_metrics = score, step, val
            runs.save_checkpoint(runs.checkpoint_path(self.run_dir, runs.BEST), self.checkpoint(model, step, val))
            model.save(runs.checkpoint_path(self.run_dir, "best.zip"))
        runs.save_checkpoint(
            runs.checkpoint_path(self.run_dir, runs.LATEST), self.checkpoint(model, step, val, train_state=True)
        )
        model.save(runs.checkpoint_path(self.run_dir, "latest.zip"))
        log_metrics(
            self.kind,
            self.run_dir,
            {"kind": "eval", "step": step, "best": improved, **{f"eval_{k}": v for k, v in val.items()}},
        )
        if val:
            self.progress.log(
                f"step {step}: val sharpe {val['sharpe']:.3f}, return {val['total_return']:+.2%}, "
                f"turnover {val['turnover']:.2%}{'  (best)' if improved else ''}"
            )

    def _has_val(self) -> bool:
        lo, hi = self.split.val
        return hi > lo

    def _restore(self, venv: Any) -> Any:
        """``--resume``: SB3's latest.zip (weights, optimiser, timesteps) and mqc's latest.pt (normaliser,
        selection state). Raises CheckpointError when either is missing or of other bars."""
        from stable_baselines3 import PPO

        from mqc.core.errors import CheckpointError

        path = runs.checkpoint_path(self.run_dir, runs.LATEST)
        zip_path = runs.checkpoint_path(self.run_dir, "latest.zip")
        ckpt = runs.read_checkpoint(path)
        state = ckpt.get("train_state")
        if not isinstance(state, dict) or not zip_path.is_file():
            raise CheckpointError(
                f"{path}: no training state (or no latest.zip) to resume from", hint="start a new run"
            )
        if ckpt.get("data_fingerprint") != self.panel.fingerprint:
            raise CheckpointError(
                f"{path}: the bars changed since this run started", hint="resume with the same data, or start a new run"
            )
        if self.env_cfg.normalize:
            norm = ObsNormalizer.from_dict(ckpt["normalizer"])
            norm.frozen = bool(state.get("normalizer_frozen", False))
            self.normalizer = norm
            venv.normalizer = norm
        self.best_score = float(state["best_score"])
        self.best_step = int(state["best_step"])
        self.best_metrics = dict(state["best_metrics"])
        self.last_val = dict(state["last_val"])
        step = int(ckpt["step"])
        runs.truncate_metrics(self.run_dir, step)
        self._last_eval = step
        self.resumed_from = {"checkpoint": str(path), "step": step, "total_steps": self.cfg.num_timesteps}
        return PPO.load(str(zip_path), env=venv, device=self.cfg.device)

    def _warmstart(self, model: Any) -> None:
        """Behaviour cloning before PPO: fit the policy's mean action to an offline dataset's actions.

        Raises:
            DataError: the dataset is of other symbols, another action mode or observation layout, or
                reaches past the train segment (its rewards would leak val/test bars into training).
        """
        import torch

        from mqc.core.gym.offline import read_dataset

        path = self.cfg.bc_warmstart
        ds = read_dataset(path)
        md = ds.metadata
        hint = "write it for this run: mqc data offline --policy topk --symbols ... (same market, --segment train)"
        if tuple(md.get("symbols", ())) != tuple(self.panel.symbols):
            raise DataError(
                f"{path}: dataset of {','.join(md.get('symbols', []))}, the run trades {','.join(self.panel.symbols)}",
                hint=hint,
            )
        if md.get("action_mode") != self.mode or ds.observations.shape[1] != self.data.obs_size:
            raise DataError(
                f"{path}: dataset actions are {md.get('action_mode')} with observations of {ds.observations.shape[1]}, "
                f"the env's are {self.mode} with {self.data.obs_size}",
                hint=hint,
            )
        seg_end = int(md.get("segment", [0, 10**12])[1])
        if md.get("data_fingerprint") != self.panel.fingerprint or seg_end > self.split.train[1]:
            raise DataError(f"{path}: the dataset reaches past this run's train segment (or other bars)", hint=hint)
        self.normalizer.update(ds.observations)
        obs = torch.as_tensor(self.normalizer(ds.observations), device=model.device)
        act = torch.as_tensor(ds.actions, device=model.device)
        policy = model.policy
        opt = torch.optim.Adam(policy.parameters(), lr=1e-2)
        gen = torch.Generator().manual_seed(self.cfg.seed)
        first = last = 0.0
        for epoch in range(self.cfg.bc_epochs):
            order = torch.randperm(len(obs), generator=gen)
            total = 0.0
            for s in range(0, len(obs), 64):
                idx = order[s : s + 64]
                mean = policy.get_distribution(obs[idx]).distribution.mean
                loss = torch.nn.functional.mse_loss(mean, act[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            last = total / len(obs)
            first = last if epoch == 0 else first
        log_metrics(
            self.kind,
            self.run_dir,
            {"kind": "bc", "step": 0, "transitions": len(obs), "loss_first": first, "loss_last": last},
        )
        self.progress.log(
            f"bc warm start: {len(obs)} transitions of {md.get('policy')}, loss {first:.4f} -> {last:.4f}"
        )

    def fit(self, *, stop_after: int | None = None) -> TrainResult:
        """Train, select on val, report once on test; write the run directory.

        Args:
            stop_after: stop (as if killed) after the first evaluation at or past this timestep
                (tests of ``--resume``); the result then has no test metrics.
        """
        import torch
        from stable_baselines3 import PPO

        started = time.perf_counter()
        torch.set_num_threads(self.cfg.threads)
        if self.resume_dir is not None:
            self.run_dir = self.resume_dir
        else:
            self.run_dir = runs.new_run_dir(self.kind, self.cfg.save_dir)
            runs.write_run_config(self.run_dir, self.run_config())
        announce_run(self.kind, self.run_dir)
        c = self.cfg
        venv = self._train_env()
        tb = None
        if c.tensorboard:
            try:
                import tensorboard  # noqa: F401

                tb = str(self.run_dir / "tensorboard")
            except ImportError:
                tb = None
        model = self._restore(venv) if self.resume_dir is not None else None
        model = model or PPO(
            "MlpPolicy",
            venv,
            learning_rate=c.learning_rate,
            n_steps=c.n_steps,
            batch_size=min(c.batch_size, c.n_steps * c.n_envs),
            n_epochs=c.n_epochs,
            gamma=c.gamma,
            gae_lambda=c.gae_lambda,
            clip_range=c.clip_range,
            ent_coef=c.ent_coef,
            vf_coef=c.vf_coef,
            max_grad_norm=c.max_grad_norm,
            target_kl=c.target_kl,
            seed=c.seed,
            device=c.device,
            policy_kwargs={"net_arch": list(c.net_arch)},
            tensorboard_log=tb,
            verbose=0,
        )
        self.progress.start(
            c.num_timesteps,
            f"train ppo: {self.panel.n_assets} assets, {self.split.train[1] - self.split.train[0]} train bars "
            f"-> {self.run_dir}",
        )
        for note in self.panel.report.warnings:
            self.progress.log(f"warning: {note}")
        self.progress.log(
            f"feature cube: {self.cube.values.shape[2]} features x {self.panel.n_assets} assets "
            f"({'cached' if self.cube.cached else f'built in {self.cube.seconds:.1f} s'}; {self.cube_cfg.forecaster})"
        )
        if self.resumed_from is None and c.bc_warmstart:
            self._warmstart(model)
        if self.resumed_from is not None:
            self.progress.advance(self.resumed_from["step"])
            self.progress.log(
                f"resumed at step {self.resumed_from['step']} of {c.num_timesteps} "
                f"from {self.resumed_from['checkpoint']}"
            )
        self.stop_after = stop_after
        try:
            remaining = c.num_timesteps - int(model.num_timesteps)
            if remaining > 0:
                model.learn(
                    total_timesteps=remaining,
                    callback=ppo_callback(self, model),
                    progress_bar=False,
                    reset_num_timesteps=self.resumed_from is None,
                )
            if self.stopped:
                return self._partial(model, started)
            if self.best_step == 0 or model.num_timesteps != self._last_eval:
                self._eval_and_save(model, model.num_timesteps)
        finally:
            self.progress.finish()
            venv.close()
        return self.finish(model, started)

    stopped = False
    stop_after: int | None = None

    def _partial(self, model: Any, started: float) -> TrainResult:
        return TrainResult(
            kind=self.kind,
            run_dir=self.run_dir,
            best_checkpoint=runs.checkpoint_path(self.run_dir, runs.BEST),
            latest_checkpoint=runs.checkpoint_path(self.run_dir, runs.LATEST),
            steps=int(model.num_timesteps),
            best_step=self.best_step,
            val_metrics=self.best_metrics,
            test_metrics={},
            seconds=time.perf_counter() - started,
        )

    def finish(self, model: Any, started: float) -> TrainResult:
        best = runs.read_checkpoint(runs.checkpoint_path(self.run_dir, runs.BEST))
        live = copy.deepcopy(model.policy.state_dict())
        model.policy.load_state_dict(best["state_dict"])
        norm = self.normalizer
        self.normalizer = ObsNormalizer.from_dict(best["normalizer"]) if self.env_cfg.normalize else Identity()
        test = self.evaluate(model.policy, "test")
        self.normalizer = norm
        model.policy.load_state_dict(live)
        segs = _Segments(self.panel, self.split)
        base = baselines(segs, "test", self.market)
        test_range = self._test_range()
        atomic.write_json(
            self.run_dir / runs.REPORT,
            {
                "segment": "test",
                "note": "computed once, after training, on the test split with best.pt (selected on val only)",
                "kind": self.kind,
                "best_step": self.best_step,
                "test_range": list(test_range or ()),
                "test_bars": list(self.split.test),
                "test_metrics": test,
                "val_metrics": self.best_metrics,
                "test_baselines": base,
            },
        )
        from mqc.core.market.costs import cost_summary

        return TrainResult(
            kind=self.kind,
            run_dir=self.run_dir,
            best_checkpoint=runs.checkpoint_path(self.run_dir, runs.BEST),
            latest_checkpoint=runs.checkpoint_path(self.run_dir, runs.LATEST),
            steps=int(model.num_timesteps),
            best_step=self.best_step,
            val_metrics=self.best_metrics,
            test_metrics=test,
            test_baselines=base,
            seconds=time.perf_counter() - started,
            test_range=test_range,
            costs=cost_summary(self.market, self.panel.asset_classes),
            resumed_from=self.resumed_from,
        )

    def _test_range(self) -> tuple[str, str] | None:
        lo, hi = self.split.test
        ts = self.panel.timestamps
        return (str(ts[lo])[:19], str(ts[hi - 1])[:19]) if hi > lo else None

    _last_eval = -1


def ppo_trainer_spec() -> TrainerSpec:
    """``mqc train ppo``: the ``[ppo]`` table plus ``[env]`` and ``[cube]``."""
    return TrainerSpec("ppo", PPOTrainConfig, PPOTrainer, extra_tables=(EnvConfig, CubeConfig), takes_extra=True)
