"""One job from its stored inputs to finished frames: the same code in the worker process and, with
`isolate` off, in a worker thread of the daemon itself.

The job folder is run_morph's output folder, so a job interrupted in any way (cancel aside) is
resumed by running it again: finished frames are kept and the rest come out identical. What the
run reports goes to a sink: the service directly, or a pipe to the daemon.
"""
from __future__ import annotations

import errno
import json
import logging
from pathlib import Path
from typing import Callable, Optional, Protocol

from latentween.errors import Cancelled, LatentweenError
from latentween.atomic import write_atomic
from latentween.images import decode_image, encode_png, to_integer
from latentween.morph import FRAME_PATTERN
from latentween.settings import MorphSettings

log = logging.getLogger("latentween.server")


class Sink(Protocol):
    """Where a running job reports, and how it learns to stop or which candidate to keep."""

    def progress(self, event: dict) -> None: ...
    def frames(self, indices: list[int]) -> None: ...
    def awaiting(self, frame: int, candidates: int) -> None: ...
    def wait_for_choice(self) -> int: ...
    def should_stop(self) -> bool: ...
    def models(self, loading: Optional[str], loaded: list[str]) -> None: ...


def job_payload(job_dir: Path, row) -> dict:
    """What a runner needs of a job: plain data, so it can cross to the worker process."""
    return {"id": row.id, "settings": row.settings, "dir": str(job_dir),
            "sources": [entry["source"] for entry in row.inputs]}


def input_path(job_dir: Path, index: int) -> Path:
    return job_dir / "inputs" / f"keyframe_{index}"


def candidate_path(job_dir: Path, frame: int, candidate: int) -> Path:
    return job_dir / "candidates" / f"frame_{frame:05d}" / f"candidate_{candidate:02d}.png"


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
    out = job_dir / "output"
    out.mkdir(parents=True, exist_ok=True)
    if sink.should_stop():  # cancelled while being taken: no model load to pay for
        raise Cancelled()
    sink.progress({"done": 0, "total": 0, "stage": "loading model"})
    load_model(manager, settings.model, sink)
    first = [True]

    def progress(event: dict) -> None:
        if first[0]:
            first[0] = False
            sink.frames(written_frames(out))  # keyframes, and frames kept from an interrupted run
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
    run_morph(keyframes, out, settings, runtime, manager=manager, progress=progress, should_cancel=sink.should_stop,
              on_frame=lambda index, path: sink.frames([index]), frames=frames,
              **({"chooser": chooser} if settings.choose == "manual" else {}))
    sink.frames(written_frames(out))


def written_frames(out: Path) -> list[int]:
    """Frames of this run that are final: keyframes, and frames kept from an interrupted run (those
    are marked `resumed`; their `file` may be unset when the kill came before the manifest write)."""
    try:
        manifest = json.loads((out / "manifest.json").read_text())
    except (OSError, ValueError):
        return []
    return [f["index"] for f in manifest.get("frames", [])
            if (f.get("file") or f.get("resumed")) and (out / FRAME_PATTERN.format(f["index"])).is_file()]


def storage_error(exc: OSError, what: str) -> str:
    """An OSError as one line: a full disk says so, anything else names the file."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full while {what}: {exc.strerror}"
    where = f" ({exc.filename})" if exc.filename else ""
    return f"file error while {what}: {exc.strerror or exc}{where}"
