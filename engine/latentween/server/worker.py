"""One worker per device, taking queued jobs in order: by default it relays each job to a worker
process (child.py), so serving requests never competes with generation for the interpreter lock;
with `isolate` off it runs jobs in a thread of the daemon (simpler to debug and to test with fakes).
Either way every outcome ends up on the job as one line, and the worker only stops with the daemon.
"""
from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import threading
import time
from typing import Optional

from latentween.errors import LatentweenError
from latentween.server import child
from latentween.server.errors import one_line
from latentween.server.messages import Cancel, Choose, Exit, Fatal, Finished, Job, Sink, deliver
from latentween.server.runner import execute, job_payload, load_model

log = logging.getLogger("latentween.server")
POLL_S = 0.05
BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0, 5.0)
STALL_S = 120.0  # a worker silent this long (not in a job of its own thread) is reported stuck


def service_sink(service, job_id: str, control) -> Sink:
    """A running job's reports, straight to the service's recorder (the in-process worker)."""
    return Sink(lambda message: deliver(service.recorder, job_id, message), control)


def end_state(state: str, control) -> str:
    """A job stopped because the daemon stops goes back to the queue, to resume at the next start."""
    return "queued" if state == "cancelled" and control.shutdown else state


class Resilient:
    """What both workers share: a loop that no error ends (a full disk makes every database write fail
    until space is freed: the worker backs off and tries again) and a heartbeat for /v1/health."""

    busy = False  # in a job run in this thread: a model load may take minutes without a beat
    executor = "local"  # executor.Executor.executor (threading.Thread has its own `name`)

    def init_health(self) -> None:
        self.beat = time.monotonic()
        self.failures = 0

    def silent_s(self) -> float:
        return time.monotonic() - self.beat

    def stalled(self) -> bool:
        return not self.busy and self.silent_s() > STALL_S

    def loop(self, step) -> None:
        while not self.service.closing:
            self.beat = time.monotonic()
            try:
                step()
            except Exception as exc:  # a database error, or a bug: either way the worker must go on
                self.trouble(exc)
            else:
                self.recovered()

    def trouble(self, exc: Exception) -> None:
        delay = BACKOFF_S[min(self.failures, len(BACKOFF_S) - 1)]
        reason = (f"job database error: {one_line(exc)}" if isinstance(exc, sqlite3.Error)
                  else f"internal error: {type(exc).__name__}: {one_line(exc)}")
        if self.failures == 0:
            if isinstance(exc, sqlite3.Error):
                log.error("worker: %s; retrying with back-off", reason)
            else:
                log.exception("worker: %s; retrying with back-off", reason)
        self.failures += 1
        self.service.set_worker_error(f"{reason} (retrying, {self.failures} tries so far)")
        deadline = time.monotonic() + delay
        while not self.service.closing and time.monotonic() < deadline:
            time.sleep(min(0.05, delay))
            self.beat = time.monotonic()

    def recovered(self) -> None:
        if self.failures:
            self.failures = 0
            self.service.set_worker_error(None)

    def run_and_finish(self, row, control, run) -> None:
        """Run a taken job to its end and record the end, retrying the record until it is kept: the job
        must not stay `running` in the database while nothing runs it."""
        try:
            state, error = run(row, control)
        except Exception as exc:
            log.exception("job %s: the worker failed", row.id)
            state, error = "failed", f"internal error: {type(exc).__name__}: {one_line(exc)}"
        state = end_state(state, control)
        while True:
            try:
                self.service.finish(row.id, state, error)
                break
            except Exception as exc:
                if self.service.closing:
                    return  # still `running` in the database: the next start puts it back in the queue
                self.trouble(exc)
        self.recovered()


class ThreadWorker(Resilient, threading.Thread):
    """The local executor with isolate off (executor.py)."""

    def __init__(self, service):
        from latentween.models import ModelManager

        super().__init__(name="latentween-worker", daemon=True)
        self.service = service
        self.init_health()
        config = service.config
        self.manager = ModelManager(config.runtime, max_loaded=config.max_loaded)
        service.device, service.dtype = str(self.manager.device), str(self.manager.dtype).replace("torch.", "")

    def run(self) -> None:
        service = self.service
        if service.config.preload:
            try:
                load_model(self.manager, service.config.model, service_sink(service, "", None))
            except LatentweenError as exc:
                service.set_model_error(str(exc))
        self.loop(self.step)

    def step(self) -> None:
        taken = self.service.take_next()
        if taken is not None:
            self.run_and_finish(*taken, self.execute)

    def actors(self) -> list[dict]:
        import os

        return [{"name": self.name, "pid": os.getpid(), "node": None, "state": "alive" if self.is_alive() else "dead",
                 "job": self.service.running()}]

    def execute(self, row, control) -> tuple[str, Optional[str]]:
        self.busy = True
        try:
            return execute(job_payload(self.service.job_dir(row.id), row), self.manager, self.service.config.runtime,
                           service_sink(self.service, row.id, control))
        finally:
            self.busy = False
            self.beat = time.monotonic()


