"""Re-roll (issue 20): a new job that is a finished job with some frames' takes raised by one.

The new job gets the old one's keyframes, settings and output folder (hard links where the file
system allows: every file is replaced by a rename, never written in place, so the old job's files
stay as they are). The engine then keeps every frame whose take did not change and makes the
re-rolled ones again from their parents' take-0 latents (latentween.takes).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from latentween.outputs import OutputFolder
from latentween.server import schemas
from latentween.server.errors import Conflict, Unprocessable
from latentween.server.inputs import KeyframeInput
from latentween.settings import MorphSettings


def reroll(service, job_id: str, frames: Sequence[int]) -> schemas.Job:
    """Queue the re-roll of `frames` of job `job_id`; returns the new job."""
    row = service.row(job_id)  # NotFound for an unknown id
    if row.state != "done":
        raise Conflict(f"job {job_id} is {row.state}; only a finished job can be re-rolled")
    last = row.frame_count - 1
    outside = sorted({f for f in frames if not 0 < f < last})
    if outside:
        raise Unprocessable(f"frames: {outside[0]} is not a generated frame of job {job_id} (1..{last - 1})")
    try:
        old = MorphSettings.model_validate(row.settings)
    except ValueError:
        raise Conflict(f"job {job_id} was made by another version whose settings this one cannot read") from None
    takes = {**old.takes, **{f: old.takes.get(f, 0) + 1 for f in frames}}
    try:
        settings = MorphSettings.model_validate({**row.settings, "takes": takes})
    except ValidationError as exc:  # e.g. a scheme that takes cannot change
        raise Unprocessable(f"job {job_id} cannot be re-rolled: {exc.errors()[0]['msg'].removeprefix('Value error, ')}") from None

    def load() -> list[KeyframeInput]:
        return [KeyframeInput(service.input_path(job_id, i).read_bytes(), info["source"], info["sha256"],
                              info["width"], info["height"]) for i, info in enumerate(row.inputs)]

    def prepare(job_dir: Path) -> None:
        copy_output(service.output_dir(job_id), job_dir / "output", set(frames))

    return service.submit(settings, load, prepare)


def copy_output(source: Path, target: Path, rerolled: set[int]) -> None:
    """The old job's frames, latents and manifest, linked (else copied) into the new job's folder;
    the manifest no longer names a file for the re-rolled frames, so none is reported before it is made."""
    old, new = OutputFolder(source), OutputFolder(target)
    for path in [old.manifest_path, *old.frame_files(), *sorted(old.state.glob("*"))]:
        if not path.is_file():
            continue
        copy = target / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, copy)
        except OSError:
            shutil.copy2(path, copy)
    manifest = new.read_manifest()  # as written: the engine resumes from every field of it
    if manifest is None:
        return  # no manifest: the engine makes every frame, which is still right
    for entry in manifest.get("frames", []):
        if entry.get("index") in rerolled:
            entry.update(file=None, take=None, resumed=False)
    manifest["status"] = "running"
    new.write_manifest(manifest)
