"""The training harness every trainer runs in, and the trainer registry.

``Harness`` owns what does not depend on the model or the objective: device and autocast, the
optimiser split (Muon for hidden matrices + AdamW), seeding and the random state, the step loop with
gradient accumulation, metrics.jsonl, val evaluation and best-checkpoint selection, latest.pt for
``--resume``, and Ctrl-C. It writes every file through ``mqc.core.runs``. A trainer subclasses it
(``BaseTrainer`` for the portfolio policies) and fills in the hooks: ``loss_on``, ``sample_t0``,
``evaluate``, ``has_val``, ``checkpoint_fields``, ``run_config``, ``check_resumable``, ``finish``,
and optionally ``eval_message`` / ``live_figures`` (what the log and the progress bar show). A
distributed trainer sets ``writes = False`` on every rank but 0, so one process writes the run.

A trainer plugs into ``mqc train`` and ``resume_run`` by registering a ``TrainerSpec``
(``register_trainer``); no command or API function names trainers one by one.
"""

from __future__ import annotations

import abc
import contextlib
import math
import resource
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mqc import __version__
from mqc.core import runs
from mqc.core.errors import CheckpointError, ConfigError
from mqc.core.progress import NULL, Progress
from mqc.core.registry import Registry


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
        return (
            f"{at}\ncontinue from its last checkpoint (step {self.checkpoint_step}): "
            f"mqc train {self.kind} --resume {self.run_dir}"
        )


# ----- trainer registry ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainerSpec:
    """How ``mqc train <kind>`` and ``resume_run`` build a trainer.

    ``trainer(panel, market, cfg, **keywords)`` is called with ``data_cfg``, ``feature_cfg``,
    ``split_cfg``, ``providers``, ``progress``, ``command_line``, ``sources`` and ``resume_dir``.
    """

    kind: str  # the name in ``mqc train <kind>``
    config: type  # its training table (e.g. DMTrainConfig)
    trainer: Callable[..., Harness]
    run_kind: str | None = None  # the kind its runs and checkpoints record (default ``kind``)
    extra_tables: tuple[type, ...] = ()  # further config tables resolved from the profile
    # extra feature providers built from the resolved extra tables (by table name) and the progress sink
    providers: Callable[[dict[str, Any], Progress | None], list[Any]] | None = None
    # the trainer takes the resolved extra tables itself, as ``extra={table name: config}`` (ppo: [env], [cube])
    takes_extra: bool = False

    @property
    def runs_as(self) -> str:
        return self.run_kind or self.kind


# dm and sharpe register themselves on import; kronos is looked up only when asked for
_TRAINERS = Registry("trainer", builtins=("mqc.core.train.dm", "mqc.core.train.sharpe"))
_TRAINERS.register_lazy("kronos", "mqc.core.train.kronos:kronos_trainer_spec")
_TRAINERS.register_lazy("ppo", "mqc.core.train.ppo:ppo_trainer_spec")


def register_trainer(spec: TrainerSpec) -> None:
    """Make ``spec.kind`` available to ``mqc train`` and ``resume_run`` (the registry holds a
    zero-argument factory per name, so a lazily registered module exposes ``def ...() -> TrainerSpec``)."""
    _TRAINERS.register(spec.kind, lambda: spec)


def trainer_spec(kind: str) -> TrainerSpec:
    """The registered trainer ``kind``.

    Raises:
        ConfigError: no trainer of that name.
    """
    factory = _TRAINERS.get(kind)
    if factory is None:
        raise ConfigError(f"unknown trainer {kind!r}; known: {', '.join(_TRAINERS.names())}")
    return factory()


def trainer_kinds() -> list[str]:
    """Names of the registered trainers."""
    return _TRAINERS.names()


# ----- eval listeners and metric sinks -------------------------------------------------------------
EvalListener = Callable[[str, int, dict[str, float]], None]
_EVAL_LISTENERS: list[EvalListener] = []
MetricsListener = Callable[[str, dict[str, Any]], None]
_METRICS_LISTENERS: list[MetricsListener] = []


