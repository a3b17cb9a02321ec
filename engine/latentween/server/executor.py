"""The seam between the daemon's jobs and what runs them: an executor takes queued jobs from the
service (take_next), runs them, and reports back to the service's recorder (recorder.py: typed
messages through messages.deliver, and finish), so the store, the API, SSE, cancel and manual choice
behave the same whichever runs the jobs.

- "local": the worker of worker.py, one job at a time in a worker process (or, isolate off, a thread).
- "ray": ray_executor.py, jobs on FarmActors of a Ray cluster, one job per actor at a time.
"""
from __future__ import annotations

from typing import Protocol


class Executor(Protocol):
    executor: str  # "local" or "ray", as /v1/health says (not `name`: the local worker is a Thread)

    def start(self) -> None: ...
    def join(self, timeout: float) -> None: ...  # after service.closing is set: stop, re-queueing jobs
    def is_alive(self) -> bool: ...
    def stalled(self) -> bool: ...
    def silent_s(self) -> float: ...
    def actors(self) -> list[dict]: ...  # what runs the jobs, for /v1/health: name, pid, state, job


def make_executor(service) -> Executor:
    config = service.config
    if config.executor == "ray":
        from latentween.server.ray_executor import RayExecutor

        return RayExecutor(service)
    from latentween.server.worker import ProcessWorker, ThreadWorker

    return ProcessWorker(service) if config.isolate else ThreadWorker(service)