# A job whose worker process dies is run again this many times before it fails.
RETRIES_AFTER_DEATH = 1


class ProcessWorker(Resilient, threading.Thread):
    """The daemon's side of the worker process: sends it jobs, relays its reports to the service. The
    local executor (executor.py)."""

    def __init__(self, service):
        super().__init__(name="latentween-worker-relay", daemon=True)
        self.service = service
        self.init_health()
        self.process = None
        self.conn = None
        self.fatal: Optional[str] = None
        self.deaths: dict[str, int] = {}  # job id -> worker processes that died under it

    def run(self) -> None:
        service = self.service
        try:
            self.spawn(preload=service.config.model if service.config.preload else None)
        except Exception as exc:  # out of file descriptors, say: the first job tries again
            log.error("cannot start the worker process: %s", one_line(exc))
        self.loop(self.step)
        self.close()

    def step(self) -> None:
        taken = self.service.take_next(timeout=0.1)
        if taken is not None:
            self.run_and_finish(*taken, self.relay)
        else:
            self.drain()

    def spawn(self, preload: Optional[str]) -> None:
        config = self.service.config
        context = multiprocessing.get_context("spawn")  # never fork a process that has threads
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=child.main, name="latentween-worker", daemon=True,
                                       args=(child_end, config.runtime.model_dump(), config.max_loaded, preload))
        self.process.start()
        child_end.close()
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            message = Fatal(f"the worker process exited at start (exit code {self.process.exitcode})")
        if isinstance(message, Fatal):
            self.fatal = message.error
            self.service.set_model_error(message.error)
            log.error("worker process: %s", message.error)
        else:  # Ready
            self.fatal = None
            self.service.device, self.service.dtype = message.device, message.dtype

    def actors(self) -> list[dict]:
        process = self.process
        alive = process is not None and process.is_alive()
        return [{"name": "latentween-worker", "pid": process.pid if process is not None else None, "node": None,
                 "state": "alive" if alive else "dead", "job": self.service.running()}]

    def drain(self) -> None:
        """Reports that come between jobs (the start-up model load)."""
        try:
            while self.conn.poll(0):
                deliver(self.service.recorder, "", self.conn.recv())
        except (EOFError, OSError):
            pass

    def relay(self, row, control) -> tuple[str, Optional[str]]:
        service = self.service
        if self.process is None or not self.process.is_alive():
            self.spawn(preload=None)
        if self.fatal:
            return "failed", self.fatal
        cancel_sent = False
        try:
            self.conn.send(Job(job_payload(service.job_dir(row.id), row)))
            while True:
                self.beat = time.monotonic()
                if control.should_stop() and not cancel_sent:
                    self.conn.send(Cancel())
                    cancel_sent = True
                choice = control.take_choice()
                if choice is not None:
                    self.conn.send(Choose(choice))
                if not self.conn.poll(POLL_S):
                    if not self.process.is_alive():
                        raise EOFError
                    continue
                message = self.conn.recv()
                if isinstance(message, Finished):
                    return message.state, message.error
                deliver(service.recorder, row.id, message)
        except (EOFError, OSError):
            return self.lost(row)

    def lost(self, row) -> tuple[str, Optional[str]]:
        """The worker process died under a job (killed, out of memory, a crash in a library). The job
        goes back to the queue once and resumes from its finished frames (identical to an uninterrupted
        run, docs/determinism.md); a second death fails it, since the cause is likely the job itself."""
        self.process.join(1)
        code = self.process.exitcode
        if self.service.closing:
            return "queued", None
        self.service.set_models(None, [])
        deaths = self.deaths[row.id] = self.deaths.get(row.id, 0) + 1
        if deaths <= RETRIES_AFTER_DEATH:
            log.error("the worker process died running job %s (exit code %s); a new one resumes it", row.id, code)
            return "queued", None
        log.error("the worker process died running job %s again (exit code %s); it fails", row.id, code)
        return "failed", (f"the worker process died {deaths} times (exit code {code}), perhaps out of memory; "
                          f"finished frames are kept")

    def close(self) -> None:
        if self.process is None or self.process.pid is None:  # never started
            return
        try:
            self.conn.send(Exit())
        except (OSError, ValueError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
