"""The daemon's engine object (app.state.service): jobs, their files and the worker.

Routes call its methods and never touch the store or the worker directly. Request threads and the
worker meet here, under one lock; live progress stays in memory and reaches SSE subscribers through
their event loop, while the store gets what a restart needs.
"""
from __future__ import annotations

import logging
import secrets
import shutil
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Optional

from latentween.atomic import write_atomic
from latentween.morph import FRAME_PATTERN
from latentween.server import schemas
from latentween.server.admission import check_available
from latentween.server.config import ServerConfig
from latentween.server.errors import (Conflict, InsufficientStorage, NotFound, QueueFull, Unavailable,
                                      Unprocessable, one_line, quoted)
from latentween.server.inputs import KeyframeInput, check_output_size
from latentween.server.live import JobControl, Live, Subscriber
from latentween.server.runner import candidate_path, input_path, storage_error
from latentween.server.schemas import ACTIVE_STATES
from latentween.server.security import check_settings_paths
from latentween.server.store import JobRow, JobStore, open_state_dir
from latentween.settings import MorphSettings, parse_size

log = logging.getLogger("latentween.server")
PERSIST_EVERY_S = 1.0
# Polls within this time get the same bytes: progress may lag by that much, state changes never do.
# Twenty clients polling at 10 Hz then cost about one database read and serialization per interval.
POLL_FRESH_S = 0.1


