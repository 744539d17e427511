"""``mqc stage1..4``: tokenizer + pretraining, midtraining, horizon SFT and RL of the candle LM.

Each command maps its flags onto its own config table explicitly (below), resolves the table with
the profile, calls one core function and renders the result.
"""

from __future__ import annotations

import sys
from typing import Any

import typer

from mqc.commands import _options as o
from mqc.commands._console import RichProgress, out, print_json, state, want_json
from mqc.commands._options import split_list
from mqc.commands.train import _common as c

EpochsOpt = c.EPOCHS(help="Passes over the train tokens / windows.", sets=None)
BatchOpt = typer.Option(None, "--batch", help="Sequences per optimiser step (global across ranks).")
LrOpt = c.LR(help="AdamW learning rate (Muon's is --muon-lr).", sets=None)
MuonLrOpt = typer.Option(None, "--muon-lr", help="Muon learning rate of the hidden matrices.")
EvalOpt = c.EVAL(sets=None)
DeviceOpt = o.DEVICE(sets=None)
DtypeOpt = o.DTYPE(sets=None)
CompileOpt = o.COMPILE(sets=None)
ThreadsOpt = o.THREADS(help="torch CPU threads (default 1).", sets=None)
SeedOpt = o.SEED(sets=None)
OutOpt = o.OUT(help="Parent folder of the run directory (default runs/<stage>); same as --save-dir.")
TbOpt = o.TENSORBOARD()
WandbOpt = o.WANDB()
SaveDirOpt = o.SAVE_DIR(help="Parent folder of the run directory (default runs/<stage>).", sets=None)
InOpt = typer.Option(None, "--in", help="The previous stage's run (default: its latest run).")
ResumeOpt = o.RESUME(help="Continue this run directory from its latest.pt.")
QuietOpt = o.QUIET()


def _runtime(**kw: Any) -> dict[str, Any]:
    """Flags -> the runtime fields every stage table shares (None: not given)."""
    rename = {"out": "save_dir", "in_": "in_run", "compile_": "compile"}
    return {rename.get(k, k): v for k, v in kw.items()}


def _resolve(cls: type, flags: dict[str, Any]) -> Any:
    from mqc.core.profiles import resolve_with_profile

    return resolve_with_profile(cls, state().profile, flags=flags).value


def _sinks(tensorboard: str | None, wandb: str | None) -> Any:
    """The ``[log]`` table's metric sinks (--tensorboard, --wandb) around a stage, as for ``mqc train``."""
    from mqc.core.train.sinks import metric_sinks

    return metric_sinks(c.resolve_log({"log": {"tensorboard": tensorboard, "wandb": wandb}}))


def _run(fn: Any, quiet: bool, json_out: bool, *args: Any, sinks: Any = None, **kw: Any) -> None:
    import contextlib

    from mqc.core.lm.trainer import world

    main = world()[0] == 0  # under torchrun only rank 0 reports (the trainer's one reading of the launcher)
    if quiet or not main:
        state().quiet = True
    with RichProgress() as progress, sinks if main and sinks is not None else contextlib.nullcontext():
        result = fn(*args, progress=progress, command_line=" ".join(["mqc", *sys.argv[1:]]), **kw)
    if main:
        _render(result, json_out)


def _render(result: Any, json_out: bool) -> None:
    if want_json(json_out):
        print_json(result.to_dict())
        return
    from rich.table import Table

    tr = result.train
    t = Table(title=f"{tr.kind}: best step {tr.best_step} of {tr.steps} (selected on val)")
    before = result.reports.get("before")
    cols = ([("val before", before)] if before else []) + [("val (best.pt)", tr.val_metrics)]
    cols.append(("TEST (once)", tr.test_metrics))
    t.add_column("metric")
    for name, _ in cols:
        t.add_column(name, justify="right")
    for key in tr.val_metrics:
        if key != "score":
            t.add_row(key, *[f"{m[key]:.4f}" if m and key in m else "-" for _, m in cols])
    out.print(t)
    tok = result.reports.get("tokenizer")
    if tok:
        tt = Table(title="tokenizer on val (side by side)")
        tt.add_column("quantizer")
        for k in next(iter(tok.values())):
            tt.add_column(k, justify="right")
        for q, rep in tok.items():
            tt.add_row(q, *[f"{v:.4f}" for v in rep.values()])
        out.print(tt)
    if result.source:
        out.print(f"started from: {result.source}")
    out.print(f"run directory: {tr.run_dir}")