@contextlib.contextmanager
def metrics_listener(listener: MetricsListener) -> Iterator[None]:
    """Call ``listener(kind, row)`` with every row a trainer writes to metrics.jsonl (``row["kind"]``
    is ``train`` or ``eval``) while the context is open: the hook metric sinks (TensorBoard) hang on,
    so no trainer writes its own logging code."""
    _METRICS_LISTENERS.append(listener)
    try:
        yield
    finally:
        _METRICS_LISTENERS.remove(listener)


RunListener = Callable[[str, Path], None]
_RUN_LISTENERS: list[RunListener] = []


@contextlib.contextmanager
def run_listener(listener: RunListener) -> Iterator[None]:
    """Call ``listener(kind, run_dir)`` when a trainer starts (or resumes) a run in this context,
    before its first metrics row (metric sinks name their run after the run directory)."""
    _RUN_LISTENERS.append(listener)
    try:
        yield
    finally:
        _RUN_LISTENERS.remove(listener)


def announce_run(kind: str, run_dir: Path) -> None:
    """Tell the run listeners that a trainer writes to ``run_dir`` from now on."""
    for listener in tuple(_RUN_LISTENERS):
        listener(kind, run_dir)


def log_metrics(kind: str, run_dir: Path, row: dict[str, Any]) -> None:
    """Append ``row`` to ``run_dir``'s metrics.jsonl and hand it to the metric sinks: the one way a
    trainer (harness-based or not, e.g. ppo's SB3 callback) logs a metrics row."""
    runs.append_metrics(run_dir, row)
    for listener in tuple(_METRICS_LISTENERS):
        listener(kind, row)


@contextlib.contextmanager
def eval_listener(listener: EvalListener) -> Iterator[None]:
    """Call ``listener(kind, step, val_metrics)`` after every val evaluation of any trainer run in this
    process while the context is open (a sweep's pruning, metric sinks). It runs after latest.pt is
    saved; an exception it raises stops the run there (and propagates out of ``fit``)."""
    _EVAL_LISTENERS.append(listener)
    try:
        yield
    finally:
        _EVAL_LISTENERS.remove(listener)


# ----- device --------------------------------------------------------------------------------------
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


def split_optimizers(model: nn.Module, cfg: Any) -> list[torch.optim.Optimizer]:
    """AdamW for every parameter, except Muon for the model's ``hidden_matrices()`` when ``cfg.muon``."""
    named = list(model.named_parameters())
    hidden = set(model.hidden_matrices()) if cfg.muon else set()  # type: ignore[operator]
    muon = [p for n, p in named if n in hidden]
    rest = [p for n, p in named if n not in hidden]
    opts: list[torch.optim.Optimizer] = [torch.optim.AdamW(rest, lr=cfg.lr, weight_decay=cfg.weight_decay)]
    if muon:
        opts.append(torch.optim.Muon(muon, lr=cfg.muon_lr, weight_decay=cfg.weight_decay))
    return opts


