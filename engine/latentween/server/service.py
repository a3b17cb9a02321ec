"""The daemon's engine object (app.state.service): the façade routes and executors call.

Routes never touch the store or the worker directly. The parts: `hub` (events.EventHub: SSE
subscribers and cached polls), `files` (jobfiles.JobFiles: where a job's files are, which may be
served), `recorder` (recorder.Recorder: the worker's side, and the running jobs' controls and live
progress, under the lock request threads and the worker share). Live progress stays in memory; the
store gets what a restart needs.
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
from latentween.progress import Progress
from latentween.server import schemas
from latentween.server.admission import check_available
from latentween.server.config import ServerConfig
from latentween.server.errors import Conflict, InsufficientStorage, NotFound, QueueFull, Unavailable, Unprocessable, quoted
from latentween.server.events import EventHub
from latentween.server.inputs import KeyframeInput, check_output_size
from latentween.server.jobfiles import JobFiles
from latentween.server.recorder import Recorder
from latentween.server.runner import storage_error
from latentween.server.schemas import ACTIVE_STATES
from latentween.server.security import check_settings_paths
from latentween.server.store import JobRow, open_state_dir
from latentween.settings import MorphSettings, parse_size

log = logging.getLogger("latentween.server")


def _utc(seconds: Optional[float]) -> Optional[datetime]:
    return datetime.fromtimestamp(seconds, timezone.utc) if seconds is not None else None


def _settings(stored: dict) -> MorphSettings:
    """A job's settings as stored; a job from an older version whose fields have changed still lists."""
    try:
        return MorphSettings.model_validate(stored)
    except ValueError:
        return MorphSettings.model_construct(**{k: v for k, v in stored.items() if k in MorphSettings.model_fields})


def _part(part: str, name: str, doc: str = ""):
    """An attribute of a part, read and set through the façade (executors and /v1/health use these)."""
    return property(lambda self: getattr(getattr(self, part), name),
                    lambda self, value: setattr(getattr(self, part), name, value), doc=doc)


def _call(part: str, name: str):
    def method(self, *args, **kwargs):
        return getattr(getattr(self, part), name)(*args, **kwargs)

    method.__name__ = name
    return method


