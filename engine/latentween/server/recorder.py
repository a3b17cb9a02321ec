"""The worker's side of the daemon: executors take queued jobs here and report what they do (through
messages.deliver, or directly), and this keeps it: live progress in memory, what a restart needs in
the store, events to the hub. It also owns the running jobs' controls, which request threads signal.

A database error here (a full disk) must not end the worker: the calls that change a job either
raise before anything changed, so the worker retries them, or fail that one job.
"""
from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from typing import Callable, Optional

from latentween.progress import Progress
from latentween.server.errors import NotFound, one_line
from latentween.server.events import EventHub
from latentween.server.live import JobControl, Live
from latentween.server.store import JobRow, JobStore

log = logging.getLogger("latentween.server")
PERSIST_EVERY_S = 1.0


class Recorder:
    """`view(job_id)`: the job as the API shows it (for state events); `job_dir(job_id)`: its folder."""

    def __init__(self, config, hub: EventHub, view: Callable, job_dir: Callable):
        self.config, self.hub, self._view, self._job_dir = config, hub, view, job_dir
        self.store: Optional[JobStore] = None  # set when the service opens it
        self.lock = threading.RLock()  # request threads and the worker meet under it
        self.wakeup = threading.Condition(self.lock)
        self.controls: dict[str, JobControl] = {}
        self.live: dict[str, Live] = {}
        self.closing = False
        self.device = self.dtype = "starting"  # told by the worker once its device is set up
        self.loading: Optional[str] = None
        self.model_error: Optional[str] = None
        self.loaded: list[str] = []  # reported by the worker, so health never waits on a model load
        self.worker_error: Optional[str] = None  # why the worker is retrying (a database it cannot write)

    def take_next(self, timeout: float = 1.0) -> Optional[tuple[JobRow, JobControl]]:
        with self.wakeup:
            if self.closing:
                return None
            row = self.store.next_queued()
            if row is None:
                self.wakeup.wait(timeout)
                return None
            now = time.time()
            self.store.update(row.id, state="running", started=row.started or now, cancel_requested=0,
                              progress=Progress(done=0, total=0, stage="starting").event())
            control = self.controls[row.id] = JobControl(row.id)
            self.live[row.id] = Live()
            row.state = "running"
        self.publish_state(row.id)
        return row, control

    def set_models(self, loading: Optional[str], loaded: list[str]) -> None:
        self.loading, self.loaded = loading, list(loaded)
        if loading is None and self.config.model in self.loaded:
            self.model_error = None

    def set_model_error(self, error: str) -> None:
        """The start-up model failed to load: /v1/health says why; jobs using it fail with the same line."""
        self.model_error = error
        log.error("cannot load %s: %s", self.config.model, error)

    def set_worker_error(self, error: Optional[str]) -> None:
        """Why the worker is retrying, for /v1/health; None once it works again."""
        if error is None and self.worker_error is not None:
            log.info("the worker works again")
        self.worker_error = error

    def record_progress(self, job_id: str, progress: Progress) -> None:
        live = self.live.get(job_id)
        if live is None:
            return
        live.update(progress)
        now = time.monotonic()
        if now - live.persisted >= PERSIST_EVERY_S:
            live.persisted = now
            try:
                self.store.update(job_id, progress=live.progress.event())
            except sqlite3.Error as exc:
                self._store_failed(job_id, "saving progress", exc)
        if self.hub.watched(job_id):
            self.hub.publish(job_id, "progress", {"id": job_id, "state": "running", "progress": live.progress.event(),
                                                  "eta_s": live.eta()})

    def record_frames(self, job_id: str, indices: list[int]) -> None:
        control = self.controls.get(job_id)
        if control is None or control.deleted:
            return
        try:
            added = self.store.add_frames(job_id, indices)
            live = self.live.get(job_id)
            if live is not None:
                self.store.update(job_id, progress=live.progress.event())
        except sqlite3.Error as exc:
            self._store_failed(job_id, "recording finished frames", exc)
            return
        for index in added:
            self.hub.publish(job_id, "frame", {"id": job_id, "index": index, "url": f"/v1/jobs/{job_id}/frames/{index}"})

    def await_choice(self, job_id: str, frame: int, count: int) -> None:
        with self.lock:
            if self.controls[job_id].deleted:
                return
            try:
                self.store.update(job_id, state="awaiting-choice", awaiting={"frame": frame, "candidates": count})
            except sqlite3.Error as exc:
                self._store_failed(job_id, "pausing for a choice", exc)
                return
            self.live[job_id].stage("awaiting choice")
        self.publish_state(job_id)

    def _store_failed(self, job_id: str, what: str, exc: sqlite3.Error) -> None:
        """The job cannot be recorded: it stops and fails with this reason; the worker goes on."""
        control = self.controls.get(job_id)
        if control is not None and control.failure is None:
            control.fail(f"the job database failed while {what}: {one_line(exc)}")
            log.error("job %s: %s", job_id, control.failure)

    def finish(self, job_id: str, state: str, error: Optional[str] = None) -> None:
        """Record how the job ended. On a database error it raises with nothing changed, to be retried."""
        with self.lock:
            control = self.controls.get(job_id)
            if control is not None and control.deleted:
                self.forget(job_id)
                shutil.rmtree(self._job_dir(job_id), ignore_errors=True)
                return
            if control is not None and control.failure is not None:
                state, error = "failed", control.failure
            if state == "queued":  # stopped by a shutdown: back to the queue, resumed at the next start
                live = self.live.get(job_id)
                progress = live.progress if live is not None else Progress()
                self.store.update(job_id, state="queued", awaiting=None,
                                  progress=progress.model_copy(update={"stage": "queued"}).event())
                self.forget(job_id)
                return
            self.end(job_id, state, error)
        self.publish_state(job_id)

    def end(self, job_id: str, state: str, error: Optional[str] = None) -> None:
        """Store the job's final state (the caller holds the lock)."""
        live = self.live.get(job_id)
        progress = live.progress if live is not None else Progress(done=0, total=0)
        update = {"stage": "finished" if state == "done" else state}
        if state == "done":
            update["done"] = progress.total
        self.store.update(job_id, state=state, error=error, finished=time.time(), awaiting=None,
                          progress=progress.model_copy(update=update).event())
        self.forget(job_id)
        log.info("job %s %s%s", job_id, state, f": {error}" if error else "")

    def forget(self, job_id: str) -> None:
        self.live.pop(job_id, None)
        self.controls.pop(job_id, None)

    def publish_state(self, job_id: str) -> None:
        try:
            job = self._view(job_id)
        except (sqlite3.Error, NotFound):  # pollers read it at their next poll
            return
        self.hub.publish(job_id, "state", job.model_dump(mode="json"))
