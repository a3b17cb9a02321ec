"""What request threads, the worker and SSE streams share about the running job, in memory:
its stop and choice signals, its live progress, and the subscribers of its event stream."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Optional

from latentween.errors import Cancelled
from latentween.progress import Progress


class JobControl:
    """Signals from request threads to the worker about the job it runs."""

    def __init__(self, job_id: str):
        self.job_id = job_id
        self.stop = threading.Event()
        self.shutdown = False  # stopped because the daemon stops: the job goes back to the queue
        self.deleted = False
        self.failure: Optional[str] = None  # why the job fails whatever the runner reports (a database error)
        self._choice: Optional[int] = None
        self._chosen = threading.Condition()

    def cancel(self, shutdown: bool = False, delete: bool = False) -> None:
        self.shutdown |= shutdown
        self.deleted |= delete
        self.stop.set()
        with self._chosen:
            self._chosen.notify_all()

    def fail(self, reason: str) -> None:
        if self.failure is None:
            self.failure = reason
        self.cancel()

    def should_stop(self) -> bool:
        return self.stop.is_set()

    def choose(self, candidate: int) -> None:
        with self._chosen:
            self._choice = candidate
            self._chosen.notify_all()

    def take_choice(self) -> Optional[int]:
        """The choice made since the last call, if any, without waiting."""
        with self._chosen:
            choice, self._choice = self._choice, None
            return choice

    def wait_for_choice(self) -> int:
        with self._chosen:
            while self._choice is None:
                if self.stop.is_set():
                    raise Cancelled()
                self._chosen.wait(timeout=1.0)
            choice, self._choice = self._choice, None
            return choice


class Live:
    """Progress of the running job, updated every denoising step; ETA from the pace since it started."""

    def __init__(self):
        self.progress = Progress(done=0, total=0, stage="starting")
        self._origin: Optional[tuple[float, int]] = None
        self.persisted = 0.0

    def update(self, progress: Progress) -> None:
        if self._origin is None and progress.stage == "denoising":
            self._origin = (time.monotonic(), progress.done)
        self.progress = progress

    def stage(self, stage: str) -> None:
        self.update(self.progress.model_copy(update={"stage": stage}))

    def eta(self) -> Optional[float]:
        if self._origin is None:
            return None
        started, first = self._origin
        done, total = self.progress.done, self.progress.total
        if done <= first or total <= 0:
            return None
        return round((time.monotonic() - started) / (done - first) * (total - done), 1)


class Subscriber:
    """One SSE stream. Filled from the worker thread through its event loop; progress events coalesce."""

    def __init__(self, job_id: str, loop):
        import asyncio

        self.job_id = job_id
        self.loop = loop
        self.events: deque = deque()
        self.ready = asyncio.Event()

    def push(self, kind: str, data: dict) -> None:  # on the event loop's thread
        if kind == "progress" and self.events and self.events[-1][0] == "progress":
            self.events[-1] = (kind, data)
        else:
            self.events.append((kind, data))
        self.ready.set()

    async def next(self) -> tuple[str, dict]:
        while not self.events:
            self.ready.clear()
            await self.ready.wait()
        return self.events.popleft()
