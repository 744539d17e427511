"""The stage trainers on the shared ``Harness``: next-token training (stages 1 and 2) and horizon-only
SFT (stage 3). They differ only in what a batch is and what the loss sees.

Under ``torchrun`` (``torch.distributed`` initialised) every rank draws the same global batch from
the same seed and trains on its slice; DDP averages the gradients, so N ranks equal one process
with the same global batch. Only rank 0 writes the run directory.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mqc import __version__
from mqc.core import atomic, config, runs
from mqc.core.errors import ConfigError
from mqc.core.lm.data import LMData, Windows, stream
from mqc.core.lm.engine import generate
from mqc.core.lm.gpt import GPT, GPTConfig
from mqc.core.lm.tokenizer import CandleTokenizer
from mqc.core.progress import Progress
from mqc.core.train.harness import Harness, TrainResult, split_optimizers

LN2 = math.log(2.0)
EVAL_WINDOWS = 64  # horizon windows per SFT evaluation (evenly spaced over the segment)


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) without torch.distributed. Under ``torchrun`` (``WORLD_SIZE`` > 1)
    the process group is started here: nccl on GPUs, gloo on CPUs."""
    import os

    import torch.distributed as dist

    if not dist.is_available():
        return 0, 1
    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class LMTrainer(Harness):
    """What every stage shares: the model, its optimisers, DDP, checkpoints, config.json, the report."""

    def __init__(
        self,
        cfg: Any,
        *,
        kind: str,
        data: LMData,
        tok: CandleTokenizer,
        gpt_config: GPTConfig,
        init_state: dict[str, torch.Tensor] | None,
        assets: list[int],
        tables: dict[str, Any],
        source: str | None = None,
        extra: dict[str, Any] | None = None,
        progress: Progress | None = None,
        resume_dir: str | Path | None = None,
        command_line: str = "",
    ) -> None:
        self.kind = kind
        self.rank, self.world = world()
        if cfg.batch_windows % self.world:
            raise ConfigError(f"--batch {cfg.batch_windows} must divide by the {self.world} ranks")
        self.global_batch = cfg.batch_windows
        # each rank's harness steps over its share; its loss weights are then the local means
        size = "batch_episodes" if hasattr(cfg, "batch_episodes") else "batch"
        cfg = replace(cfg, **{size: getattr(cfg, size) // self.world})
        super().__init__(cfg, progress=progress if self.rank == 0 else None, resume_dir=resume_dir)
        self.writes = self.rank == 0
        self.data, self.tok, self.gpt_config, self.assets = data, tok, gpt_config, assets
        self.tables, self.source, self.extra, self.command_line = tables, source, extra or {}, command_line
        self.model = GPT(gpt_config)
        if init_state is not None:
            self.model.load_state_dict(init_state)
        self.model.to(self.device)
        self.net: torch.nn.Module = self.model
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.net = DistributedDataParallel(self.model)
        elif cfg.compile and self.device.type == "cuda":
            self.net = torch.compile(self.model)
        self.optimizers = split_optimizers(self.model, cfg)

    # ----- batches -----------------------------------------------------------------------------
    def draw(self, high: int, n: int) -> torch.Tensor:
        """This rank's slice of a global batch of ``n * world`` indices in ``[0, high)``."""
        idx = torch.randint(0, high, (n * self.world,))
        return idx[self.rank * n : (self.rank + 1) * n]

    def steps_for(self, n_items: int, per_item: int) -> int:
        tokens = self.cfg.epochs * n_items
        return max(1, math.ceil(tokens / (self.global_batch * per_item)))

    # ----- harness hooks -------------------------------------------------------------------------
    def has_val(self) -> bool:
        return True

    def checkpoint_fields(self, metrics: dict[str, float]) -> dict[str, Any]:
        panel = self.data.panel
        return {
            "state_dict": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "gpt_config": self.gpt_config.to_dict(),
            "tokenizer": self.tok.to_state(),
            "symbols": [panel.symbols[a] for a in self.assets],
            "all_symbols": list(panel.symbols),
            "asset_classes": list(panel.asset_classes),
            "timeframe": panel.timeframe,
            "split": self.data.split.to_dict(),
            # the segments' first and last bars, so a backtest on more (or other) bars finds them
            "split_times": {
                name: [str(panel.timestamps[lo])[:29], str(panel.timestamps[hi - 1])[:29]]
                for name in ("train", "val", "test")
                for lo, hi in [self.data.split.segment(name)]
                if hi > lo
            },
            "data_fingerprint": panel.select([panel.symbols[a] for a in self.assets]).fingerprint,
            "lookback": int(self.extra.get("context_len", self.gpt_config.sequence_len)),
            "source": self.source,
            **self.extra,
        }

    def run_config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "mqc_version": __version__,
            "command_line": self.command_line,
            "configs": {
                name: {k: {"value": v, "source": "resolved"} for k, v in config.to_dict(obj).items()}
                for name, obj in self.tables.items()
            },
            "symbols": [self.data.panel.symbols[a] for a in self.assets],
            "timeframe": self.data.panel.timeframe,
            "data_fingerprint": self.data.panel.fingerprint,
            "panel": self.data.panel.describe(),
            "split": self.data.split.to_dict(),
            "model_config": self.gpt_config.to_dict(),
            "source": self.source,
            "device": str(self.device),
            "total_steps": self.total_steps,
        }

    def live_figures(self, stats: dict[str, float]) -> dict[str, float]:
        live = {"loss": stats["loss"]}
        if self.last_val:
            live["val"] = -self.last_val.get("score", 0.0)
        return live

    def finish(self, started: float, *, complete: bool) -> TrainResult:
        test: dict[str, float] = {}
        if complete and self.writes:  # rank 0 only: the others hold no run directory
            best = runs.read_checkpoint(runs.checkpoint_path(self.run_dir, runs.BEST))
            live = copy.deepcopy(self.model.state_dict())
            self.model.load_state_dict(best["state_dict"])
            test = self.evaluate("test")
            self.model.load_state_dict(live)
            atomic.write_json(
                self.run_dir / runs.REPORT,
                {
                    "segment": "test",
                    "note": "computed once, after training, on the test split with best.pt (selected on val only)",
                    "kind": self.kind,
                    "best_step": self.best_step,
                    "test_metrics": test,
                    "val_metrics": self.best_metrics,
                    **{k: v for k, v in self.extra.items() if k.endswith("_report")},
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
            seconds=time.perf_counter() - started,
            resumed_from=self.resumed_from,
        )


class NextTokenTrainer(LMTrainer):
    """Stages 1 and 2: next-token loss on the selected assets' train stream (separator targets ignored)."""

    def __init__(self, cfg: Any, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.seq = self.gpt_config.sequence_len
        self.bos = self.tok.spec.codes
        self.streams = {
            s: torch.from_numpy(stream(self.tok, self.data, s, self.assets)) for s in ("train", "val", "test")
        }
        others = [a for a in range(len(self.data.symbols)) if a not in self.assets]
        self.other_streams = {s: torch.from_numpy(stream(self.tok, self.data, s, others)) for s in ("val", "test")}
        n = len(self.streams["train"])
        if n < self.seq + 1:
            raise ConfigError(
                f"the train stream holds {n} tokens; one sequence needs --seq-len {self.seq} + 1",
                hint="lower --seq-len or load more history",
            )
        self.total_steps = self.steps_for(n, self.seq)

    def sample_t0(self, n: int) -> torch.Tensor:
        return self.draw(len(self.streams["train"]) - self.seq, n)

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        s = self.streams["train"]
        idx = t0.cpu()[:, None] + torch.arange(self.seq + 1)[None]
        chunk = s[idx].to(self.device)
        x, y = chunk[:, :-1], chunk[:, 1:].masked_fill(chunk[:, 1:] == self.bos, -100)
        logits = self.net(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), ignore_index=-100)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def bits_per_candle(self, s: torch.Tensor) -> float:
        """Cross-entropy in bits summed over candle tokens / candles. Windows of ``seq_len`` slide by
        half of it and each scores only the targets the previous one did not, so every target after
        the first window is predicted from at least half a window of context."""
        if len(s) < 2:
            return float("nan")
        self.model.eval()
        total, count, done, stride = 0.0, 0, 0, max(1, self.seq // 2)
        a = 0
        while done < len(s) - 1:
            chunk = s[a : a + self.seq + 1].to(self.device)[None]
            x, y = chunk[:, :-1], chunk[0, 1:]
            nll = F.cross_entropy(self.model(x)[0], y, reduction="none")
            new = torch.arange(len(y)) >= done - a  # targets a+1+i not scored before
            keep = new.to(y.device) & (y != self.bos)
            total += float(nll[keep].sum())
            count += int(keep.sum())
            done = a + len(y)
            a += stride
        self.model.train()
        return total / max(count, 1) / LN2

    def evaluate(self, segment: str) -> dict[str, float]:
        bpc = self.bits_per_candle(self.streams[segment])
        out = {"bits_per_candle": bpc, "score": -bpc}
        if len(self.other_streams.get(segment, ())) > 1:
            out["bits_per_candle_other"] = self.bits_per_candle(self.other_streams[segment])
        return out

    def eval_message(self, val: dict[str, float], improved: bool) -> str:
        other = f", other assets {val['bits_per_candle_other']:.3f}" if "bits_per_candle_other" in val else ""
        return f"step {self.step}: val bits/candle {val['bits_per_candle']:.3f}{other}{'  (best)' if improved else ''}"


def horizon_loss(logits: torch.Tensor, tokens: torch.Tensor, horizon: int) -> torch.Tensor:
    """Mean cross-entropy of the last ``horizon`` tokens of ``tokens [B, L+H]`` given ``logits``
    ``[B, L+H-1, V]`` of ``tokens[:, :-1]``: the context tokens carry no loss."""
    pred = logits[:, -horizon:]
    return F.cross_entropy(pred.reshape(-1, pred.shape[-1]), tokens[:, -horizon:].reshape(-1))


class SFTTrainer(LMTrainer):
    """Stage 3: context + horizon windows, loss on the horizon tokens only."""

    def __init__(self, cfg: Any, *, windows: dict[str, Windows], **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.win = windows
        if cfg.context_len + cfg.horizon > self.gpt_config.sequence_len:
            raise ConfigError(
                f"--context-len {cfg.context_len} + --horizon {cfg.horizon} exceeds the model's sequence length "
                f"{self.gpt_config.sequence_len}",
                hint="lower --context-len / --horizon, or pretrain with a larger --seq-len",
            )
        # consecutive windows overlap: an epoch shows each train candle once as a horizon target
        self.total_steps = self.steps_for(len(self.win["train"]), cfg.horizon)
        # the size of a typical horizon move (train split only): it sizes the positions of a strategy
        self.extra["position_scale"] = float(np.std(self.win["train"].log_returns.sum(-1)))

    def sample_t0(self, n: int) -> torch.Tensor:
        return self.draw(len(self.win["train"]), n)

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        tokens = torch.from_numpy(self.win["train"].tokens[t0.cpu().numpy()]).to(self.device)
        loss = horizon_loss(self.net(tokens[:, :-1]), tokens, self.cfg.horizon)
        return loss, {"loss": float(loss.detach())}

    @torch.no_grad()
    def evaluate(self, segment: str) -> dict[str, float]:
        return evaluate_horizon(self.model, self.tok, self.win[segment], self.device, self.cfg.seed)

    def eval_message(self, val: dict[str, float], improved: bool) -> str:
        best = "  (best)" if improved else ""
        return (
            f"step {self.step}: val horizon bits/candle {val['horizon_bits']:.3f}, token acc {val['token_acc']:.3f}, "
            f"return-path rmse {val['path_rmse']:.4f} (zero path {val['zero_rmse']:.4f}){best}"
        )


def eval_rows(n: int, k: int = EVAL_WINDOWS) -> np.ndarray:
    """``k`` evenly spaced window indices of ``n`` (all when fewer)."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).round().astype(int))


@torch.no_grad()
def evaluate_horizon(
    model: GPT, tok: CandleTokenizer, win: Windows, device: torch.device, seed: int, samples: int = 8
) -> dict[str, float]:
    """Teacher-forced horizon bits and token accuracy, and the error of sampled decoded return paths."""
    rows = eval_rows(len(win))
    tokens = torch.from_numpy(win.tokens[rows]).to(device)
    h = win.horizon
    was = model.training
    model.eval()
    logits = model(tokens[:, :-1])[:, -h:]
    nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens[:, -h:].reshape(-1))
    acc = (logits.argmax(-1) == tokens[:, -h:]).float().mean()
    gen = torch.Generator(device=device).manual_seed(seed)
    drawn = generate(model, tokens[:, : win.context_len], h, group=samples, generator=gen, allowed=tok.spec.codes)
    drawn = drawn.cpu()
    pred = np.cumsum(tok.decode(drawn)[..., 0], axis=-1).reshape(len(rows), samples, h).mean(1)
    real = np.cumsum(win.log_returns[rows], axis=-1)
    model.train(was)
    return {
        "horizon_bits": float(nll) / LN2,
        "token_acc": float(acc),
        "path_rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
        "zero_rmse": float(np.sqrt(np.mean(real**2))),
        "score": -float(nll) / LN2,
    }