class JobService:
    # the worker's state and calls: recorder.Recorder
    store = _part("recorder", "store", "the JobStore, once open()")
    closing = _part("recorder", "closing")
    device = _part("recorder", "device")
    dtype = _part("recorder", "dtype")
    loading = _part("recorder", "loading")
    loaded = _part("recorder", "loaded")
    model_error = _part("recorder", "model_error")
    worker_error = _part("recorder", "worker_error")
    take_next = _call("recorder", "take_next")
    set_models = _call("recorder", "set_models")
    set_model_error = _call("recorder", "set_model_error")
    set_worker_error = _call("recorder", "set_worker_error")
    record_progress = _call("recorder", "record_progress")
    record_frames = _call("recorder", "record_frames")
    await_choice = _call("recorder", "await_choice")
    finish = _call("recorder", "finish")
    # the job's files: jobfiles.JobFiles
    job_dir = _call("files", "job_dir")
    output_dir = _call("files", "output_dir")
    input_path = _call("files", "input_path")
    candidate_path = _call("files", "candidate_path")
    frame_file = _call("files", "frame_file")
    manifest_file = _call("files", "manifest_file")
    candidates = _call("files", "candidates")
    candidate_file = _call("files", "candidate_file")
    # events: events.EventHub
    subscribe = _call("hub", "subscribe")
    unsubscribe = _call("hub", "unsubscribe")
    polled_json = _call("hub", "polled_json")

    def __init__(self, config: ServerConfig):
        self.config = config
        self.worker = None
        self.hub = EventHub()
        self.files = JobFiles(config.jobs_dir, self.row, lambda job_id, index: self.store.has_frame(job_id, index))
        self.recorder = Recorder(config, self.hub, self.get, self.files.job_dir)
        self._lock_file = None
        self.video_lock = threading.Lock()

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
        recorder = self.recorder
        with recorder.lock:
            recorder.closing = True
            for control in recorder.controls.values():
                control.cancel(shutdown=True)
            recorder.wakeup.notify_all()
        if self.worker is not None:
            self.worker.join(timeout)
        self.hub.end_all("the daemon is stopping")
        if self.store is not None:
            self.store.close()
        if self._lock_file is not None:
            self._lock_file.close()

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
                     progress=Progress(done=0, total=0, stage="queued").event())
        with self.recorder.lock:
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
            self.recorder.wakeup.notify_all()
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

    def job_json(self, job_id: str) -> bytes:
        return self.hub.job_json(job_id, lambda: self.get(job_id).model_dump_json().encode())

    def row(self, job_id: str) -> JobRow:
        row = self.store.get(job_id)
        if row is None:
            raise NotFound(f"no job {quoted(job_id)} on this daemon")
        return row

    def view(self, row: JobRow) -> schemas.Job:
        live = self.recorder.live.get(row.id)
        progress = live.progress if live is not None and row.state in ACTIVE_STATES else Progress(**row.progress)
        return schemas.Job(
            id=row.id, state=row.state, created=_utc(row.created), started=_utc(row.started),
            finished=_utc(row.finished), settings=_settings(row.settings), inputs=row.inputs,
            progress=progress, eta_s=live.eta() if live is not None else None, error=row.error,
            frame_count=row.frame_count, frames=self.store.frames(row.id), awaiting=row.awaiting,
            cancel_requested=row.cancel_requested,
            queue_position=self.store.position(row) if row.state == "queued" else None)

    def cancel(self, job_id: str) -> schemas.Job:
        with self.recorder.lock:
            row = self.row(job_id)
            if row.state == "queued":
                self.recorder.end(row.id, "cancelled")
            elif row.state in ACTIVE_STATES:
                self.store.update(row.id, cancel_requested=1)
                self.recorder.controls[row.id].cancel()
            else:
                raise Conflict(f"job {job_id} is already {row.state}")
            job = self.get(job_id)
        self.hub.publish(job_id, "state", job.model_dump(mode="json"))
        return job

    def delete(self, job_id: str) -> None:
        with self.recorder.lock:
            self.row(job_id)
            control = self.recorder.controls.get(job_id)
            if control is None:  # files first: on a full disk, the database needs the space they free
                shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
            try:
                self.store.delete(job_id)
            except sqlite3.OperationalError:
                self.store.delete(job_id)  # once more, now that the files are gone
            if control is not None:
                control.cancel(delete=True)  # the worker removes the files once it has let go of them
        self.hub.publish(job_id, "end", {"reason": "deleted"})

    def choose(self, job_id: str, frame: int, candidate: int) -> schemas.Job:
        with self.recorder.lock:
            row = self.row(job_id)
            if row.state != "awaiting-choice" or not row.awaiting:
                raise Conflict(f"job {job_id} is not waiting for a choice (it is {row.state})")
            if frame != row.awaiting["frame"]:
                raise Conflict(f"job {job_id} waits for a choice for frame {row.awaiting['frame']}, not frame {frame}")
            if candidate >= row.awaiting["candidates"]:
                raise Unprocessable(f"frame {frame} has candidates 0..{row.awaiting['candidates'] - 1}, not {candidate}")
            self.store.update(job_id, state="running", awaiting=None)
            self.recorder.live[job_id].stage("denoising")
            self.recorder.controls[job_id].choose(candidate)
            job = self.get(job_id)
        self.hub.publish(job_id, "state", job.model_dump(mode="json"))
        return job

    def health(self) -> schemas.Health:
        from latentween.server.status import health

        return health(self)

    def running(self) -> Optional[str]:
        """The running job (with several actors, the one taken first)."""
        return next(iter(self.recorder.controls), None)

    def models(self) -> schemas.Models:
        specs = [self.config.model] + [m for m in self.loaded if m != self.config.model]
        return schemas.Models(max_loaded=self.config.max_loaded, models=[
            schemas.ModelInfo(spec=s, default=s == self.config.model, loaded=s in self.loaded) for s in specs])
