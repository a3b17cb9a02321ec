"""The "ray" executor (`latentween serve --executor ray`, docs/farm.md): jobs run on FarmActors of a Ray
cluster, each owned by one actor, as many at once as there are actors; with two or more actors a
job's chunks run across all of them (farm/chunks.py), as a render's transition's do.

Each actor has a relay thread here that does what the local worker does for its process: take the
next queued job, send it, relay the reports (progress, frames, a manual choice's candidates) to the
service, pass on cancel and choices, and record the end. What Ray does itself is not redone here: a
killed actor is restarted and its job's task re-run by Ray (max_restarts, max_task_retries), the job
resuming from its folder with identical frames; past the retries the task fails with Ray's error,
which becomes the job's message. Cancel is ray.cancel on the job's task.

Without --shared-dir the actor works in a scratch folder of its node and the job's files travel:
keyframes (and frames an earlier run finished) in the task's arguments, frames and candidates back in
the reports, written into the job's folder here before the service hears of them.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Optional

from latentween.errors import LatentweenError
from latentween.farm import connect, default_actor_count, first_line
from latentween.farm.actors import start_actors
from latentween.farm.chunks import ChunkSource
from latentween.farm.files import Shipper, receive, scratch_dir
from latentween.outputs import OutputFolder
from latentween.server.jobfiles import input_path
from latentween.server.messages import Await, Frames, Sink, deliver
from latentween.server.runner import execute, job_payload
from latentween.server.worker import Resilient

log = logging.getLogger("latentween.server")
POLL_S = 0.05
POLL_TIMEOUT_S = 5.0  # a poll of an actor being restarted waits for it at most this long


class RayExecutor:
    executor = "ray"

    def __init__(self, service):
        self.service = service
        self.relays: list[RayRelay] = []
        self.ray = None

    def start(self) -> None:
        config = self.service.config
        try:
            self.ray = connect(config.ray_address)
        except LatentweenError:  # Ray is not installed: that line as it is
            raise
        except Exception as exc:  # Ray's ConnectionError and friends: one line at start
            raise LatentweenError(f"cannot join the Ray cluster at {config.ray_address or 'local'}: "
                                  f"{first_line(exc)}") from exc
        count = config.ray_actors or default_actor_count(self.ray)
        gpus = self.ray.cluster_resources().get("GPU", 0) > 0
        prefix = f"daemon-{socket.gethostname()}-{os.getpid()}"
        names = [f"{prefix}-actor-{i}" for i in range(count)]
        handles = start_actors(names, config.runtime.model_dump(), restarts=config.ray_restarts,
                               max_loaded=config.max_loaded, threads=_threads(), gpus=gpus)
        self.relays = [RayRelay(self, name, handle) for name, handle in zip(names, handles)]
        for relay in self.relays:
            relay.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for relay in self.relays:
            relay.join(max(0.0, deadline - time.monotonic()))
        if self.ray is not None and self.ray.is_initialized():
            for relay in self.relays:
                try:
                    self.ray.kill(relay.actor)
                except Exception:  # already gone
                    pass
            self.ray.shutdown()

    def is_alive(self) -> bool:
        return any(relay.is_alive() for relay in self.relays)

    def stalled(self) -> bool:
        return bool(self.relays) and all(relay.stalled() for relay in self.relays)

    def silent_s(self) -> float:
        return min((relay.silent_s() for relay in self.relays), default=0.0)

    def actors(self) -> list[dict]:
        return [relay.describe() for relay in self.relays]


def _threads() -> Optional[int]:
    """The torch threads of the local worker process, which inherits the daemon's OMP_NUM_THREADS: an
    actor computing with the same count makes the same bytes (docs/determinism.md). Unset: Ray's own
    setting for the actor (its CPU share)."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


