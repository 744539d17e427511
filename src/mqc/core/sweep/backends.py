"""Where trials run: a local process pool or a Ray cluster. Both call ``trial.run_trial``.

A backend takes ``submit(spec) -> handle`` and ``wait(timeout) -> [(handle, row)]`` and
``close(cancel)``. The panel is shipped once per worker (local: the pool initialiser) or once per
cluster (Ray: ``ray.put``), never re-read by each trial.
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlparse

from mqc.core.errors import ConfigError, require
from mqc.core.sweep.trial import FAILED, TrialSpec, run_trial

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
    return {
        "trial": spec.key,
        "number": spec.number,
        "config": spec.config_key,
        "overrides": spec.overrides,
        "seed": spec.overrides.get(f"{spec.train_table}.seed"),
        "run_dir": None,
        "status": FAILED,
        "val": {},
        "error": error,
        "seconds": 0.0,
    }


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


def _ray_trial(spec: TrialSpec, panel: Any) -> dict[str, Any]:
    return run_trial(spec, panel)


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
    """Trials as Ray tasks with ``cpus_per_trial`` / ``gpus_per_trial``; a local instance when no
    ``address`` is given (``max_concurrent`` CPUs), else the cluster there."""

    name = "ray"

    def __init__(
        self,
        max_concurrent: int,
        panel: Any,
        *,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
    ) -> None:
        ray = require("ray", "scale", "ray[tune]")
        if address:
            check_ray_address(address)
        self.ray = ray
        self._started = False
        if not ray.is_initialized():
            env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}
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
                    ray.init(num_cpus=max(1, int(max_concurrent * cpus_per_trial)), **kwargs)
            except (ConnectionError, TimeoutError, RuntimeError) as exc:
                raise ConfigError(
                    f"could not connect to Ray at {address or 'a new local instance'}: {str(exc).splitlines()[0]}",
                    hint="start it (ray start --head) and check --address, or run with --backend local",
                ) from exc
            self._started = True
        self.max_concurrent = max_concurrent
        self._remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(_ray_trial)
        self._panel_ref = ray.put(panel) if panel is not None else None
        self._pending: dict[Any, TrialSpec] = {}

    def submit(self, spec: TrialSpec) -> Any:
        ref = self._remote.remote(spec, self._panel_ref)
        self._pending[ref] = spec
        return ref

    def wait(self, timeout: float) -> list[tuple[TrialSpec, dict[str, Any]]]:
        if not self._pending:
            return []
        done, _ = self.ray.wait(list(self._pending), num_returns=1, timeout=timeout)
        out = []
        for ref in done:
            spec = self._pending.pop(ref)
            try:
                out.append((spec, self.ray.get(ref)))
            except Exception as exc:  # noqa: BLE001 - a dead worker or a task error: recorded
                out.append((spec, _failed_row(spec, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")))
        return out

    def running(self) -> int:
        return len(self._pending)

    def close(self, cancel: bool = False) -> None:
        if cancel:
            for ref in list(self._pending):
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001,S110 - best effort on the way out
                    pass
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
) -> LocalBackend | RayBackend:
    """The backend ``--backend`` names.

    Raises:
        ConfigError: unknown backend, or a Ray address that does not answer; DependencyMissing: no ray.
    """
    if name == "local":
        if address:
            raise ConfigError("--address is for --backend ray", hint="drop --address or add --backend ray")
        return LocalBackend(max_concurrent, panel)
    if name == "ray":
        return RayBackend(
            max_concurrent, panel, address=address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial
        )
    raise ConfigError(f"unknown backend {name!r}; known: local, ray")
