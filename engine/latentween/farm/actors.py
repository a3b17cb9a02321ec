"""The Ray actor that keeps a model manager loaded between pieces of work, and the channel a running
piece reports through.

An actor runs one piece of work at a time: `run` is in the "work" concurrency group of one thread,
while its other methods answer meanwhile from the default group (`poll` hands the driver the running
work's reports, `choose` delivers a manual choice), and `run_chunk` runs one chunk of some actor's
transition in a "chunk" group of one thread (farm/chunks.py). Nothing here retries or watches processes: a
killed actor is restarted by Ray (`max_restarts`) and its unfinished `run` is run again by Ray
(`max_task_retries`); since every piece of work resumes from its folder (morph.py), what it makes is
what an uninterrupted run makes. Cancel is Ray's too: `ray.cancel` on a running actor task sets a
flag that the work checks between denoising steps (Channel.should_stop).
"""
from __future__ import annotations

import importlib
import os
import threading
import time
from typing import Optional

import ray

from latentween.errors import Cancelled, LatentweenError

# What `run(kind, ...)` runs: module:function(actor, channel, payload). Named rather than imported so
# that the daemon's kind ("job", which needs the daemon's runner) stays in the daemon's package.
WORK = {"transition": "latentween.farm.transition:run", "job": "latentween.server.ray_executor:run_job"}
CONTROL_THREADS = 4
# What decides CPU threads and kernels (docs/determinism.md), passed from the driver to its actors.
CPU_ENVIRONMENT = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME", "MKL_CBWR",
                   "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY")


class Channel:
    """Reports of one running piece of work, kept until the driver polls; progress events coalesce."""

    def __init__(self):
        self._lock = threading.Lock()
        self._events: list = []
        self._choice: Optional[int] = None

    def push(self, message) -> None:
        """Keep a typed report (latentween.reports, server.messages); a progress report replaces the one
        before it when nothing came between, so a slow poller gets the latest."""
        from latentween.reports import Progressed

        with self._lock:
            if isinstance(message, Progressed) and self._events and isinstance(self._events[-1], Progressed):
                self._events[-1] = message
            else:
                self._events.append(message)

    def drain(self) -> list:
        with self._lock:
            events, self._events = self._events, []
            return events

    def choose(self, candidate: int) -> None:
        self._choice = candidate

    def should_stop(self) -> bool:
        """Called from the work's own thread: the flag ray.cancel set on this task."""
        return ray.get_runtime_context().is_canceled()

    def wait_for_choice(self) -> int:
        while self._choice is None:
            if self.should_stop():
                raise Cancelled()
            time.sleep(0.05)
        choice, self._choice = self._choice, None
        return choice


class FarmActor:
    """One model manager on one device (a GPU, or `threads` CPU threads), for as many jobs as come."""

    def __init__(self, runtime: dict, max_loaded: int = 1, threads: Optional[int] = None,
                 environment: Optional[dict] = None):
        # Frames are byte-identical only for the same CPU threads and kernel selection
        # (docs/determinism.md): the actor takes the driver's settings of those (Ray sets its own
        # OMP_NUM_THREADS in workers) before torch loads, and the thread count the same work would have
        # had without Ray. The engine's own per-job choice (run_morph) then decides as it would there.
        for name, value in (environment or {}).items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        from latentween.runtime import configure_runtime

        configure_runtime()  # after the driver's settings, which it keeps; before the model manager
        import torch

        from latentween.models import ModelManager
        from latentween.settings import RuntimeSettings

        if threads:
            torch.set_num_threads(threads)
        self.runtime = RuntimeSettings.model_validate(runtime)
        self.manager = ModelManager(self.runtime, max_loaded=max_loaded)
        self.channels: dict[str, Channel] = {}
        self.running: Optional[str] = None
        self.chunk: Optional[str] = None

    def info(self) -> dict:
        import torch

        context = ray.get_runtime_context()
        return {"pid": os.getpid(), "node": context.get_node_id(), "device": str(self.manager.device),
                "dtype": str(self.manager.dtype).replace("torch.", ""), "threads": torch.get_num_threads(),
                "loaded": self.manager.loaded(), "running": self.running, "chunk": self.chunk}

    def preload(self, spec: str) -> Optional[str]:
        """Load a model before the first job; returns why it failed, or None."""
        try:
            self.manager.get(spec)
        except LatentweenError as exc:
            return str(exc)
        return None

    @ray.method(concurrency_group="work")
    def run(self, kind: str, key: str, payload: dict) -> dict:
        """One piece of work; its result with the reports not yet polled."""
        module, name = WORK[kind].split(":")
        channel = self.channels[key] = Channel()
        self.running = key
        try:
            result = getattr(importlib.import_module(module), name)(self, channel, payload)
            return {"result": result, "events": channel.drain()}
        finally:
            self.running = None
            self.channels.pop(key, None)

    @ray.method(concurrency_group="chunk")
    def run_chunk(self, job: dict, level: int, number: int, known: list[int], takes: dict, *latents) -> dict:
        """One chunk of another actor's transition (farm/chunks.py). Its own thread: the actor that owns
        a transition waits in `run` for chunks, some of which it runs here itself."""
        from latentween.farm.chunks import run_chunk

        self.chunk = f"{job['key']} {level}/{number}"
        try:
            return run_chunk(self, job, level, number, known, takes, list(latents))
        finally:
            self.chunk = None

    def poll(self, key: str) -> dict:
        """The running work's reports since the last poll, and this process's id (it changes on a restart)."""
        channel = self.channels.get(key)
        return {"pid": os.getpid(), "events": channel.drain() if channel is not None else []}

    def choose(self, key: str, candidate: int) -> bool:
        channel = self.channels.get(key)
        if channel is not None:
            channel.choose(candidate)
        return channel is not None


def remote_class(restarts: int):
    """FarmActor as a Ray actor class: Ray restarts it `restarts` times and re-runs its interrupted task
    as often; -1 means without limit."""
    return ray.remote(concurrency_groups={"work": 1, "chunk": 1}, max_concurrency=CONTROL_THREADS, max_restarts=restarts,
                      max_task_retries=restarts)(FarmActor)


def start_actors(names: list[str], runtime: dict, *, restarts: int, max_loaded: int = 1,
                 threads: Optional[int] = None, gpus: bool = False, cpus: float = 1) -> list:
    """Named actors (namespace latentween, so `ray list actors` and the dashboard say whose they are)."""
    cls = remote_class(restarts)
    resources = {"num_gpus": 1} if gpus else {"num_cpus": cpus}
    environment = {name: os.environ.get(name) for name in CPU_ENVIRONMENT}
    return [cls.options(name=name, namespace="latentween", **resources).remote(
        runtime, max_loaded, threads, environment) for name in names]


def unwrap_error(exc: BaseException) -> BaseException:
    """A task's own error (a LatentweenError raised in the actor) rather than Ray's wrapper of it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, LatentweenError) else exc
