"""Where trials run: a local process pool or Ray Tune on a Ray cluster. Both call ``trial.run_trial``.

A backend takes ``submit(spec)``, ``wait(timeout) -> [(spec, row)]``, ``running()`` and
``close(cancel)``. The panel is shipped once per worker (local: the pool initialiser) or once per
cluster (Ray: ``tune.with_parameters``, the object store), never re-read by each trial.
"""

from __future__ import annotations

import math
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from mqc.core.errors import ConfigError, require
from mqc.core.sweep.trial import TrialSpec, new_row, run_trial

_PANEL: Any = None  # the panel of a local worker process, set once by the pool initialiser


def _init_worker(panel: Any) -> None:
    import signal

    global _PANEL
    _PANEL = panel
    # Ctrl-C is the driver's to handle: it records the sweep so far and then stops the workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # torch threads per trial come from the trainer table's `threads` (set from --cpus-per-trial)


def _local_trial(spec: TrialSpec) -> dict[str, Any]:
    return run_trial(spec, _PANEL)


def _failed_row(spec: TrialSpec, error: str) -> dict[str, Any]:
    return new_row(spec, error=error, seconds=0.0)


def _start_method() -> str:
    """``fork`` where it is safe (Linux, no CUDA context in the driver): the workers inherit the
    imported modules instead of importing torch again (seconds per worker); ``spawn`` otherwise."""
    import multiprocessing
    import sys

    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return "spawn"
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        return "spawn"
    return "fork"


class LocalBackend:
    """A pool of ``max_concurrent`` worker processes, started once (see ``_start_method``)."""

    name = "local"

    def __init__(self, max_concurrent: int, panel: Any) -> None:
        self.max_concurrent = max_concurrent
        self.panel = panel
        self._pool: Any = None
        self._pending: dict[Any, TrialSpec] = {}

    def _ensure_pool(self) -> Any:
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=self.max_concurrent,
                mp_context=multiprocessing.get_context(_start_method()),
                initializer=_init_worker,
                initargs=(self.panel,),
            )
        return self._pool

    def submit(self, spec: TrialSpec) -> Any:
        fut = self._ensure_pool().submit(_local_trial, spec)
        self._pending[fut] = spec
        return fut

    def wait(self, timeout: float) -> list[tuple[TrialSpec, dict[str, Any]]]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as fwait
        from concurrent.futures.process import BrokenProcessPool

        if not self._pending:
            return []
        done, _ = fwait(list(self._pending), timeout=timeout, return_when=FIRST_COMPLETED)
        out = []
        broken = False
        for fut in done:
            spec = self._pending.pop(fut)
            try:
                out.append((spec, fut.result()))
            except BrokenProcessPool:
                broken = True
                out.append((spec, _failed_row(spec, "the worker process died (out of memory or killed)")))
            except Exception as exc:  # noqa: BLE001 - recorded, the sweep continues
                out.append((spec, _failed_row(spec, f"{type(exc).__name__}: {exc}")))
        if broken:  # a dead worker breaks the pool: start a fresh one for the trials still to come
            self.close(cancel=True)
        return out

    def running(self) -> int:
        return len(self._pending)

    def close(self, cancel: bool = False) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            procs = list(getattr(pool, "_processes", {}).values())
            pool.shutdown(wait=False, cancel_futures=True)
            for p in procs:  # a running trial stops now, not at its end
                if p.is_alive():
                    p.terminate()
            for p in procs:
                p.join(timeout=5)
            self._pending.clear()
        else:
            pool.shutdown(wait=True)


def check_ray_address(address: str, timeout: float = 3.0) -> None:
    """Fail within ``timeout`` seconds when a ``ray://HOST:PORT`` / ``HOST:PORT`` address does not answer.

    Raises:
        ConfigError: nothing listens there (``ray.init`` itself would wait much longer).
    """
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise ConfigError(f"--address {address!r}: expected ray://HOST:PORT, HOST:PORT or auto")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"the Ray cluster at {address} does not answer ({exc.strerror or exc})",
            hint="start it (ray start --head) and check the address, or run with --backend local",
        ) from exc