def stage1(
    symbols: str = o.SYMBOLS(help="Comma-separated symbols (default: the catalog's)."),
    data_root: str = o.DATA_ROOT(help="Folder of per-symbol CSV/Parquet files."),
    timeframe: str = o.TIMEFRAME(),
    seq_len: int = typer.Option(None, "--seq-len", help="Tokens per sequence (the model's context)."),
    vocab: int = typer.Option(None, "--vocab", help="Candle codes of the tokenizer."),
    layers: int = c.LAYERS(help="Transformer blocks.", sets=None),
    heads: int = typer.Option(None, "--heads", help="Attention heads."),
    kv_heads: int = typer.Option(None, "--kv-heads", help="Key/value heads."),
    embd: int = typer.Option(None, "--embd", help="Model width."),
    depth: int = typer.Option(None, "--depth", help="Size dial: width 64*depth, 64-dim heads (overrides the above)."),
    quantizer: str = typer.Option(None, "--quantizer", help="vq (EMA codebook), bsq or fsq (no codebook)."),
    tokenizer: str = typer.Option(None, "--tokenizer", help="Reuse the tokenizer of this stage-1 run."),
    tokenizer_steps: int = typer.Option(None, "--tokenizer-steps", help="Optimiser steps of the tokenizer fit."),
    epochs: float = EpochsOpt,
    batch: int = BatchOpt,
    lr: float = LrOpt,
    muon_lr: float = MuonLrOpt,
    eval_interval: int = EvalOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    compile_: bool = CompileOpt,
    threads: int = ThreadsOpt,
    seed: int = SeedOpt,
    out: str = OutOpt,
    save_dir: str = SaveDirOpt,
    tensorboard: str = TbOpt,
    wandb: str = WandbOpt,
    resume: str = ResumeOpt,
    quiet: bool = QuietOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Fit the candle tokenizer and pretrain the GPT on every selected asset's train stream.

    Example: mqc stage1 --symbols GOOG,SP500,NASDAQ --epochs 20
    """
    from mqc.core.data.config import DataConfig, SplitConfig
    from mqc.core.lm.config import Stage1Config
    from mqc.core.lm.stages import run_stage1

    syms = split_list(symbols)
    data = _resolve(
        DataConfig,
        {"symbols": tuple(s.upper() for s in syms) if syms else None, "data_root": data_root, "timeframe": timeframe},
    )
    flags = {
        "seq_len": seq_len,
        "vocab": vocab,
        "layers": layers,
        "heads": heads,
        "kv_heads": kv_heads,
        "embd": embd,
        "depth": depth,
        "quantizer": quantizer,
        "tokenizer": tokenizer,
        "tokenizer_steps": tokenizer_steps,
        **_runtime(
            epochs=epochs,
            batch=batch,
            lr=lr,
            muon_lr=muon_lr,
            eval_interval=eval_interval,
            device=device,
            dtype=dtype,
            compile_=compile_,
            threads=threads,
            seed=seed,
            out=out or save_dir,
        ),
    }
    cfg = _resolve(Stage1Config, flags)
    _run(
        run_stage1,
        quiet,
        json_out,
        data,
        _resolve(SplitConfig, {}),
        cfg,
        sinks=_sinks(tensorboard, wandb),
        resume=resume,
    )


def stage2(
    symbols: str = o.SYMBOLS(help="The asset(s) to specialise on (of stage 1's data)."),
    csv: str = typer.Option(None, "--csv", help="Specialise on this file (or folder) instead."),
    data_root: str = o.DATA_ROOT(help="Same as --csv: a file or folder to specialise on."),
    in_: str = InOpt,
    epochs: float = EpochsOpt,
    batch: int = BatchOpt,
    lr: float = LrOpt,
    muon_lr: float = MuonLrOpt,
    eval_interval: int = EvalOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    compile_: bool = CompileOpt,
    threads: int = ThreadsOpt,
    seed: int = SeedOpt,
    out: str = OutOpt,
    save_dir: str = SaveDirOpt,
    tensorboard: str = TbOpt,
    wandb: str = WandbOpt,
    resume: str = ResumeOpt,
    quiet: bool = QuietOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Midtrain the stage-1 model on one asset or a subset at a lower learning rate; reports how much it forgot.

    Example: mqc stage2 --symbols GOOG
    """
    from pathlib import Path

    from mqc.core.lm.config import Stage2Config
    from mqc.core.lm.stages import run_stage2

    flags = _runtime(
        in_=in_,
        epochs=epochs,
        batch=batch,
        lr=lr,
        muon_lr=muon_lr,
        eval_interval=eval_interval,
        device=device,
        dtype=dtype,
        compile_=compile_,
        threads=threads,
        seed=seed,
        out=out or save_dir,
    )
    csv = csv or data_root
    root = str(Path(csv).expanduser().resolve()) if csv else None
    syms = tuple(s.upper() for s in split_list(symbols) or ())
    _run(
        run_stage2,
        quiet,
        json_out,
        _resolve(Stage2Config, flags),
        symbols=syms,
        data_root=root,
        sinks=_sinks(tensorboard, wandb),
        resume=resume,
    )


def stage3(
    context_len: int = typer.Option(None, "--context-len", help="Candles of context before the horizon."),
    horizon: int = o.HORIZON(help="Candles to forecast (the loss is on these only).", sets=None),
    in_: str = InOpt,
    epochs: float = EpochsOpt,
    batch: int = BatchOpt,
    lr: float = LrOpt,
    muon_lr: float = MuonLrOpt,
    eval_interval: int = EvalOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    compile_: bool = CompileOpt,
    threads: int = ThreadsOpt,
    seed: int = SeedOpt,
    out: str = OutOpt,
    save_dir: str = SaveDirOpt,
    tensorboard: str = TbOpt,
    wandb: str = WandbOpt,
    resume: str = ResumeOpt,
    quiet: bool = QuietOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Supervised fine-tuning on context + horizon windows, with the loss on the horizon tokens only.

    Example: mqc stage3 --context-len 128 --horizon 32
    """
    from mqc.core.lm.config import Stage3Config
    from mqc.core.lm.stages import run_stage3

    flags = {
        "context_len": context_len,
        "horizon": horizon,
        **_runtime(
            in_=in_,
            epochs=epochs,
            batch=batch,
            lr=lr,
            muon_lr=muon_lr,
            eval_interval=eval_interval,
            device=device,
            dtype=dtype,
            compile_=compile_,
            threads=threads,
            seed=seed,
            out=out or save_dir,
        ),
    }
    _run(run_stage3, quiet, json_out, _resolve(Stage3Config, flags), sinks=_sinks(tensorboard, wandb), resume=resume)


def stage4(
    steps: int = o.STEPS(sets=None),
    batch_episodes: int = typer.Option(None, "--batch-episodes", help="Contexts per step (train split)."),
    group: int = typer.Option(None, "--group", help="Sampled horizons per context (GRPO group)."),
    reward: str = c.REWARD(help="pnl (net of costs), return_mse or token_acc.", sets=None),
    kl: float = typer.Option(None, "--kl", help="Weight of the KL penalty to the frozen stage-3 model."),
    cost_bps: float = o.COST_BPS(help="Commission in bps for equities and crypto (sets both)."),
    in_: str = InOpt,
    lr: float = LrOpt,
    muon_lr: float = MuonLrOpt,
    eval_interval: int = EvalOpt,
    device: str = DeviceOpt,
    dtype: str = DtypeOpt,
    compile_: bool = CompileOpt,
    threads: int = ThreadsOpt,
    seed: int = SeedOpt,
    out: str = OutOpt,
    save_dir: str = SaveDirOpt,
    tensorboard: str = TbOpt,
    wandb: str = WandbOpt,
    resume: str = ResumeOpt,
    quiet: bool = QuietOpt,
    json_out: bool = o.JSON(),
) -> None:
    """Policy-gradient fine-tuning on sampled horizons (group baseline, KL to stage 3, pnl through the market model).

    Example: mqc stage4 --steps 200 --batch-episodes 8 --reward pnl
    """
    from mqc.core.lm.config import Stage4Config
    from mqc.core.lm.stages import run_stage4
    from mqc.core.market.config import MarketConfig

    flags = {
        "steps": steps,
        "batch_episodes": batch_episodes,
        "group": group,
        "reward": reward,
        "kl": kl,
        **_runtime(
            in_=in_,
            lr=lr,
            muon_lr=muon_lr,
            eval_interval=eval_interval,
            device=device,
            dtype=dtype,
            compile_=compile_,
            threads=threads,
            seed=seed,
            out=out or save_dir,
        ),
    }
    market = _resolve(MarketConfig, MarketConfig.cost_fields(cost_bps))
    _run(
        run_stage4,
        quiet,
        json_out,
        _resolve(Stage4Config, flags),
        market,
        sinks=_sinks(tensorboard, wandb),
        resume=resume,
    )
