"""What the portfolio-policy trainers (``dm``, ``sharpe``) share on top of the harness: the panel turned
into training data, the policy model, its val/test evaluation through the backtest engine, the
checkpoint's and config.json's content, and the one-time test report. The loop itself (device,
optimisers, resume, metrics, selection, saving) is ``mqc.core.train.harness.Harness``."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mqc import __version__
from mqc.core import atomic, config, runs
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel
from mqc.core.dates import iso_seconds
from mqc.core.errors import CheckpointError
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import SimResult
from mqc.core.policy.inputs import FeatureProvider, provider_specs
from mqc.core.policy.networks import ModelConfig, build_model, leg_mode
from mqc.core.progress import Progress
from mqc.core.train.checkpoint_kinds import policy_target_weights
from mqc.core.train.config import check_memory
from mqc.core.train.data import TrainData, baselines, evaluate_segment, prepare_data
from mqc.core.train.harness import Harness, TrainResult, device_memory_bytes, split_optimizers
from mqc.core.train.rollout import filled_at, rollout

__all__ = ["BaseTrainer", "TrainResult"]  # TrainResult: re-exported for older imports


class BaseTrainer(Harness):
    """Subclasses set ``kind`` and ``model_type`` and implement ``loss_on(windows_t0)``."""

    kind = "base"
    model_type = "dirichlet_gru"

    def __init__(
        self,
        panel: Panel,
        market: MarketConfig,
        cfg: Any,
        *,
        data_cfg: DataConfig | None = None,
        feature_cfg: FeatureConfig | None = None,
        split_cfg: SplitConfig | None = None,
        providers: Sequence[FeatureProvider] = (),
        progress: Progress | None = None,
        command_line: str | None = None,
        sources: dict[str, dict[str, str]] | None = None,
        resume_dir: str | Path | None = None,
    ) -> None:
        self.market = market
        self.data_cfg = data_cfg or DataConfig(symbols=tuple(panel.symbols), timeframe=panel.timeframe)
        self.feature_cfg = feature_cfg or FeatureConfig()
        self.split_cfg = split_cfg or SplitConfig()
        self.providers = list(providers)
        self.command_line = command_line
        self.sources = sources or {}
        super().__init__(cfg, progress=progress, resume_dir=resume_dir)
        self.data: TrainData = prepare_data(
            panel,
            market,
            self.feature_cfg,
            self.split_cfg,
            lookback=cfg.lookback,
            horizon=cfg.horizon,
            providers=self.providers,
        )
        n_inputs = self.data.inputs.n_features * (panel.n_assets if self.model_type == "dirichlet_gru" else 1)
        check_memory(
            cfg,
            cfg.min_memory_bytes(n_inputs, panel.n_assets),
            device_memory_bytes(self.device),
            f"memory of {self.device}",
        )
        cap = market.max_overnight_leverage
        self.model_cfg = ModelConfig(
            type=self.model_type,  # type: ignore[arg-type]
            n_assets=panel.n_assets,
            n_features=self.data.inputs.n_features,
            lookback=cfg.lookback,
            hidden_size=cfg.hidden_size,
            layers=cfg.layers,
            mode=leg_mode(market.allow_short, market.include_cash, cap),
            cap=cap,
            alpha_min=getattr(cfg, "alpha_min", 0.05),
        )
        self.model = build_model(self.model_cfg).to(self.device)
        self.model.gradient_checkpointing = cfg.gradient_checkpointing
        if cfg.init_checkpoint:
            self._load_init(cfg.init_checkpoint)
        # Trainers call ``self.span`` (the policy's forward over a span of decisions); compiled on
        # CUDA only, the eager module stays the one that is saved and evaluated.
        self.span = self.model.forward_span
        if cfg.compile and self.device.type == "cuda":
            self.span = torch.compile(self.model.forward_span)
        self.optimizers = split_optimizers(self.model, cfg)
        self.inputs_t = torch.as_tensor(self.data.inputs.values, device=self.device)
        self.returns_t = torch.as_tensor(self.data.returns, dtype=torch.float32, device=self.device)
        self.dt_t = torch.as_tensor(self.data.dt_years, dtype=torch.float32, device=self.device)
        self.fees_t = torch.as_tensor(self.data.fees, dtype=torch.float32, device=self.device)
        self.filled = np.asarray(panel.filled, dtype=bool)
        self.train_idx = self.data.decisions("train")
        self.total_steps = self._total_steps()

    def rollout(self, targets: torch.Tensor, idx: torch.Tensor, overnight: np.ndarray) -> SimResult:
        """Simulate unconstrained target paths ``[..., b, H, A]`` at decision bars ``idx`` (``[b, H]``)
        as the backtest engine would fill them: forward-filled bars are held (see ``rollout.rollout``)."""
        _, sim = rollout(
            targets,
            self.returns_t[idx],
            filled_at(self.filled, idx, targets.device),
            self.fees_t,
            self.dt_t[idx],
            self.market,
            self.data.panel.asset_classes,
            overnight,
        )
        return sim

    # ----- setup ----------------------------------------------------------------------------
    def _total_steps(self) -> int:
        if self.cfg.epochs:
            per_step = self.cfg.batch_windows * self.cfg.horizon
            return max(1, math.ceil(self.cfg.epochs * len(self.train_idx) / per_step))
        return self.cfg.steps

    def _load_init(self, ref: str) -> None:
        path = runs.resolve_checkpoint_path(ref)
        ckpt = runs.read_checkpoint(path)
        if ckpt.get("kind") != self.kind:
            raise CheckpointError(
                f"{path}: init checkpoint is kind {ckpt.get('kind')!r}, this trainer is {self.kind!r}"
            )
        try:
            self.model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: weights do not fit this model ({str(exc).splitlines()[0][:160]})",
                hint="use the same symbols, features, lookback and sizes as the init checkpoint",
            ) from exc

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint_fields(self, metrics: dict[str, float]) -> dict[str, Any]:
        panel = self.data.panel
        return {
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "model_config": self.model_cfg.to_dict(),
            "feature_config": {
                **config.to_dict(self.feature_cfg),
                "providers": provider_specs(self.providers),
                "names": list(self.data.inputs.names),
            },
            "market_config": config.to_dict(self.market),
            "train_config": config.to_dict(self.cfg),
            "symbols": list(panel.symbols),
            "asset_classes": list(panel.asset_classes),
            "timeframe": panel.timeframe,
            "lookback": self.cfg.lookback,
            "data_fingerprint": panel.fingerprint,
            # the fingerprinted bars' first and last timestamps: a backtest on a longer history
            # checks the same range
            "data_range": [str(panel.timestamps[0])[:29], str(panel.timestamps[-1])[:29]],
            "feature_stats": self.data.stats,
            "split": self.data.split.to_dict(),
            # the segments' first and last bars, so a backtest on more (or other) bars finds them
            "split_times": self.split_times(),
        }

    def split_times(self) -> dict[str, list[str]]:
        """``{segment: [first bar, last bar]}`` as ISO timestamps (empty segments left out)."""
        ts = self.data.panel.timestamps
        out = {}
        for name in ("train", "val", "test"):
            lo, hi = self.data.split.segment(name)
            if hi > lo:
                out[name] = [str(ts[lo])[:29], str(ts[hi - 1])[:29]]
        return out

    def check_resumable(self, ckpt: dict[str, Any], path: Path, hint: str) -> None:
        if ckpt.get("data_fingerprint") != self.data.panel.fingerprint:
            raise CheckpointError(
                f"{path}: the bars changed since this run started (fingerprint {ckpt.get('data_fingerprint')} !="
                f" {self.data.panel.fingerprint})",
                hint="resume with the same data, or start a new run",
            )

    def run_config(self) -> dict[str, Any]:
        tables = {
            "data": self.data_cfg,
            "market": self.market,
            "features": self.feature_cfg,
            "split": self.split_cfg,
            config.table_name(type(self.cfg)): self.cfg,
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
            "symbols": list(self.data.panel.symbols),
            "asset_classes": list(self.data.panel.asset_classes),
            "timeframe": self.data.panel.timeframe,
            "data_fingerprint": self.data.panel.fingerprint,
            "panel": self.data.panel.describe(),
            "split": self.data.split.to_dict(),
            "feature_names": list(self.data.inputs.names),
            "feature_providers": provider_specs(self.providers),
            "model_config": self.model_cfg.to_dict(),
            "device": str(self.device),
            "total_steps": self.total_steps,
        }

    # ----- evaluation -----------------------------------------------------------------------
    def evaluate(self, segment: str) -> dict[str, float]:
        """Deterministic decode (Dirichlet mean / softmax) replayed by the backtest engine over the
        whole segment: the numbers ``mqc backtest --checkpoint RUN --split SEGMENT`` prints."""
        data = self.data
        lo, hi = data.split.segment(segment)
        targets = np.zeros((len(data.panel), self.model_cfg.n_assets))
        if hi > lo:
            targets[:hi] = policy_target_weights(
                self.model,
                self.inputs_t,
                data.panel.timestamps,
                data.panel.asset_classes,
                self.market,
                max(lo, data.first_decision),
                hi,
                origin=data.first_decision,
            )
        return evaluate_segment(data, targets, segment, self.market)

    def has_val(self) -> bool:
        return len(self.data.decisions("val")) > 0

    def sample_t0(self, n: int) -> torch.Tensor:
        lo = int(self.train_idx[0])
        hi = int(self.train_idx[-1]) - self.cfg.horizon + 2  # exclusive: the window's last decision <= train_idx[-1]
        return torch.randint(lo, hi, (n,))

    def start_message(self) -> str:
        return (
            f"train {self.kind}: {self.data.panel.n_assets} assets, {len(self.train_idx)} train bars -> {self.run_dir}"
        )

    def start_notes(self) -> list[str]:
        notes = [f"warning: {message}" for message in self.data.panel.report.warnings]
        if self.model_cfg.mode == "long" and self.model_cfg.n_assets == 1:
            notes.append("note: one asset, long-only, no cash leg: the policy can only hold it (add --include-cash)")
        return notes

    def finish(self, started: float, *, complete: bool) -> TrainResult:
        test: dict[str, float] = {}
        base: dict[str, dict[str, float]] = {}
        if complete:
            best = runs.read_checkpoint(runs.checkpoint_path(self.run_dir, runs.BEST))
            live = copy.deepcopy(self.model.state_dict())
            self.model.load_state_dict(best["state_dict"])
            test = self.evaluate("test")
            self.model.load_state_dict(live)
            base = baselines(self.data, "test", self.market)
            atomic.write_json(
                self.run_dir / runs.REPORT,
                {
                    "segment": "test",
                    "note": "computed once, after training, on the test split with best.pt (selected on val only)",
                    "kind": self.kind,
                    "best_step": self.best_step,
                    "test_range": list(self._test_range() or ()),  # first and last bar (UTC), as TrainResult
                    "test_bars": list(self.data.split.test),  # bar indices [lo, hi) of the run's panel
                    "test_metrics": test,
                    "val_metrics": self.best_metrics,
                    "test_baselines": base,
                },
            )
        return TrainResult(
            kind=self.kind,
            run_dir=self.run_dir,
            best_checkpoint=runs.checkpoint_path(self.run_dir, runs.BEST),
            latest_checkpoint=runs.checkpoint_path(self.run_dir, runs.LATEST),
            steps=self.step,
            best_step=self.best_step,
            val_metrics=self.best_metrics,
            test_metrics=test,
            test_baselines=base,
            seconds=time.perf_counter() - started,
            test_range=self._test_range(),
            costs=self._costs(),
            resumed_from=self.resumed_from,
        )

    def _costs(self) -> dict[str, Any]:
        from mqc.core.market.costs import cost_summary

        return cost_summary(self.market, self.data.panel.asset_classes)

    def _test_range(self) -> tuple[str, str] | None:
        lo, hi = self.data.split.segment("test")
        ts = self.data.panel.timestamps
        return (iso_seconds(ts[lo]), iso_seconds(ts[hi - 1])) if hi > lo else None
