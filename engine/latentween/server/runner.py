"""One job from its stored inputs to finished frames: the same code in the worker process and, with
`isolate` off, in a worker thread of the daemon itself.

The job folder is run_morph's output folder, so a job interrupted in any way (cancel aside) is
resumed by running it again: finished frames are kept and the rest come out identical. What the
run reports goes to a messages.Sink: to the service directly, or through a pipe or a Ray channel.
"""
from __future__ import annotations

import errno
import logging
from pathlib import Path
from typing import Callable, Optional

from latentween.errors import Cancelled, LatentweenError
from latentween.atomic import write_atomic
from latentween.images import decode_image, encode_png, to_integer
from latentween.outputs import OutputFolder
from latentween.progress import Progress
from latentween.server.jobfiles import candidate_path, input_path
from latentween.server.messages import Sink
from latentween.settings import MorphSettings

log = logging.getLogger("latentween.server")


def job_payload(job_dir: Path, row) -> dict:
    """What a runner needs of a job: plain data, so it can cross to the worker process."""
    return {"id": row.id, "settings": row.settings, "dir": str(job_dir),
            "sources": [entry["source"] for entry in row.inputs]}


def load_model(manager, spec: str, sink: Sink):
    sink.models(spec, manager.loaded())
    try:
        return manager.get(spec)
    finally:
        sink.models(None, manager.loaded())


def execute(job: dict, manager, runtime, sink: Sink, frames: Optional[Callable] = None) -> tuple[str, Optional[str]]:
    """Run a job to an end: ("done" | "cancelled" | "failed", error). Nothing escapes as an exception.
    `frames`: run_morph's frame source (the Ray executor's splits the job's chunks across its actors)."""
    try:
        run_job(job, manager, runtime, sink, frames=frames)
    except Cancelled:
        return "cancelled", None
    except LatentweenError as exc:
        return "failed", str(exc)
    except OSError as exc:
        return "failed", storage_error(exc, "writing frames")
    except Exception as exc:  # a bug must fail the job, not the daemon
        log.exception("job %s failed", job["id"])
        first = str(exc).splitlines()[0] if str(exc) else ""
        return "failed", f"internal error: {type(exc).__name__}: {first}"
    return "done", None


def run_job(job: dict, manager, runtime, sink: Sink, frames: Optional[Callable] = None) -> None:
    from latentween.morph import run_morph

    job_dir = Path(job["dir"])
    settings = MorphSettings.model_validate(job["settings"])
    keyframes = [decode_image(input_path(job_dir, i).read_bytes(), source)
                 for i, source in enumerate(job["sources"])]
    out = OutputFolder(job_dir / "output")
    out.path.mkdir(parents=True, exist_ok=True)
    if sink.should_stop():  # cancelled while being taken: no model load to pay for
        raise Cancelled()
    sink.progress(Progress(done=0, total=0, stage="loading model").event())
    load_model(manager, settings.model, sink)
    first = [True]

    def progress(event: dict) -> None:
        if first[0]:
            first[0] = False
            sink.frames(out.finished_frames())  # keyframes, and frames kept from an interrupted run
        sink.progress(event)

    def chooser(frame, images) -> tuple[int, list[float]]:
        """Manual choice (METHOD.md 5): show the candidates and wait for a client to pick one."""
        for k, image in enumerate(images):
            path = candidate_path(job_dir, frame.index, k)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, encode_png(to_integer(image, 8)))
        sink.awaiting(frame.index, len(images))
        return sink.wait_for_choice(), []

    if sink.should_stop():
        raise Cancelled()
    run_morph(keyframes, out.path, settings, runtime, manager=manager, progress=progress, should_cancel=sink.should_stop,
              on_frame=lambda index, path: sink.frames([index]), frames=frames,
              **({"chooser": chooser} if settings.choose == "manual" else {}))
    sink.frames(out.finished_frames())


def storage_error(exc: OSError, what: str) -> str:
    """An OSError as one line: a full disk says so, anything else names the file."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full while {what}: {exc.strerror}"
    where = f" ({exc.filename})" if exc.filename else ""
    return f"file error while {what}: {exc.strerror or exc}{where}"
