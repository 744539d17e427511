"""The harness runs any trainer that fills in its hooks, and a registered trainer plugs into
``api.train`` with no other change (the path ``ppo`` and the LM stages take)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import torch

from mqc.core import runs
from mqc.core.data.config import DataConfig
from mqc.core.errors import ConfigError
from mqc.core.market.config import MarketConfig
from mqc.core.train import api, harness
from mqc.core.train.config import SharpeTrainConfig
from mqc.core.train.harness import (
    Harness,
    TrainerSpec,
    TrainResult,
    register_trainer,
    split_optimizers,
    trainer_kinds,
    trainer_spec,
)


class ToyTrainer(Harness):
    """Fits y = 2x with one linear layer: no panel features, no market, only the harness."""

    kind = "toy"

    def __init__(
        self, panel: Any, market: Any, cfg: Any, *, progress: Any = None, resume_dir: Any = None, **_: Any
    ) -> None:
        super().__init__(cfg, progress=progress, resume_dir=resume_dir)
        self.model = torch.nn.Linear(1, 1)
        self.optimizers = split_optimizers(self.model, cfg)
        self.total_steps = cfg.steps
        self.grid = torch.linspace(0, 1, 11)[:, None]

    def loss_on(self, t0: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        x = t0.float()[:, None] / 100
        loss = ((self.model(x) - 2 * x) ** 2).mean()
        return loss, {"loss": float(loss.detach())}

    def sample_t0(self, n: int) -> torch.Tensor:
        return torch.randint(0, 100, (n,))

    def evaluate(self, segment: str) -> dict[str, float]:
        with torch.no_grad():
            err = float(((self.model(self.grid) - 2 * self.grid) ** 2).mean())
        return {"sharpe": -err, "total_return": 0.0, "turnover": 0.0}

    def has_val(self) -> bool:
        return True

    def checkpoint_fields(self, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "state_dict": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "model_config": {"lookback": 1},
        }

    def run_config(self) -> dict[str, Any]:
        return {"kind": self.kind, "configs": {}}

    def finish(self, started: float, *, complete: bool) -> TrainResult:
        return TrainResult(
            self.kind,
            self.run_dir,
            runs.checkpoint_path(self.run_dir, runs.BEST),
            runs.checkpoint_path(self.run_dir, runs.LATEST),
            self.step,
            self.best_step,
            self.best_metrics,
            {},
            seconds=time.perf_counter() - started,
            resumed_from=self.resumed_from,
        )


CFG = dict(steps=8, eval_interval=2, log_interval=1, batch_windows=4, microbatch_windows=2, muon=False, lr=0.05)


@pytest.fixture
def toy() -> Iterator[TrainerSpec]:
    spec = TrainerSpec("toy", SharpeTrainConfig, ToyTrainer)
    register_trainer(spec)
    yield spec
    harness._TRAINERS._factories.pop("toy")  # keep the registry as other tests expect it


def test_a_registered_trainer_trains_through_the_api(toy, synth_panel, tmp_path) -> None:
    assert "toy" in trainer_kinds() and trainer_spec("toy") is toy
    cfg = SharpeTrainConfig(**CFG, save_dir=str(tmp_path))
    res = api.train("toy", DataConfig(), MarketConfig(), cfg, panel=synth_panel(n_assets=1, n_bars=50))
    assert res.kind == "toy" and res.steps == 8 and res.run_dir.parent == tmp_path
    assert runs.read_run_config(res.run_dir)["format_version"] == runs.RUN_CONFIG_VERSION
    rows = runs.read_metrics(res.run_dir)
    assert [r["step"] for r in rows if r["kind"] == "eval"] == [2, 4, 6, 8]
    assert {r["microbatch"] for r in rows if r["kind"] == "train"} == {2}
    best = runs.read_checkpoint(res.best_checkpoint)
    assert best["kind"] == "toy" and best["step"] == res.best_step and "train_state" not in best
    assert res.val_metrics["sharpe"] > -0.5  # it learned something


def test_the_harness_resumes_bit_for_bit(toy, tmp_path) -> None:
    whole = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "a"))).fit()
    killed = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "b")))
    killed.fit(stop_after=4)
    resumed = ToyTrainer(
        None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "b")), resume_dir=killed.run_dir
    ).fit()
    assert resumed.resumed_from["step"] == 4
    assert resumed.val_metrics == whole.val_metrics and resumed.best_step == whole.best_step
    strip = lambda rows: [{k: v for k, v in r.items() if k != "peak_mem_gb"} for r in rows]  # noqa: E731
    assert strip(runs.read_metrics(resumed.run_dir)) == strip(runs.read_metrics(whole.run_dir))


def test_unknown_trainer_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown trainer 'lm'.*dm.*kronos.*ppo.*sharpe"):
        trainer_spec("lm")  # (was "ppo", a trainer since issue 14)


def test_kronos_is_the_dm_trainer_with_a_provider() -> None:
    spec = trainer_spec("kronos")
    assert spec.runs_as == "dm" and spec.config is trainer_spec("dm").config
    assert [c.__name__ for c in spec.extra_tables] == ["KronosFeatureConfig"]


def test_eval_listeners_see_every_val_evaluation_and_can_stop_the_run(tmp_path) -> None:
    seen: list[tuple[str, int, float]] = []
    with harness.eval_listener(lambda kind, step, val: seen.append((kind, step, val["sharpe"]))):
        res = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "a"))).fit()
    assert [s for _, s, _ in seen] == [2, 4, 6, 8] and {k for k, _, _ in seen} == {"toy"}
    assert max(v for _, _, v in seen) == res.val_metrics["sharpe"]

    class Stop(Exception):
        pass

    def stop_at_4(kind: str, step: int, val: dict[str, float]) -> None:
        if step == 4:
            raise Stop

    trainer = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "b")))
    with harness.eval_listener(stop_at_4), pytest.raises(Stop):
        trainer.fit()
    assert trainer.step == 4 and runs.checkpoint_path(trainer.run_dir, runs.LATEST).is_file()
    assert harness._EVAL_LISTENERS == []  # the context removed it


def _tensorboard_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
    """Read the scalars of TensorBoard event files (TFRecord: length, crc, event proto, crc)."""
    import struct
    from pathlib import Path

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for f in sorted(Path(logdir).glob("events.out.tfevents.*")):
        data = f.read_bytes()
        i = 0
        while i < len(data):
            (n,) = struct.unpack("<Q", data[i : i + 8])
            ev = event_pb2.Event.FromString(data[i + 12 : i + 12 + n])
            i += 12 + n + 4
            for v in ev.summary.value:
                out.setdefault(v.tag, []).append((ev.step, v.simple_value))
    return out


def test_the_tensorboard_sink_gets_every_metrics_row_from_the_harness(tmp_path) -> None:
    pytest.importorskip("tensorboardX")
    from mqc.core.train.sinks import tensorboard_sink

    with tensorboard_sink(tmp_path / "tb"):
        res = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "a"))).fit()
    got = _tensorboard_scalars(tmp_path / "tb")
    rows = runs.read_metrics(res.run_dir)
    assert [s for s, _ in got["val/sharpe"]] == [r["step"] for r in rows if r["kind"] == "eval"] == [2, 4, 6, 8]
    assert [v for _, v in got["val/sharpe"]] == pytest.approx([r["eval_sharpe"] for r in rows if r["kind"] == "eval"])
    assert [v for _, v in got["train/loss"]] == pytest.approx([r["loss"] for r in rows if r["kind"] == "train"])
    assert harness._METRICS_LISTENERS == []


def test_metric_sinks_give_each_run_its_own_folder_named_like_its_run_directory(tmp_path) -> None:
    pytest.importorskip("tensorboardX")
    from mqc.core.train.config import LogConfig
    from mqc.core.train.sinks import metric_sinks

    with metric_sinks(LogConfig(tensorboard=str(tmp_path / "tb"))):
        a = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "a"))).fit()
        b = ToyTrainer(None, None, SharpeTrainConfig(**CFG, save_dir=str(tmp_path / "b"))).fit()
    # both start within a second: same run directory name (different save dirs), so b gets a suffix
    names = [a.run_dir.name, b.run_dir.name if b.run_dir.name != a.run_dir.name else f"{a.run_dir.name}-2"]
    assert sorted(p.name for p in (tmp_path / "tb").iterdir()) == sorted(names)
    for res, folder in zip((a, b), names, strict=True):
        got = _tensorboard_scalars(tmp_path / "tb" / folder)
        rows = runs.read_metrics(res.run_dir)
        assert [v for _, v in got["train/loss"]] == pytest.approx([r["loss"] for r in rows if r["kind"] == "train"])
        assert [s for s, _ in got["val/sharpe"]] == [r["step"] for r in rows if r["kind"] == "eval"]
    assert harness._METRICS_LISTENERS == [] and harness._RUN_LISTENERS == []
