"""The worker process: owns the device and the loaded models, and runs the jobs the daemon sends.

Generation here never shares an interpreter lock with the HTTP server, so clients polling the
daemon cannot slow it. The process lives and dies with the daemon: when the daemon's end of the
pipe closes, even because the daemon was killed with SIGKILL, it exits at once, so a restarted
daemon never races a stray worker over the same job folder.

Messages (tuples) from the daemon: ("job", payload), ("cancel",), ("choose", k), ("exit",).
To the daemon: ("ready", device, dtype), ("fatal", error), ("models", loading, loaded),
("model_error", error), ("progress", event), ("frames", indices), ("await", frame, count),
("finished", state, error).
"""
from __future__ import annotations

import os
import queue
import signal
import threading
from typing import Optional

from latentween.errors import LatentweenError
from latentween.server.live import JobControl
from latentween.server.runner import execute, load_model


class PipeSink:
    """A running job's reports, sent to the daemon; stop and choice come from the daemon's messages."""

    def __init__(self, send, control: JobControl):
        self.send = send
        self.control = control

    def progress(self, event: dict) -> None:
        self.send("progress", event)

    def frames(self, indices: list[int]) -> None:
        self.send("frames", indices)

    def awaiting(self, frame: int, candidates: int) -> None:
        self.send("await", frame, candidates)

    def wait_for_choice(self) -> int:
        return self.control.wait_for_choice()

    def should_stop(self) -> bool:
        return self.control.should_stop()

    def models(self, loading: Optional[str], loaded: list[str]) -> None:
        self.send("models", loading, loaded)


def main(conn, runtime: dict, max_loaded: int, preload: Optional[str]) -> None:
    from latentween.models import ModelManager
    from latentween.settings import RuntimeSettings

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the daemon, which stops this cleanly
    lock = threading.Lock()

    def send(*message) -> None:
        with lock:
            conn.send(message)

    runtime = RuntimeSettings.model_validate(runtime)
    try:
        manager = ModelManager(runtime, max_loaded=max_loaded)
    except LatentweenError as exc:
        send("fatal", str(exc))
        return
    send("ready", str(manager.device), str(manager.dtype).replace("torch.", ""))
    jobs: "queue.Queue[dict]" = queue.Queue()
    current = [JobControl("")]

    def listen() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the daemon is gone
            if message[0] == "job":
                current[0] = JobControl(message[1]["id"])
                jobs.put(message[1])
            elif message[0] == "cancel":
                current[0].cancel()
            elif message[0] == "choose":
                current[0].choose(message[1])
            elif message[0] == "exit":
                os._exit(0)

    threading.Thread(target=listen, name="latentween-worker-pipe", daemon=True).start()
    if preload:
        try:
            load_model(manager, preload, PipeSink(send, current[0]))
        except LatentweenError as exc:
            send("model_error", str(exc))
    while True:
        job = jobs.get()
        state, error = execute(job, manager, runtime, PipeSink(send, current[0]))
        send("finished", state, error)
