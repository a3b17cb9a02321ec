"""The worker process: owns the device and the loaded models, and runs the jobs the daemon sends.

Generation here never shares an interpreter lock with the HTTP server, so clients polling the
daemon cannot slow it. The process lives and dies with the daemon: when the daemon's end of the
pipe closes, even because the daemon was killed with SIGKILL, it exits at once (a running job stops
at its next denoising step), so a restarted daemon never races a stray worker over the same job folder.

The pipe carries messages.py's typed messages: Job, Cancel, Choose and Exit from the daemon; Ready or
Fatal, then the running job's reports and its Finished, to it.
"""
from __future__ import annotations

import queue
import signal
import threading
from typing import Optional

from latentween.errors import LatentweenError
from latentween.server.live import JobControl
from latentween.server.messages import Cancel, Choose, Exit, Fatal, Finished, Job, ModelError, Ready, Sink
from latentween.server.runner import execute, load_model


def main(conn, runtime: dict, max_loaded: int, preload: Optional[str]) -> None:
    from latentween.runtime import configure_runtime

    configure_runtime()  # this process runs the engine: set up before anything loads torch
    from latentween.models import ModelManager
    from latentween.settings import RuntimeSettings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the daemon, which stops this cleanly
    lock = threading.Lock()

    def send(message) -> None:
        try:
            with lock:
                conn.send(message)
        except (OSError, ValueError):  # the daemon is gone: the listener has seen it too and stops us
            pass

    runtime = RuntimeSettings.model_validate(runtime)
    try:
        manager = ModelManager(runtime, max_loaded=max_loaded)
    except LatentweenError as exc:
        send(Fatal(str(exc)))
        return
    send(Ready(str(manager.device), str(manager.dtype).replace("torch.", "")))
    jobs: "queue.Queue[Optional[tuple[dict, JobControl]]]" = queue.Queue()  # None: exit
    listener = Listener(conn, jobs)
    listener.start()
    if preload:
        try:
            load_model(manager, preload, Sink(send, listener.current))
        except LatentweenError as exc:
            send(ModelError(str(exc)))
    while True:
        taken = jobs.get()
        if taken is None:
            return
        job, control = taken
        state, error = execute(job, manager, runtime, Sink(send, control))
        send(Finished(state, error))


class Listener(threading.Thread):
    """The daemon's messages, read as they come so that cancel and choices reach a running job. When
    the daemon says Exit or its end of the pipe closes, the running job is stopped and the main thread
    told to return: the process then ends as any does, its queue and pipe closed in order."""

    def __init__(self, conn, jobs: queue.Queue):
        super().__init__(name="latentween-worker-pipe", daemon=True)
        self.conn, self.jobs = conn, jobs
        self.current = JobControl("")

    def run(self) -> None:
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                message = Exit()  # the daemon is gone
            match message:
                case Job(payload):
                    self.current = JobControl(payload["id"])
                    self.jobs.put((payload, self.current))
                case Cancel():
                    self.current.cancel()
                case Choose(candidate):
                    self.current.choose(candidate)
                case Exit():
                    self.current.cancel()
                    self.jobs.put(None)
                    return