# ----- the loop ------------------------------------------------------------------------------------
class Harness(abc.ABC):
    """The step loop, evaluation/selection, checkpoints and resume (see the module docstring).

    A subclass sets ``kind`` and, after ``super().__init__``, ``self.model``, ``self.optimizers``
    (e.g. ``split_optimizers``) and ``self.total_steps``. ``cfg`` needs ``device``, ``dtype``,
    ``threads``, ``seed``, ``batch_windows``, ``microbatch_windows``, ``grad_clip``,
    ``log_interval``, ``eval_interval``, ``select_metric`` and ``save_dir``.
    """

    kind = "base"
    model: nn.Module
    optimizers: Sequence[torch.optim.Optimizer]
    total_steps: int
    run_dir: Path

    def __init__(self, cfg: Any, *, progress: Progress | None = None, resume_dir: str | Path | None = None) -> None:
        self.cfg = cfg
        self.progress = progress or NULL
        self.resume_dir = Path(resume_dir) if resume_dir else None
        self.device = resolve_device(cfg.device)
        if cfg.dtype == "bf16" and self.device.type != "cuda":
            raise ConfigError("dtype bf16 is only supported on CUDA (autocast)", hint="use --dtype auto or fp32 on CPU")
        self.autocast = self.device.type == "cuda" and cfg.dtype in ("auto", "bf16")
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        self.step = 0
        self.best_score = -math.inf
        self.best_step = 0
        self.best_metrics: dict[str, float] = {}
        self.last_val: dict[str, float] = {}
        self.saved_step: int | None = None  # the step checkpoints/latest.pt holds
        self.resumed_from: dict[str, Any] | None = None
        self.writes = True  # False on the non-zero ranks of a distributed run: rank 0 alone writes files

    # ----- hooks ------------------------------------------------------------------------------
    @abc.abstractmethod
    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss (to minimise) and logged stats for windows whose first decision bars are ``t0``."""

    @abc.abstractmethod
    def sample_t0(self, n: int) -> torch.Tensor:
        """``n`` random window starts for one optimiser step."""

    @abc.abstractmethod
    def evaluate(self, segment: str) -> dict[str, float]:
        """Metrics of the current model on ``segment`` (``val``, ``test``)."""

    @abc.abstractmethod
    def has_val(self) -> bool:
        """Whether there is a val segment to select best.pt on (else best.pt follows latest.pt)."""

    @abc.abstractmethod
    def checkpoint_fields(self, metrics: dict[str, float]) -> dict[str, Any]:
        """The checkpoint's schema fields (see ``mqc.core.runs``) apart from the format marker,
        ``kind``, ``step`` and ``train_state``."""

    @abc.abstractmethod
    def run_config(self) -> dict[str, Any]:
        """config.json's content (see ``mqc.core.runs``), written once when a new run starts."""

    @abc.abstractmethod
    def finish(self, started: float, *, complete: bool) -> TrainResult:
        """The run's result; when ``complete``, the test report computed once with best.pt."""

    def check_resumable(self, ckpt: dict[str, Any], path: Path, hint: str) -> None:  # noqa: B027 - optional hook
        """Raise ``CheckpointError`` when latest.pt cannot continue this run (default: it can)."""

    def start_notes(self) -> list[str]:
        """Lines logged when the loop starts (data warnings, notes on the setup)."""
        return []

    def start_message(self) -> str:
        return f"train {self.kind} -> {self.run_dir}"

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what ``extra_state`` saved (default: nothing)."""

    def live_figures(self, stats: dict[str, float]) -> dict[str, float]:
        """Figures the progress bar shows after a step (default: loss and the last val Sharpe)."""
        live = {"loss": stats["loss"]}
        if self.last_val:
            live["val_sharpe"] = self.last_val.get("sharpe", 0.0)
        return live

    def eval_message(self, val: dict[str, float], improved: bool) -> str:
        """The line logged after an evaluation (default: the portfolio figures)."""
        # turnover in percent, as the backtest table shows it
        return (
            f"step {self.step}: val sharpe {val['sharpe']:.3f}, return {val['total_return']:+.2%}, "
            f"turnover {val['turnover']:.2%}{'  (best)' if improved else ''}"
        )

    def after_step(self) -> None:  # noqa: B027 - optional hook
        """Called after each optimiser step (default: nothing)."""

    # ----- checkpoints --------------------------------------------------------------------------
    def checkpoint(self, metrics: dict[str, float], *, train_state: bool) -> dict[str, Any]:
        """The checkpoint dict of the current step (with the training state for latest.pt)."""
        ckpt = runs.make_checkpoint(self.kind, __version__, **self.checkpoint_fields(metrics))
        ckpt.update(step=self.step, metrics=dict(metrics))
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

    def _restore(self, run_dir: Path) -> None:
        path = runs.checkpoint_path(run_dir, runs.LATEST)
        fresh = (
            "start a new run; to keep the trained weights add --init-checkpoint"
            f" {runs.checkpoint_path(run_dir, runs.BEST)}"
        )
        try:
            ckpt = runs.read_checkpoint(path)
        except CheckpointError as exc:
            raise CheckpointError(f"{exc} (--resume needs the run's own latest.pt)", hint=fresh) from exc
        if not isinstance(ckpt.get("train_state"), dict):
            # best.pt holds the weights only: copied over latest.pt it can be backtested, not resumed
            raise CheckpointError(
                f"{path}: holds no training state (optimiser, random state), so the run cannot continue from it; "
                "a best.pt copied over latest.pt looks like this",
                hint=fresh,
            )
        self.check_resumable(ckpt, path, fresh)
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
                f"{path}: incomplete training state ({type(exc).__name__}:"
                f" {str(exc).splitlines()[0][:160] if str(exc) else ''})",
                hint=fresh,
            ) from exc
        runs.truncate_metrics(run_dir, self.step)
        self.saved_step = self.step
        self.resumed_from = {"checkpoint": str(path), "step": self.step, "total_steps": self.total_steps}

    # ----- the loop -----------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        b = self.cfg.batch_windows
        mb = self.cfg.microbatch_windows or b
        t0 = self.sample_t0(b)
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
        elif self.writes:
            self.run_dir = runs.new_run_dir(self.kind, self.cfg.save_dir)
            runs.write_run_config(self.run_dir, self.run_config())
        else:
            self.run_dir = Path(self.cfg.save_dir or ".")
        if self.writes:  # under DDP only rank 0 has sinks
            announce_run(self.kind, self.run_dir)
        self.progress.start(self.total_steps, self.start_message())
        if self.step:
            self.progress.advance(self.step)
        if self.resumed_from is not None:
            self.progress.log(
                f"resumed at step {self.step} of {self.total_steps} from {self.resumed_from['checkpoint']}"
            )
        for note in self.start_notes():
            self.progress.log(note)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        try:
            while self.step < self.total_steps:
                self.step += 1
                st = self.train_step()
                if self.writes and (self.step % self.cfg.log_interval == 0 or self.step == self.total_steps):
                    row = {"kind": "train", "step": self.step, **{k: float(v) for k, v in st.items()}}
                    row.update(
                        microbatch=int(st["microbatch"]),
                        windows=int(st["windows"]),
                        peak_mem_gb=round(peak_mem_gb(self.device), 4),
                    )
                    self._log_row(row)
                if self.step % self.cfg.eval_interval == 0 or self.step == self.total_steps:
                    self._eval_and_save()
                self.progress.advance(1, **self.live_figures(st))
                if stop_after is not None and self.step >= stop_after and self.step % self.cfg.eval_interval == 0:
                    break
        except KeyboardInterrupt as exc:
            exc.train_interrupt = TrainInterrupt(self.kind, self.run_dir, self.step, self.total_steps, self.saved_step)  # type: ignore[attr-defined]
            raise
        finally:
            self.progress.finish()
        return self.finish(started, complete=self.step >= self.total_steps)

    def _log_row(self, row: dict[str, Any]) -> None:
        """Append ``row`` to metrics.jsonl and hand it to the metric sinks."""
        log_metrics(self.kind, self.run_dir, row)

    def _eval_and_save(self) -> None:
        val = self.evaluate("val")
        self.last_val = val
        # Without a val split (val_frac = 0) there is nothing to select on: best.pt follows latest.
        score = float(val.get(self.cfg.select_metric, 0.0)) if self.has_val() else float(self.step)
        improved = score > self.best_score
        if improved:
            self.best_score, self.best_step, self.best_metrics = score, self.step, val
        if not self.writes:
            self.saved_step = self.step
            return
        if improved:
            runs.save_checkpoint(runs.checkpoint_path(self.run_dir, runs.BEST), self.checkpoint(val, train_state=False))
        self._log_row({"kind": "eval", "step": self.step, "best": improved, **{f"eval_{k}": v for k, v in val.items()}})
        runs.save_checkpoint(runs.checkpoint_path(self.run_dir, runs.LATEST), self.checkpoint(val, train_state=True))
        self.saved_step = self.step
        for listener in tuple(_EVAL_LISTENERS):
            listener(self.kind, self.step, dict(val))
        self.progress.log(self.eval_message(val, improved))