class RayRelay(Resilient, threading.Thread):
    """The daemon's side of one actor."""

    def __init__(self, executor: RayExecutor, name: str, actor):
        super().__init__(name=f"latentween-ray-relay-{name}", daemon=True)
        self.executor, self.service, self.ray = executor, executor.service, executor.ray
        self.actor_name, self.actor = name, actor
        self.init_health()
        self.state, self.pid, self.node, self.job = "starting", None, None, None
        self.fatal: Optional[str] = None

    def describe(self) -> dict:
        return {"name": self.actor_name, "pid": self.pid, "node": self.node, "state": self.state, "job": self.job}

    def run(self) -> None:
        self.busy = True  # the actor starts (and loads the model) before it answers: not a stall
        self.hello()
        self.busy = False
        self.loop(self.step)

    def hello(self) -> None:
        ray, service = self.ray, self.service
        try:
            info = ray.get(self.actor.info.remote())
        except ray.exceptions.RayError as exc:
            self.fatal, self.state = f"the Ray actor {self.actor_name} did not start: {first_line(exc)}", "dead"
            service.set_model_error(self.fatal)
            return
        self.state, self.pid, self.node = "alive", info["pid"], info["node"]
        service.device, service.dtype = info["device"], info["dtype"]
        if service.config.preload:
            service.set_models(service.config.model, info["loaded"])
            try:
                error = ray.get(self.actor.preload.remote(service.config.model))
                info = ray.get(self.actor.info.remote())
            except ray.exceptions.RayError as exc:
                error = f"the Ray actor {self.actor_name} failed: {first_line(exc)}"
            service.set_models(None, info["loaded"])
            if error:
                service.set_model_error(error)

    def step(self) -> None:
        taken = self.service.take_next(timeout=0.1)
        if taken is not None:
            self.run_and_finish(*taken, self.relay)

    def relay(self, row, control) -> tuple[str, Optional[str]]:
        if self.fatal:
            return "failed", self.fatal
        ray, config = self.ray, self.service.config
        job_dir = self.service.job_dir(row.id)
        payload = {**job_payload(job_dir, row), "shared": config.shared_dir is not None}
        if len(self.executor.relays) > 1:  # the job's chunks run across all of the daemon's actors
            payload["pool"] = [relay.actor for relay in self.executor.relays]
        if not payload["shared"]:
            payload["inputs"] = [input_path(job_dir, i).read_bytes() for i in range(len(row.inputs))]
            payload["files"] = _finished_files(job_dir)
        ref = self.actor.run.options(name=f"job {row.id}").remote("job", row.id, payload)
        self.job, cancelled = row.id, False
        try:
            while True:
                self.beat = time.monotonic()
                if control.should_stop() and not cancelled:
                    ray.cancel(ref)
                    cancelled = True
                choice = control.take_choice()
                if choice is not None:
                    self.actor.choose.remote(row.id, choice)
                ready, _ = ray.wait([ref], timeout=POLL_S)
                if ready:
                    return self.outcome(row, control, ref)
                self.poll(row, control)
        finally:
            self.job = None

    def outcome(self, row, control, ref) -> tuple[str, Optional[str]]:
        ray = self.ray
        try:
            out = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            return "cancelled", None
        except ray.exceptions.RayActorError as exc:  # died past the restarts Ray was allowed
            self.state = "dead"
            return "failed", f"the Ray actor {self.actor_name} failed: {first_line(exc)}"
        except ray.exceptions.RayError as exc:
            return "failed", f"internal error on the Ray actor {self.actor_name}: {first_line(exc)}"
        self.dispatch(row, control, out["events"])
        state, error = out["result"]
        return state, error

    def poll(self, row, control) -> None:
        ray = self.ray
        try:
            polled = ray.get(self.actor.poll.remote(row.id), timeout=POLL_TIMEOUT_S)
        except (ray.exceptions.RayError, TimeoutError):
            self.state = "restarting"  # or busy past the timeout; Ray re-runs the job's task when it is back
            return
        self.state, self.pid = "alive", polled["pid"]
        self.dispatch(row, control, polled["events"])

    def dispatch(self, row, control, events: list) -> None:
        """The actor's reports (see `channel_send`): their files first, then the message to the service."""
        job_dir = self.service.job_dir(row.id)
        for message in events:
            if isinstance(message, (Frames, Await)):
                if control.deleted:
                    continue
                receive(job_dir, message.files)
            deliver(self.service.recorder, row.id, message)


def _finished_files(job_dir: Path) -> dict[str, bytes]:
    """The job's output so far (a job re-queued by a restart): the actor resumes from it."""
    out = {}
    output = job_dir / "output"
    if output.is_dir():
        for path in output.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                out[path.relative_to(job_dir).as_posix()] = path.read_bytes()
    return out


# -- on the actor ---------------------------------------------------------------------------------

def channel_send(channel):
    """A Sink's `send` on an actor: messages go into the channel the relay polls."""
    return channel.push


def run_job(actor, channel, payload: dict) -> tuple[str, Optional[str]]:
    """FarmActor work "job": one daemon job through runner.execute, as the local worker runs it."""
    shared = payload["shared"]
    job_dir = Path(payload["dir"]) if shared else scratch_dir(f"job-{payload['id']}")
    shipper = None
    if not shared:
        for index, data in enumerate(payload["inputs"]):
            receive(job_dir, {input_path(Path(), index).as_posix(): data})
        receive(job_dir, payload.get("files") or {})
        shipper = Shipper(job_dir, received=payload.get("files") or {}, exclude=("inputs/",))
    send = channel_send(channel)
    sink = Sink(send, channel, shipper.files if shipper is not None else None)
    frames = ChunkSource(payload["pool"], f"job {payload['id']}") if payload.get("pool") else None
    state, error = execute({**payload, "dir": str(job_dir)}, actor.manager, actor.runtime, sink, frames=frames)
    if shipper is not None:
        send(Frames(OutputFolder(job_dir / "output").finished_frames(), shipper.rest()))
        shutil.rmtree(job_dir, ignore_errors=True)
    return state, error
