"""GET /v1/jobs/{id}/video: a done job's frames encoded once per (format, frame rate) and kept."""
from __future__ import annotations

import os
from pathlib import Path

from latentween.errors import LatentweenError
from latentween.server.errors import Conflict, InsufficientStorage, NotImplementedHere, Unprocessable
from latentween.server.runner import storage_error


def video_file(service, job_id: str, fmt: str, fps: str) -> Path:
    row = service.row(job_id)
    if row.state != "done":
        raise Conflict(f"job {job_id} is {row.state}; its video can be made once it is done")
    try:
        from latentween.media.video import encode_video
        from latentween.settings import parse_fps
    except ImportError as exc:
        raise NotImplementedHere("video output needs latentween.media, which this installation lacks; "
                                 "download the frames instead") from exc
    try:
        rate = parse_fps(fps)
    except ValueError as exc:
        raise Unprocessable(f"fps: {exc}") from None
    # one file per rate, however it is written: 24, 24.0, 48/2 and 24/1 are one video
    name = f"{rate.numerator}" if rate.denominator == 1 else f"{rate.numerator}_{rate.denominator}"
    path = service.job_dir(job_id) / "video" / f"fps{name}.{fmt}"
    with service.video_lock:
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            output = service.files.output(job_id)
            frames = [output.frame_path(i) for i in range(row.frame_count)]
            partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # a failed encode is never served
            try:
                encode_video(frames, partial, fps=rate)
                os.replace(partial, path)
            except LatentweenError as exc:
                raise Unprocessable(str(exc)) from exc
            except OSError as exc:
                raise InsufficientStorage(storage_error(exc, "encoding the video")) from exc
            finally:
                partial.unlink(missing_ok=True)
    return path
