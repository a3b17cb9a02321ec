"""Re-roll of one frame or a range of a morph strip, replacing the previous take in place (issue 20).

The strip keeps its daemon job's id (sequencer.record); the daemon makes a new job from it with the
named frames' takes raised by one and every other frame kept (POST /v1/jobs/{id}/reroll). When it
is done, the re-rolled frames' files in the strip's folder are replaced and the strip reloads: no new
strip, no new channel. Frames that were made from a re-rolled frame (its children in the bisection)
stay as they were, unless they are in the range too.
"""
from __future__ import annotations

import re
import time
from typing import Optional

from . import compat, job, preferences, sequencer, task, timeline
from .timeline import MorphError

FRAME_FILE = re.compile(r"^frame_(\d+)\.png$")


def target(context):
    """The morph strip to re-roll: the active strip, if latentween made it."""
    ed = compat.editor(context)
    strip = getattr(ed, "active_strip", None) if ed is not None else None
    if strip is None or not strip.get("latentween_job"):
        return None
    return strip


def job_frames(strip, first: int, last: int) -> list[int]:
    """The daemon's frame indices the strip shows at timeline frames first..last, keyframes left out."""
    settings = sequencer.recorded_settings(strip)
    count = int(settings.get("frames") or 0) if not settings.get("fractions") else len(settings["fractions"])
    found = set()
    for at in range(max(first, int(strip.frame_final_start)), min(last, int(strip.frame_final_end) - 1) + 1):
        element = strip.strip_elem_from_frame(at)
        match = FRAME_FILE.match(element.filename) if element is not None else None
        if match and 0 < int(match[1]) < count - 1:
            found.add(int(match[1]))
    return sorted(found)


def start(context, first: int, last: int) -> "RerollTask":
    strip = target(context)
    if strip is None:
        raise MorphError("make a latentween strip the active strip to re-roll its frames")
    frames = job_frames(strip, first, last)
    if not frames:
        shown = f"frame {first}" if first == last else f"frames {first}-{last}"
        raise MorphError(f"'{strip.name}' shows no generated frame at {shown} (keyframes are not re-rolled)")
    prefs = preferences.get(context)
    client = job.connect(prefs.url, prefs.token, compat.online_access())
    run = RerollTask(compat.scene(context).name, strip, client, frames)
    run.submit()
    task.ACTIVE.append(run)  # the panel shows it with a Cancel button, as a morph
    return run


class RerollJob(job.MorphJob):
    """A re-roll job: its frames are written over the strip's files only once all are made, so a
    re-roll that fails or is cancelled leaves the previous take whole."""

    def submit(self, base_job: str) -> None:  # noqa: D102 (another signature than a morph's)
        try:
            self.job = self.client.reroll(base_job, list(self.keep))
        except job.daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        self.id = self.job["id"]

    def poll(self) -> bool:
        try:
            self.job = self.client.job(self.id)
            self._silent_since = None
        except job.daemon.Unreachable as exc:  # a daemon busy for a moment is not a failed re-roll
            self._silent_since = self._silent_since or time.monotonic()
            if time.monotonic() - self._silent_since > job.PATIENCE:
                raise MorphError(str(exc)) from None
            return False
        except job.daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        if self.job["state"] in ("failed", "cancelled"):
            raise MorphError(str(job.daemon.JobFailed(self.job)))
        if self.job["state"] != "done" or self.fetched >= set(self.keep):
            return False
        try:
            made = {i: self.client.frame(self.id, i) for i in self.keep}
        except job.daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        for index, data in made.items():
            self._save(self.folder / job.FRAME_NAME.format(index), data)
            self.fetched.add(index)
        return True

    def discard(self) -> None:
        pass  # the folder is the strip's, with the previous take in it


class RerollTask(task.DaemonTask):
    """What the modal operator ticks, like task.MorphTask; ends with the strip's files replaced."""

    _await_choice = task.MorphTask._await_choice
    choose = task.MorphTask.choose
    wait = task.MorphTask.wait

    def __init__(self, scene_name: str, strip, client, frames: list[int]):
        self.key = str(next(task._keys))
        self.scene_name, self.strip_name, self.name = scene_name, strip.name, strip.name
        self.base = strip["latentween_job"]
        self.client = client
        self.frames = frames
        self.job = RerollJob(client, frames)
        self.job.folder = sequencer.strip_folder(strip)
        self.choice: Optional[tuple[int, list]] = None
        self.choice_icons: list[int] = []
        self.message, self.fraction, self.finished = "submitting", 0.0, False

    def submit(self) -> None:
        self.job.submit(self.base)
        self.message = "queued"

    def tick(self, context=None) -> bool:
        try:
            replaced = self.job.poll()
            self.message, self.fraction = timeline.job_status(self.job.job)
            if self.job.job["state"] == "awaiting-choice":
                self._await_choice()
                return False
            if not replaced:
                return False
            strip = sequencer.find_strip(self.scene_name, self.strip_name)
            if strip is None:
                raise MorphError(f"the strip '{self.strip_name}' is gone; its re-rolled frames are in {self.job.folder}")
            sequencer.record(strip, self.job.id, self.job.job["settings"])
            sequencer.refresh(strip)
            self.message = describe(self.frames)
            self._end()
            return True
        except MorphError:
            self._stop_job()
            self._end()
            raise

    def cancel(self) -> None:
        try:
            self.job.cancel()
        finally:
            self._end()
            self.message = "cancelled"

    def forget(self) -> None:
        self._stop_job()
        self.message = "cancelled: another file was opened"
        self._end()


def describe(frames: list[int]) -> str:
    return f"re-rolled frame {frames[0]}" if len(frames) == 1 else f"re-rolled {len(frames)} frames"