def _utc(seconds: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds is not None else None


def _settings(stored: dict) -> MorphSettings:
    """A job's settings as stored; a job from an older version whose fields have changed still lists."""
    try:
        return MorphSettings.model_validate(stored)
    except ValueError:
        return MorphSettings.model_construct(**{k: v for k, v in stored.items() if k in MorphSettings.model_fields})


class JobService:
    def __init__(self, config: ServerConfig):
        self.config = config
        self.store: Optional[JobStore] = None
        self.worker = None
        self.device = self.dtype = "starting"  # told by the worker once its device is set up
        self.loading: Optional[str] = None
        self.model_error: Optional[str] = None
        self.loaded: list[str] = []  # reported by the worker, so health never waits on a model load
        self.closing = False
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._controls: dict[str, JobControl] = {}
        self._live: dict[str, Live] = {}
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._polled: dict[str, tuple[float, int, bytes]] = {}  # job id -> (when, version, JSON)
        self._versions: dict[str, int] = {}
        self._lock_file = None
        self.video_lock = threading.Lock()
        self.worker_error: Optional[str] = None  # why the worker is retrying (a database it cannot write)

    # -- life -----------------------------------------------------------------------------------

    def open(self) -> None:
        """The state directory, locked, and the job database (`latentween serve` opens them before the
        HTTP server starts, so a failure is one line)."""
        if self.store is None:
            self.store, self._lock_file = open_state_dir(self.config.state_dir, self.config.database)

    def start(self) -> None:
        from latentween.server.executor import make_executor

        self.open()
        self.worker = make_executor(self)  # executor.Executor: the local worker, or Ray's actors
        self.worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._lock:
            self.closing = True
            for control in self._controls.values():
                control.cancel(shutdown=True)
            self._wakeup.notify_all()
        if self.worker is not None:
            self.worker.join(timeout)
        for job_id in list(self._subscribers):
            self._publish(job_id, "end", {"reason": "the daemon is stopping"})
        if self.store is not None:
            self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()

    # -- paths ----------------------------------------------------------------------------------

    def job_dir(self, job_id: str) -> Path:
        return self.config.jobs_dir / job_id

    def output_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "output"

    def input_path(self, job_id: str, index: int) -> Path:
        return input_path(self.job_dir(job_id), index)

    def candidate_path(self, job_id: str, frame: int, candidate: int) -> Path:
        return candidate_path(self.job_dir(job_id), frame, candidate)

    # -- requests -------------------------------------------------------------------------------

    def submit(self, settings: MorphSettings, load_inputs: Callable[[], list[KeyframeInput]],
               prepare: Optional[Callable[[Path], None]] = None) -> schemas.Job:
        """Check the cheap things first (settings, queue), then decode the keyframes, then queue the job;
        `prepare(job_dir)` fills its folder before the worker can see it (a re-roll: reuse.py)."""
        if "model" not in settings.model_fields_set:
            settings = settings.model_copy(update={"model": self.config.model})
        settings = settings.with_seed()  # fixed now, so a resumed job makes the same frames
        if settings.output_count() > self.config.max_frames:
            raise Unprocessable(f"the job asks for {settings.output_count()} frames; this daemon makes at most "
                                f"{self.config.max_frames} per job (--max-frames)")
        check_settings_paths(settings, self.config)
        if settings.size:
            check_output_size(parse_size(settings.size), settings, self.config)
        if self.worker is not None and not self.worker.is_alive():
            raise Unavailable("the daemon's worker has stopped, so no job would run; restart the daemon")
        self._check_queue()
        keyframes = load_inputs()
        if not settings.size:
            check_output_size((keyframes[0].width, keyframes[0].height), settings, self.config)
        check_available(settings)  # CLIP weights it cannot get: refused now, not failed later (after input errors)
        job = JobRow(id=secrets.token_hex(6), state="queued", settings=settings.model_dump(mode="json"),
                     inputs=[k.info() for k in keyframes], frame_count=settings.output_count(), created=time.time(),
                     progress={"done": 0, "total": 0, "stage": "queued"})
        with self._lock:
            self._check_queue()
            try:
                for index, keyframe in enumerate(keyframes):
                    path = self.input_path(job.id, index)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(path, keyframe.data)
                if prepare is not None:
                    prepare(self.job_dir(job.id))
            except OSError as exc:
                shutil.rmtree(self.job_dir(job.id), ignore_errors=True)
                raise InsufficientStorage(storage_error(exc, "storing the keyframes")) from exc
            self.store.insert(job)
            self._wakeup.notify_all()
        log.info("job %s queued: %d frames", job.id, job.frame_count)
        return self.view(job)

    def _check_queue(self) -> None:
        queued = self.store.count("queued")
        if queued >= self.config.max_queue:
            raise QueueFull(f"the queue is full ({queued} jobs waiting, --max-queue {self.config.max_queue}); "
                            f"try again when some are done")

    def get(self, job_id: str) -> schemas.Job:
        return self.view(self.row(job_id))

    def list(self, state: Optional[str] = None, limit: int = 100) -> list[schemas.Job]:
        return [self.view(row) for row in self.store.list(state, limit)]

    def polled_json(self, job_id: str) -> Optional[bytes]:
        """The job as JSON from memory, if a recent poll made it and nothing but progress changed since."""
        entry = self._polled.get(job_id)
        if entry is None or time.monotonic() - entry[0] > POLL_FRESH_S or entry[1] != self._versions.get(job_id, 0):
            return None
        return entry[2]

    def job_json(self, job_id: str) -> bytes:
        version = self._versions.get(job_id, 0)
        data = self.get(job_id).model_dump_json().encode()
        if len(self._polled) > 1000:
            self._polled.clear()
        self._polled[job_id] = (time.monotonic(), version, data)
        return data

    def row(self, job_id: str) -> JobRow:
        row = self.store.get(job_id)
        if row is None:
            raise NotFound(f"no job {quoted(job_id)} on this daemon")
        return row

    def view(self, row: JobRow) -> schemas.Job:
        live = self._live.get(row.id)
        progress = live.progress if live is not None and row.state in ACTIVE_STATES else row.progress
        return schemas.Job(
            id=row.id, state=row.state, created=_utc(row.created), started=_utc(row.started),
            finished=_utc(row.finished), settings=_settings(row.settings), inputs=row.inputs,
            progress=schemas.Progress(**progress), eta_s=live.eta() if live is not None else None, error=row.error,
            frame_count=row.frame_count, frames=self.store.frames(row.id), awaiting=row.awaiting,
            cancel_requested=row.cancel_requested,
            queue_position=self.store.position(row) if row.state == "queued" else None)

    def cancel(self, job_id: str) -> schemas.Job:
        with self._lock:
            row = self.row(job_id)
            if row.state == "queued":
                self._finish(row.id, "cancelled")
            elif row.state in ACTIVE_STATES:
                self.store.update(row.id, cancel_requested=1)
                self._controls[row.id].cancel()
            else:
                raise Conflict(f"job {job_id} is already {row.state}")
            job = self.get(job_id)
        self._publish(job_id, "state", job.model_dump(mode="json"))
        return job

    def delete(self, job_id: str) -> None:
        with self._lock:
            self.row(job_id)
            control = self._controls.get(job_id)
            if control is None:  # files first: on a full disk, the database needs the space they free
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            try:
                self.store.delete(job_id)
            except sqlite3.OperationalError:
                self.store.delete(job_id)  # once more, now that the files are gone
            if control is not None:
                control.cancel(delete=True)  # the worker removes the files once it has let go of them
        self._publish(job_id, "end", {"reason": "deleted"})

    def candidates(self, job_id: str) -> schemas.Candidates:
        row = self.row(job_id)
        if row.state != "awaiting-choice" or not row.awaiting:
            raise Conflict(f"job {job_id} is not waiting for a choice (it is {row.state})")
        frame = row.awaiting["frame"]
        return schemas.Candidates(frame=frame, candidates=[
            schemas.Candidate(index=k, url=f"/v1/jobs/{job_id}/candidates/{k}") for k in range(row.awaiting["candidates"])])

    def candidate_file(self, job_id: str, candidate: int) -> Path:
        listing = self.candidates(job_id)
        if not 0 <= candidate < len(listing.candidates):
            raise NotFound(f"frame {listing.frame} of job {job_id} has candidates 0..{len(listing.candidates) - 1}")
        return self.candidate_path(job_id, listing.frame, candidate)

    def choose(self, job_id: str, frame: int, candidate: int) -> schemas.Job:
        with self._lock:
            row = self.row(job_id)
            if row.state != "awaiting-choice" or not row.awaiting:
                raise Conflict(f"job {job_id} is not waiting for a choice (it is {row.state})")
            if frame != row.awaiting["frame"]:
                raise Conflict(f"job {job_id} waits for a choice for frame {row.awaiting['frame']}, not frame {frame}")
            if candidate >= row.awaiting["candidates"]:
                raise Unprocessable(f"frame {frame} has candidates 0..{row.awaiting['candidates'] - 1}, not {candidate}")
            self.store.update(job_id, state="running", awaiting=None)
            self._live[job_id].update({**self._live[job_id].progress, "stage": "denoising"})
            self._controls[job_id].choose(candidate)
            job = self.get(job_id)
        self._publish(job_id, "state", job.model_dump(mode="json"))
        return job

    def frame_file(self, job_id: str, index: int) -> Path:
        row = self.row(job_id)
        if not 0 <= index < row.frame_count:
            raise NotFound(f"job {job_id} has frames 0..{row.frame_count - 1}, not {index}")
        if not self.store.has_frame(job_id, index):
            raise NotFound(f"frame {index} of job {job_id} is not finished yet")
        return self.output_dir(job_id) / FRAME_PATTERN.format(index)

    def manifest_file(self, job_id: str) -> Path:
        self.row(job_id)
        path = self.output_dir(job_id) / "manifest.json"
        if not path.is_file():
            raise NotFound(f"job {job_id} has no manifest yet (it starts when the job runs)")
        return path

    def health(self) -> schemas.Health:
        from latentween.server.status import health

        return health(self)

    def running(self) -> Optional[str]:
        """The running job (with several actors, the one taken first)."""
        return next(iter(self._controls), None)

    def models(self) -> schemas.Models:
        specs = [self.config.model] + [m for m in self.loaded if m != self.config.model]
        return schemas.Models(max_loaded=self.config.max_loaded, models=[
            schemas.ModelInfo(spec=s, default=s == self.config.model, loaded=s in self.loaded) for s in specs])

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, job_id: str, loop) -> Subscriber:
        subscriber = Subscriber(job_id, loop)
        with self._lock:
            self._subscribers.setdefault(job_id, []).append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscriber.job_id, [])
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if not subscribers:
                self._subscribers.pop(subscriber.job_id, None)

    def _publish(self, job_id: str, kind: str, data: dict) -> None:
        if kind != "progress":
            self._versions[job_id] = self._versions.get(job_id, 0) + 1
        for subscriber in list(self._subscribers.get(job_id, ())):
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.push, kind, data)
            except RuntimeError:  # its loop has closed: the stream is gone
                self.unsubscribe(subscriber)

    # -- the worker's side ----------------------------------------------------------------------
    # A database error here (a full disk) must not end the worker: the calls that change a job either
    # raise before anything changed, so the worker retries them, or fail that one job.

    def take_next(self, timeout: float = 1.0) -> Optional[tuple[JobRow, JobControl]]:
        with self._wakeup:
            if self.closing:
                return None
            row = self.store.next_queued()
            if row is None:
                self._wakeup.wait(timeout)
                return None
            now = time.time()
            self.store.update(row.id, state="running", started=row.started or now, cancel_requested=0,
                              progress={"done": 0, "total": 0, "stage": "starting"})
            control = self._controls[row.id] = JobControl(row.id)
            self._live[row.id] = Live()
            row.state = "running"
        self._publish_state(row.id)
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

    def record_progress(self, job_id: str, event: dict) -> None:
        live = self._live.get(job_id)
        if live is None:
            return
        live.update(event)
        now = time.monotonic()
        if now - live.persisted >= PERSIST_EVERY_S:
            live.persisted = now
            try:
                self.store.update(job_id, progress=live.progress)
            except sqlite3.Error as exc:
                self._store_failed(job_id, "saving progress", exc)
        if job_id in self._subscribers:
            self._publish(job_id, "progress", {"id": job_id, "state": "running", "progress": live.progress,
                                               "eta_s": live.eta()})

    def record_frames(self, job_id: str, indices: list[int]) -> None:
        control = self._controls.get(job_id)
        if control is None or control.deleted:
            return
        try:
            added = self.store.add_frames(job_id, indices)
            live = self._live.get(job_id)
            if live is not None:
                self.store.update(job_id, progress=live.progress)
        except sqlite3.Error as exc:
            self._store_failed(job_id, "recording finished frames", exc)
            return
        for index in added:
            self._publish(job_id, "frame", {"id": job_id, "index": index, "url": f"/v1/jobs/{job_id}/frames/{index}"})

    def await_choice(self, job_id: str, frame: int, count: int) -> None:
        with self._lock:
            if self._controls[job_id].deleted:
                return
            try:
                self.store.update(job_id, state="awaiting-choice", awaiting={"frame": frame, "candidates": count})
            except sqlite3.Error as exc:
                self._store_failed(job_id, "pausing for a choice", exc)
                return
            self._live[job_id].update({**self._live[job_id].progress, "stage": "awaiting choice"})
        self._publish_state(job_id)

    def _store_failed(self, job_id: str, what: str, exc: sqlite3.Error) -> None:
        """The job cannot be recorded: it stops and fails with this reason; the worker goes on."""
        control = self._controls.get(job_id)
        if control is not None and control.failure is None:
            control.fail(f"the job database failed while {what}: {one_line(exc)}")
            log.error("job %s: %s", job_id, control.failure)

    def finish(self, job_id: str, state: str, error: Optional[str] = None) -> None:
        """Record how the job ended. On a database error it raises with nothing changed, to be retried."""
        with self._lock:
            control = self._controls.get(job_id)
            if control is not None and control.deleted:
                self._forget(job_id)
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
                return
            if control is not None and control.failure is not None:
                state, error = "failed", control.failure
            if state == "queued":  # stopped by a shutdown: back to the queue, resumed at the next start
                live = self._live.get(job_id)
                self.store.update(job_id, state="queued", awaiting=None,
                                  progress={**(live.progress if live is not None else {}), "stage": "queued"})
                self._forget(job_id)
                return
            self._finish(job_id, state, error)
        self._publish_state(job_id)

    def _finish(self, job_id: str, state: str, error: Optional[str] = None) -> None:
        live = self._live.get(job_id)
        progress = dict(live.progress if live is not None else {"done": 0, "total": 0})
        if state == "done":
            progress["done"] = progress.get("total", 0)
        progress["stage"] = "finished" if state == "done" else state
        self.store.update(job_id, state=state, error=error, finished=time.time(), awaiting=None, progress=progress)
        self._forget(job_id)
        log.info("job %s %s%s", job_id, state, f": {error}" if error else "")

    def _forget(self, job_id: str) -> None:
        self._live.pop(job_id, None)
        self._controls.pop(job_id, None)

    def _publish_state(self, job_id: str) -> None:
        try:
            job = self.get(job_id)
        except (sqlite3.Error, NotFound):  # pollers read it at their next poll
            return
        self._publish(job_id, "state", job.model_dump(mode="json"))
