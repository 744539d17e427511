"""The training loop both trainers share: device/dtype, optimisers (Muon + AdamW), the step loop with
gradient accumulation, val evaluation and best-checkpoint selection, latest.pt for ``--resume``, and
the one-time test report."""

from __future__ import annotations

import abc
import contextlib
import copy
import math
import resource
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mqc import __version__
from mqc.core import atomic, config
from mqc.core.data.config import DataConfig, FeatureConfig, SplitConfig
from mqc.core.data.panel import Panel
from mqc.core.errors import CheckpointError, ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.market.simulator import SimResult
from mqc.core.policy.inputs import FeatureProvider, provider_specs
from mqc.core.policy.networks import ModelConfig, build_model, leg_mode
from mqc.core.policy.strategy import CHECKPOINT_FORMAT, CHECKPOINT_VERSION, read_checkpoint
from mqc.core.progress import NULL, Progress
from mqc.core.train import rundir
from mqc.core.train.checkpoint_kinds import policy_target_weights
from mqc.core.train.config import check_memory
from mqc.core.train.data import TrainData, baselines, evaluate_segment, prepare_data
from mqc.core.train.rollout import filled_at, rollout


@dataclass
class TrainResult:
    """What a finished run produced. ``test_metrics`` were computed once, on the test split."""

    kind: str
    run_dir: Path
    best_checkpoint: Path
    latest_checkpoint: Path
    steps: int
    best_step: int
    val_metrics: dict[str, float]
    test_metrics: dict[str, float]
    test_baselines: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    test_range: tuple[str, str] | None = None  # first and last bar of the test segment (UTC)
    costs: dict[str, Any] = field(default_factory=dict)  # the cost model trained and scored under
    resumed_from: dict[str, Any] | None = None  # {"checkpoint", "step", "total_steps"} of a --resume

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("run_dir", "best_checkpoint", "latest_checkpoint"):
            d[k] = str(d[k])
        return d


@dataclass(frozen=True)
class TrainInterrupt:
    """Where a run stood when Ctrl-C stopped it; attached to the ``KeyboardInterrupt`` that ``fit``
    re-raises (as ``exc.train_interrupt``) so the command can say how to continue."""

    kind: str
    run_dir: Path
    step: int
    total_steps: int
    checkpoint_step: int | None  # the step latest.pt holds (None: killed before the first eval)

    def message(self) -> str:
        """One or two lines for a person: where it stopped and the command that continues it."""
        at = f"stopped at step {self.step} of {self.total_steps}; run directory {self.run_dir}"
        if self.checkpoint_step is None:
            return f"{at}\nno checkpoint yet (the first is saved at the first evaluation): start a new run"
        return (f"{at}\ncontinue from its last checkpoint (step {self.checkpoint_step}): "
                f"mqc train {self.kind} --resume {self.run_dir}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available", hint="use --device cpu (or auto)")
    return dev


def device_memory_bytes(device: torch.device) -> int | None:
    """Total memory of ``device`` (a GPU's, else the machine's RAM); None when unknown."""
    import os

    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError, RuntimeError):
        return None


def peak_mem_gb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return rss / (2**30 if sys.platform == "darwin" else 2**20)