class RayBackend:
    """Trials as Ray Tune trials (``ray_tune.TuneRunner``) with ``cpus_per_trial`` / ``gpus_per_trial``;
    a local instance when no ``address`` is given (``max_concurrent x cpus_per_trial`` CPUs), else the
    cluster there. Tune starts with the first trial (a resumed, finished sweep starts none)."""

    name = "ray"

    def __init__(
        self,
        max_concurrent: int,
        panel: Any,
        *,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        sweep_dir: Path | None = None,
        metric: str = "sharpe",
        pruner: str = "none",
        max_t: int = 0,
        grace: int = 1,
    ) -> None:
        ray = require("ray", "scale", "ray[tune]")
        require("ray.tune", "scale", "ray[tune]")
        if address:
            check_ray_address(address)
        from mqc.core.sweep.ray_tune import TUNE_ENV

        os.environ.update(TUNE_ENV)  # read by the Tune controller in this process
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1", **TUNE_ENV}
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
                "runtime_env": {"env_vars": env},
            }
            try:
                if address:
                    ray.init(address=address, **kwargs)
                else:
                    # a local instance listens on the loopback interface only: nothing outside this machine joins it
                    ray.init(
                        num_cpus=max(1, math.ceil(max_concurrent * cpus_per_trial)),
                        _node_ip_address="127.0.0.1",
                        **kwargs,
                    )
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                raise ConfigError(
                    f"could not connect to Ray at {address or 'a new local instance'}: {str(exc).splitlines()[0]}",
                    hint="start it (ray start --head) and check --address, or run with --backend local",
                ) from exc
            self._started = True
        self.max_concurrent = max_concurrent
        self._settings = dict(
            max_concurrent=max_concurrent,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            sweep_dir=sweep_dir or Path.cwd(),
            metric=metric,
            pruner=pruner,
            max_t=max_t,
            grace=grace,
        )
        self.panel = panel
        self._tune: Any = None
        self._pending: dict[str, TrialSpec] = {}

    def submit(self, spec: TrialSpec) -> str:
        if self._tune is None:
            from mqc.core.sweep.ray_tune import TuneRunner

            self._tune = TuneRunner(self.ray, self.panel, **self._settings)
        self._tune.submit(spec)
        self._pending[spec.key] = spec
        return spec.key

    def wait(self, timeout: float) -> list[tuple[TrialSpec, dict[str, Any]]]:
        from mqc.core.sweep.ray_tune import row_from

        if not self._pending:
            return []
        out = []
        for item in self._tune.collect(timeout):
            spec = self._pending.pop(item.get("key"), None)
            if spec is not None:
                out.append((spec, row_from(spec, item)))
        if not out and not self._tune.thread.is_alive():  # Tune itself stopped: nothing more will finish
            err = self._tune.error
            why = f"Ray Tune stopped: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
            for key in list(self._pending):
                spec = self._pending.pop(key)
                out.append((spec, _failed_row(spec, why if err else "Ray Tune stopped before the trial finished")))
        return out

    def running(self) -> int:
        return len(self._pending)

    def close(self, cancel: bool = False) -> None:
        if self._tune is not None:
            self._tune.close(cancel)
            self._tune = None
        self._pending.clear()
        if self._started:
            self.ray.shutdown()
            self._started = False


def make_backend(
    name: str,
    max_concurrent: int,
    panel: Any,
    *,
    address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    **tune: Any,
) -> LocalBackend | RayBackend:
    """The backend ``--backend`` names (``tune``: the Ray backend's sweep_dir, metric, pruner, max_t, grace).

    Raises:
        ConfigError: unknown backend, or a Ray address that does not answer; DependencyMissing: no ray.
    """
    if name == "local":
        if address:
            raise ConfigError("--address is for --backend ray", hint="drop --address or add --backend ray")
        return LocalBackend(max_concurrent, panel)
    if name == "ray":
        return RayBackend(
            max_concurrent,
            panel,
            address=address,
            cpus_per_trial=cpus_per_trial,
            gpus_per_trial=gpus_per_trial,
            **tune,
        )
    raise ConfigError(f"unknown backend {name!r}; known: local, ray")
