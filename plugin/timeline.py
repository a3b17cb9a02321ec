"""Where in-between frames go on the timeline and which frames are the keyframes.

Plain Python, no `bpy`: the add-on reads strips into `Span`s, these functions decide, and the tests
check the arithmetic without Blender. Frame numbers are timeline frames; a span's `end` is one past
its last visible frame, as Blender's `frame_final_end`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Optional

MAX_CHANNEL = 128


class MorphError(Exception):
    """Anything that stops a morph; the message is one line for the editor."""


@dataclass(frozen=True)
class Span:
    name: str
    channel: int
    start: int
    end: int


@dataclass(frozen=True)
class Placement:
    """What to ask the daemon for and where its frames go."""

    mode: str       # "gap" or "cut"
    first_at: int   # timeline frame showing the first keyframe (in strip a)
    last_at: int    # timeline frame showing the last keyframe (in strip b)
    frames: int     # frames the job makes, both keyframes included
    keep: range     # indices of the job's frames that go on the timeline
    channel: int
    start: int      # timeline frame of the new strip's first frame

    @property
    def length(self) -> int:
        return len(self.keep)


def in_order(a: Span, b: Span) -> tuple[Span, Span]:
    """The strip that starts first is the first keyframe's."""
    return (a, b) if (a.start, a.channel) <= (b.start, b.channel) else (b, a)


def fill_gap(a: Span, b: Span, occupied: Iterable[Span]) -> Placement:
    """Exactly as many frames as the gap between a's last frame and b's first.

    The job also makes the two keyframes (a's last frame and b's first); they are already on the
    timeline, so only the frames between them are kept."""
    a, b = in_order(a, b)
    gap = b.start - a.end
    if gap <= 0:
        raise MorphError(f"'{a.name}' and '{b.name}' leave no gap to fill; use Transition for a cut")
    channel = free_channel(occupied, a.end, b.start, min(a.channel, b.channel))
    return Placement("gap", a.end - 1, b.start, gap + 2, range(1, gap + 1), channel, a.end)


def transition(a: Span, b: Span, frames: int, occupied: Iterable[Span]) -> Placement:
    """`frames` frames centred on the cut, on a free channel above both strips.

    Its first frame is a's frame at that position and its last is b's, so the transition starts
    and ends on what the editor already sees there."""
    a, b = in_order(a, b)
    if frames < 2:
        raise MorphError(f"a transition needs at least 2 frames, got {frames}")
    if b.start > a.end:
        raise MorphError(f"'{a.name}' and '{b.name}' are {b.start - a.end} frames apart, not on a cut; "
                         f"use Fill the gap")
    cut = b.start
    start = cut - frames // 2
    end = start + frames
    if start < a.start:
        raise MorphError(f"'{a.name}' shows {cut - a.start} frames before the cut; "
                         f"a {frames}-frame transition needs {frames // 2}")
    if end > b.end:
        raise MorphError(f"'{b.name}' shows {b.end - cut} frames after the cut; "
                         f"a {frames}-frame transition needs {end - cut}")
    channel = free_channel(occupied, start, end, max(a.channel, b.channel) + 1)
    return Placement("cut", start, end - 1, frames, range(frames), channel, start)


def free_channel(occupied: Iterable[Span], start: int, end: int, lowest: int) -> int:
    """The lowest channel from `lowest` up with nothing in [start, end)."""
    busy = {s.channel for s in occupied if s.start < end and start < s.end}
    for channel in range(max(1, lowest), MAX_CHANNEL + 1):
        if channel not in busy:
            return channel
    raise MorphError(f"no free channel from {lowest} up for frames {start}-{end - 1}")


def movie_frame(at: int, frame_start: float, animation_offset_start: int, rate: float = 1.0, held: int = 0) -> int:
    """Index in the movie file of the frame a movie strip shows at timeline frame `at`.

    `frame_start` is where the strip's uncut content begins (trimming handles move only
    frame_final_start); a hard split keeps the part before it in `animation_offset_start`, counted
    in movie frames. `rate` is movie frames per timeline frame: the movie's fps over the scene's for
    a strip Blender plays at the movie's own speed (what Add > Movie makes), else 1. `held` is how
    many movie frames the strip holds, 0 when unknown."""
    # Blender rounds the scaled index half up (round_fl_to_int), then clamps it to the strip's
    # frames: a 12 fps strip's last timeline frame in a 24 fps scene lands on 29.5 of 0..29
    index = math.floor((at - frame_start) * rate + 0.5)
    if held:
        index = min(index, held - 1)
    return max(index, 0) + animation_offset_start


def stand_ins(keep: Iterable[int], finished: Iterable[int]) -> dict[int, int]:
    """For each kept frame not finished yet, the nearest finished kept frame (the earlier on a tie).

    The engine makes the midpoint first and then halves the intervals, so showing the nearest
    finished frame in every hole gives a coarse version of the result that sharpens as it runs."""
    done = sorted(set(finished))
    if not done:
        return {}
    out = {}
    for index in keep:
        if index not in done:
            out[index] = min(done, key=lambda f: (abs(f - index), f))
    return out


def job_status(job: dict) -> tuple[str, float]:
    """One line and a 0..1 fraction for the panel and the status bar."""
    state, progress = job["state"], job.get("progress") or {}
    total, done = progress.get("total") or 0, progress.get("done") or 0
    fraction = done / total if total else 0.0
    if state == "queued":
        ahead = job.get("queue_position")
        return ("queued" + (f", {ahead} job{'s' if ahead != 1 else ''} ahead" if ahead else "")), 0.0
    if state == "running":
        text = f"{progress.get('stage') or 'running'} {fraction:.0%}"
        if progress.get("level") and progress.get("levels"):
            text += f", level {progress['level']}/{progress['levels']}"
        eta: Optional[float] = job.get("eta_s")
        if eta is not None:
            text += f", about {eta:.0f} s left"
        return text, fraction
    return state, fraction if state != "done" else 1.0
