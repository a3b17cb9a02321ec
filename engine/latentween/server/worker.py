"""One worker per device, taking queued jobs in order: by default it relays each job to a worker
process (child.py), so serving requests never competes with generation for the interpreter lock;
with `isolate` off it runs jobs in a thread of the daemon (simpler to debug and to test with fakes).
Either way every outcome ends up on the job as one line, and the worker only stops with the daemon.
"""
from __future__ import annotations

import logging
import multiprocessing
import threading
from typing import Optional

from latentween.errors import LatentweenError
from latentween.server import child
from latentween.server.runner import execute, job_payload, load_model

log = logging.getLogger("latentween.server")
POLL_S = 0.05


class ServiceSink:
    """A running job's reports, straight to the service (the in-process worker)."""

    def __init__(self, service, job_id: str, control):
        self.service, self.job_id, self.control = service, job_id, control

    def progress(self, event: dict) -> None:
        self.service.record_progress(self.job_id, event)

    def frames(self, indices: list[int]) -> None:
        self.service.record_frames(self.job_id, indices)

    def awaiting(self, frame: int, candidates: int) -> None:
        self.service.await_choice(self.job_id, frame, candidates)

    def wait_for_choice(self) -> int:
        return self.control.wait_for_choice()

    def should_stop(self) -> bool:
        return self.control.should_stop()

    def models(self, loading: Optional[str], loaded: list[str]) -> None:
        self.service.set_models(loading, loaded)


def end_state(state: str, control) -> str:
    """A job stopped because the daemon stops goes back to the queue, to resume at the next start."""
    return "queued" if state == "cancelled" and control.shutdown else state


class ThreadWorker(threading.Thread):
    def __init__(self, service):
        from latentween.models import ModelManager

        super().__init__(name="latentween-worker", daemon=True)
        self.service = service
        config = service.config
        self.manager = ModelManager(config.runtime, max_loaded=config.max_loaded)
        service.device, service.dtype = str(self.manager.device), str(self.manager.dtype).replace("torch.", "")

    def run(self) -> None:
        service = self.service
        if service.config.preload:
            try:
                load_model(self.manager, service.config.model, ServiceSink(service, "", None))
            except LatentweenError as exc:
                service.set_model_error(str(exc))
        while not service.closing:
            taken = service.take_next()
            if taken is not None:
                row, control = taken
                sink = ServiceSink(service, row.id, control)
                state, error = execute(job_payload(service.job_dir(row.id), row), self.manager,
                                       service.config.runtime, sink)
                service.finish(row.id, end_state(state, control), error)


class ProcessWorker(threading.Thread):
    """The daemon's side of the worker process: sends it jobs, relays its reports to the service."""

    def __init__(self, service):
        super().__init__(name="latentween-worker-relay", daemon=True)
        self.service = service
        self.process = None
        self.conn = None
        self.fatal: Optional[str] = None

    def run(self) -> None:
        service = self.service
        self.spawn(preload=service.config.model if service.config.preload else None)
        while not service.closing:
            taken = service.take_next(timeout=0.1)
            if taken is not None:
                self.relay(*taken)
            else:
                self.drain()
        self.close()

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
            message = ("fatal", f"the worker process exited at start (exit code {self.process.exitcode})")
        if message[0] == "fatal":
            self.fatal = message[1]
            self.service.set_model_error(message[1])
            log.error("worker process: %s", message[1])
        else:
            self.fatal = None
            self.service.device, self.service.dtype = message[1], message[2]

    def drain(self) -> None:
        """Reports that come between jobs (the start-up model load)."""
        try:
            while self.conn.poll(0):
                self.dispatch("", self.conn.recv())
        except (EOFError, OSError):
            pass

    def relay(self, row, control) -> None:
        service = self.service
        if self.process is None or not self.process.is_alive():
            self.spawn(preload=None)
        if self.fatal:
            service.finish(row.id, "failed", self.fatal)
            return
        self.conn.send(("job", job_payload(service.job_dir(row.id), row)))
        cancel_sent = False
        while True:
            if control.should_stop() and not cancel_sent:
                self.conn.send(("cancel",))
                cancel_sent = True
            choice = control.take_choice()
            if choice is not None:
                self.conn.send(("choose", choice))
            try:
                if not self.conn.poll(POLL_S):
                    if not self.process.is_alive():
                        raise EOFError
                    continue
                message = self.conn.recv()
            except (EOFError, OSError):
                self.lost(row, control)
                return
            if message[0] == "finished":
                service.finish(row.id, end_state(message[1], control), message[2])
                return
            self.dispatch(row.id, message)

    def dispatch(self, job_id: str, message: tuple) -> None:
        kind, service = message[0], self.service
        if kind == "progress":
            service.record_progress(job_id, message[1])
        elif kind == "frames":
            service.record_frames(job_id, message[1])
        elif kind == "await":
            service.await_choice(job_id, message[1], message[2])
        elif kind == "models":
            service.set_models(message[1], message[2])
        elif kind == "model_error":
            service.set_model_error(message[1])

    def lost(self, row, control) -> None:
        """The worker process died under a job (out of memory, a crash in a library)."""
        self.process.join(1)
        code = self.process.exitcode
        if self.service.closing:
            self.service.finish(row.id, "queued")
            return
        log.error("the worker process died running job %s (exit code %s); starting a new one", row.id, code)
        self.service.finish(row.id, end_state("failed", control),
                            f"the worker process died (exit code {code}), perhaps out of memory; "
                            f"finished frames are kept")
        self.service.set_models(None, [])
        self.spawn(preload=None)

    def close(self) -> None:
        if self.process is None:
            return
        try:
            self.conn.send(("exit",))
        except (OSError, ValueError):
            pass
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