class BaseTrainer(abc.ABC):
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
        self.cfg = cfg
        self.market = market
        self.data_cfg = data_cfg or DataConfig(symbols=tuple(panel.symbols), timeframe=panel.timeframe)
        self.feature_cfg = feature_cfg or FeatureConfig()
        self.split_cfg = split_cfg or SplitConfig()
        self.providers = list(providers)
        self.progress = progress or NULL
        self.command_line = command_line
        self.sources = sources or {}
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.device = resolve_device(cfg.device)
        if cfg.dtype == "bf16" and self.device.type != "cuda":
            raise ConfigError("dtype bf16 is only supported on CUDA (autocast)", hint="use --dtype auto or fp32 on CPU")
        self.autocast = self.device.type == "cuda" and cfg.dtype in ("auto", "bf16")
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.data: TrainData = prepare_data(
            panel, market, self.feature_cfg, self.split_cfg, lookback=cfg.lookback, horizon=cfg.horizon, providers=self.providers
        )
        n_inputs = self.data.inputs.n_features * (panel.n_assets if self.model_type == "dirichlet_gru" else 1)
        check_memory(cfg, cfg.min_memory_bytes(n_inputs, panel.n_assets), device_memory_bytes(self.device), f"memory of {self.device}")
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
        self.optimizers = self._optimizers()
        self.inputs_t = torch.as_tensor(self.data.inputs.values, device=self.device)
        self.returns_t = torch.as_tensor(self.data.returns, dtype=torch.float32, device=self.device)
        self.dt_t = torch.as_tensor(self.data.dt_years, dtype=torch.float32, device=self.device)
        self.fees_t = torch.as_tensor(self.data.fees, dtype=torch.float32, device=self.device)
        self.filled = np.asarray(panel.filled, dtype=bool)
        self.train_idx = self.data.decisions("train")
        self.total_steps = self._total_steps()
        self.step = 0
        self.best_score = -math.inf
        self.best_step = 0
        self.best_metrics: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.saved_step: int | None = None  # the step checkpoints/latest.pt holds
        self.resumed_from: dict[str, Any] | None = None

    # ----- hooks for subclasses -------------------------------------------------------------
    @abc.abstractmethod
    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss (to minimise) and logged stats for windows whose first decision bars are ``t0``."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``extra_state`` saved (default: nothing)."""

    def after_step(self) -> None:  # noqa: B027 - optional hook
        """Called after each optimiser step (default: nothing)."""

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

    def _optimizers(self) -> list[torch.optim.Optimizer]:
        named = list(self.model.named_parameters())
        hidden = set(self.model.hidden_matrices()) if self.cfg.muon else set()  # type: ignore[operator]
        muon = [p for n, p in named if n in hidden]
        rest = [p for n, p in named if n not in hidden]
        opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(rest, lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)]
        if muon:
            opts.append(torch.optim.Muon(muon, lr=self.cfg.muon_lr, weight_decay=self.cfg.weight_decay))
        return opts

    def _load_init(self, ref: str) -> None:
        from mqc.core.policy.strategy import resolve_checkpoint_path

        path = resolve_checkpoint_path(ref)
        ckpt = read_checkpoint(path)
        if ckpt.get("kind") != self.kind:
            raise CheckpointError(f"{path}: init checkpoint is kind {ckpt.get('kind')!r}, this trainer is {self.kind!r}")
        try:
            self.model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise CheckpointError(
                f"{path}: weights do not fit this model ({str(exc).splitlines()[0][:160]})",
                hint="use the same symbols, features, lookback and sizes as the init checkpoint",
            ) from exc

    # ----- checkpoints ----------------------------------------------------------------------
    def checkpoint(self, metrics: dict[str, float], *, train_state: bool) -> dict[str, Any]:
        panel = self.data.panel
        ckpt: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_VERSION,
            "mqc_version": __version__,
            "kind": self.kind,
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "model_config": self.model_cfg.to_dict(),
            "feature_config": {**config.to_dict(self.feature_cfg), "providers": provider_specs(self.providers), "names": list(self.data.inputs.names)},
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
            "step": self.step,
            "metrics": dict(metrics),
        }
        if train_state:
            ckpt["train_state"] = {
                "optimizers": [o.state_dict() for o in self.optimizers],
                "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None,
                "best_score": self.best_score,
                "best_step": self.best_step,
                "best_metrics": self.best_metrics,
                "last_val": self.last_val,
                **self.extra_state(),
            }
        return ckpt

    def split_times(self) -> dict[str, list[str]]:
        """``{segment: [first bar, last bar]}`` as ISO timestamps (empty segments left out)."""
        ts = self.data.panel.timestamps
        out = {}
        for name in ("train", "val", "test"):
            lo, hi = self.data.split.segment(name)
            if hi > lo:
                out[name] = [str(ts[lo])[:29], str(ts[hi - 1])[:29]]
        return out

    def _restore(self, run_dir: Path) -> None:
        path = run_dir / "checkpoints" / "latest.pt"
        fresh = f"start a new run; to keep the trained weights add --init-checkpoint {run_dir / 'checkpoints' / 'best.pt'}"
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc} (--resume needs the run's own latest.pt)", hint=fresh) from exc
        if not isinstance(ckpt.get("train_state"), dict):
            # best.pt holds the weights only: copied over latest.pt it can be backtested, not resumed
            raise CheckpointError(
                f"{path}: holds no training state (optimiser, random state), so the run cannot continue from it; "
                "a best.pt copied over latest.pt looks like this",
                hint=fresh,
            )
        if ckpt.get("data_fingerprint") != self.data.panel.fingerprint:
            raise CheckpointError(
                f"{path}: the bars changed since this run started (fingerprint {ckpt.get('data_fingerprint')} != {self.data.panel.fingerprint})",
                hint="resume with the same data, or start a new run",
            )
        state = ckpt["train_state"]
        try:
            self.model.load_state_dict(ckpt["state_dict"])
            for opt, sd in zip(self.optimizers, state["optimizers"], strict=True):
                opt.load_state_dict(sd)
            torch.set_rng_state(state["torch_rng"])
            if state.get("cuda_rng") is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"], self.device)
            self.step = int(ckpt["step"])
            self.best_score = float(state["best_score"])
            self.best_step = int(state["best_step"])
            self.best_metrics = dict(state["best_metrics"])
            self.last_val = dict(state["last_val"])
            self.load_extra_state(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(
                f"{path}: incomplete training state ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                hint=fresh,
            ) from exc
        rundir.truncate_metrics(run_dir, self.step)
        self.saved_step = self.step
        self.resumed_from = {"checkpoint": str(path), "step": self.step, "total_steps": self.total_steps}

    def _write_config(self) -> None:
        tables = {
            "data": self.data_cfg,
            "market": self.market,
            "features": self.feature_cfg,
            "split": self.split_cfg,
            config.table_name(type(self.cfg)): self.cfg,
        }
        doc = {
            "kind": self.kind,
            "mqc_version": __version__,
            "command_line": self.command_line,
            "configs": {
                name: {k: {"value": v, "source": self.sources.get(name, {}).get(k, "api")} for k, v in config.to_dict(obj).items()}
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
        atomic.write_json(self.run_dir / "config.json", doc)

    # ----- evaluation -----------------------------------------------------------------------
    def evaluate(self, segment: str) -> dict[str, float]:
        """Deterministic decode (Dirichlet mean / softmax) replayed by the backtest engine over the
        whole segment: the numbers ``mqc backtest --checkpoint RUN --split SEGMENT`` prints."""
        data = self.data
        lo, hi = data.split.segment(segment)
        targets = np.zeros((len(data.panel), self.model_cfg.n_assets))
        if hi > lo:
            targets[:hi] = policy_target_weights(
                self.model, self.inputs_t, data.panel.timestamps, data.panel.asset_classes, self.market, max(lo, data.first_decision), hi,
                origin=data.first_decision,
            )
        return evaluate_segment(data, targets, segment, self.market)

    # ----- the loop -------------------------------------------------------------------------
    def _sample_t0(self, n: int) -> torch.Tensor:
        lo = int(self.train_idx[0])
        hi = int(self.train_idx[-1]) - self.cfg.horizon + 2  # exclusive: the window's last decision <= train_idx[-1]
        return torch.randint(lo, hi, (n,))

    def train_step(self) -> dict[str, float]:
        b = self.cfg.batch_windows
        mb = self.cfg.microbatch_windows or b
        t0 = self._sample_t0(b)
        for o in self.optimizers:
            o.zero_grad(set_to_none=True)
        stats: dict[str, float] = {}
        for s in range(0, b, mb):
            chunk = t0[s : s + mb].to(self.device)
            ctx = torch.autocast("cuda", dtype=torch.bfloat16) if self.autocast else contextlib.nullcontext()
            with ctx:
                loss, st = self.loss_on(chunk)
            (loss * (chunk.numel() / b)).backward()
            for k, v in st.items():
                stats[k] = stats.get(k, 0.0) + v * chunk.numel() / b
        if self.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        for o in self.optimizers:
            o.step()
        self.after_step()
        stats.update(microbatch=mb, windows=b)
        return stats

    def fit(self, *, stop_after: int | None = None) -> TrainResult:
        """Train, evaluating on val every ``eval_interval`` steps; write the run directory.

        Args:
            stop_after: stop (as if killed) once this step's checkpoint is written; for tests of
                ``--resume``. The returned result then has no test metrics.
        Returns:
            TrainResult with val metrics of best.pt and test metrics computed once at the end.
        """
        started = time.perf_counter()
        if self.resume_dir is not None:
            self.run_dir = self.resume_dir
            self._restore(self.run_dir)
        else:
            self.run_dir = rundir.new_run_dir(self.kind, self.cfg.save_dir)
            self._write_config()
        ckpt_dir = self.run_dir / "checkpoints"
        self.progress.start(self.total_steps, f"train {self.kind}: {self.data.panel.n_assets} assets, {len(self.train_idx)} train bars -> {self.run_dir}")
        if self.step:
            self.progress.advance(self.step)
        if self.resumed_from is not None:
            self.progress.log(f"resumed at step {self.step} of {self.total_steps} from {self.resumed_from['checkpoint']}")
        for message in self.data.panel.report.warnings:
            self.progress.log(f"warning: {message}")
        if self.model_cfg.mode == "long" and self.model_cfg.n_assets == 1:
            self.progress.log("note: one asset, long-only, no cash leg: the policy can only hold it (add --include-cash)")
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            while self.step < self.total_steps:
                self.step += 1
                st = self.train_step()
                if self.step % self.cfg.log_interval == 0 or self.step == self.total_steps:
                    row = {"kind": "train", "step": self.step, **{k: float(v) for k, v in st.items()}}
                    row.update(microbatch=int(st["microbatch"]), windows=int(st["windows"]), peak_mem_gb=round(peak_mem_gb(self.device), 4))
                    rundir.append_metrics(self.run_dir, row)
                if self.step % self.cfg.eval_interval == 0 or self.step == self.total_steps:
                    self._eval_and_save(ckpt_dir)
                live = {"loss": st["loss"]}
                if self.last_val:
                    live["val_sharpe"] = self.last_val.get("sharpe", 0.0)
                self.progress.advance(1, **live)
                if stop_after is not None and self.step >= stop_after and self.step % self.cfg.eval_interval == 0:
                    break
        except KeyboardInterrupt as exc:
            exc.train_interrupt = TrainInterrupt(self.kind, self.run_dir, self.step, self.total_steps, self.saved_step)  # type: ignore[attr-defined]
            raise
        finally:
            self.progress.finish()
        return self._finish(started, complete=self.step >= self.total_steps)

    def _eval_and_save(self, ckpt_dir: Path) -> None:
        val = self.evaluate("val")
        self.last_val = val
        # Without a val split (val_frac = 0) there is nothing to select on: best.pt follows latest.
        has_val = len(self.data.decisions("val")) > 0
        score = float(val.get(self.cfg.select_metric, 0.0)) if has_val else float(self.step)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_step, self.best_metrics = score, self.step, val
            rundir.save_checkpoint(ckpt_dir / "best.pt", self.checkpoint(val, train_state=False))
        rundir.append_metrics(self.run_dir, {"kind": "eval", "step": self.step, "best": improved, **{f"eval_{k}": v for k, v in val.items()}})
        rundir.save_checkpoint(ckpt_dir / "latest.pt", self.checkpoint(val, train_state=True))
        self.saved_step = self.step
        # turnover in percent, as the backtest table shows it
        self.progress.log(f"step {self.step}: val sharpe {val['sharpe']:.3f}, return {val['total_return']:+.2%}, turnover {val['turnover']:.2%}{'  (best)' if improved else ''}")

    def _finish(self, started: float, *, complete: bool) -> TrainResult:
        ckpt_dir = self.run_dir / "checkpoints"
        test: dict[str, float] = {}
        base: dict[str, dict[str, float]] = {}
        if complete:
            best = read_checkpoint(ckpt_dir / "best.pt")
            live = copy.deepcopy(self.model.state_dict())
            self.model.load_state_dict(best["state_dict"])
            test = self.evaluate("test")
            self.model.load_state_dict(live)
            base = baselines(self.data, "test", self.market)
            atomic.write_json(
                self.run_dir / "report.json",
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
            best_checkpoint=ckpt_dir / "best.pt",
            latest_checkpoint=ckpt_dir / "latest.pt",
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
        from mqc.core.backtest.report import cost_summary  # lazy: the backtest package is heavier

        return cost_summary(self.market, self.data.panel.asset_classes)

    def _test_range(self) -> tuple[str, str] | None:
        lo, hi = self.data.split.segment("test")
        ts = self.data.panel.timestamps
        return (str(ts[lo])[:19], str(ts[hi - 1])[:19]) if hi > lo else None
