"""What a running job reports and what it is told, as typed messages: the same objects go to the
service directly (the in-process worker), through the worker process's pipe and through a Ray actor's
channel (they pickle), and one `Sink` makes them whichever way they travel.

To the worker process: Job, Cancel, Choose, Exit. From it: Ready or Fatal at start, then Models,
ModelError, Progressed, Frames, Await and, per job, Finished.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from latentween.progress import Progress
from latentween.reports import Files, Frames, Progressed  # noqa: F401 (messages of both layers)



@dataclass(frozen=True)
class Job:
    payload: dict  # runner.job_payload


@dataclass(frozen=True)
class Cancel:
    pass


@dataclass(frozen=True)
class Choose:
    candidate: int


@dataclass(frozen=True)
class Exit:
    pass


@dataclass(frozen=True)
class Ready:
    device: str
    dtype: str


@dataclass(frozen=True)
class Fatal:
    error: str


@dataclass(frozen=True)
class Models:
    loading: Optional[str]
    loaded: list[str]


@dataclass(frozen=True)
class ModelError:
    error: str


@dataclass(frozen=True)
class Await:
    frame: int
    candidates: int
    files: Files = field(default_factory=dict)


@dataclass(frozen=True)
class Finished:
    state: str
    error: Optional[str] = None


class Sink:
    """runner's sink: a running job's reports as messages to `send`; whether to stop and which candidate
    to keep come from `control` (a JobControl, or a Ray actor's channel). `ship(relpaths)`: the files
    that must travel with a report, when the job's folder is not the daemon's."""

    def __init__(self, send: Callable[[object], None], control, ship: Optional[Callable[[list[str]], Files]] = None):
        self.send, self.control, self.ship = send, control, ship

    def progress(self, event: dict) -> None:
        self.send(Progressed(Progress.of(event)))

    def frames(self, indices: list[int]) -> None:
        files = {}
        if self.ship:
            from latentween.farm.files import frame_files

            files = self.ship(frame_files(indices, "output/"))
        self.send(Frames(list(indices), files))

    def awaiting(self, frame: int, candidates: int) -> None:
        from latentween.server.jobfiles import candidate_path

        files = {}
        if self.ship:
            files = self.ship([candidate_path(Path(), frame, k).as_posix() for k in range(candidates)])
        self.send(Await(frame, candidates, files))

    def models(self, loading: Optional[str], loaded: list[str]) -> None:
        self.send(Models(loading, list(loaded)))

    def wait_for_choice(self) -> int:
        return self.control.wait_for_choice()

    def should_stop(self) -> bool:
        return self.control.should_stop()


def deliver(recorder, job_id: str, message) -> None:
    """A job's report to the recorder (recorder.Recorder) that keeps it."""
    match message:
        case Progressed(progress):
            recorder.record_progress(job_id, progress)
        case Frames(indices):
            recorder.record_frames(job_id, indices)
        case Await(frame, candidates):
            recorder.await_choice(job_id, frame, candidates)
        case Models(loading, loaded):
            recorder.set_models(loading, loaded)
        case ModelError(error):
            recorder.set_model_error(error)
        case _:
            raise TypeError(f"not a job's report: {message!r}")
