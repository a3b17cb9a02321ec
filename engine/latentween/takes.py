"""Re-rolls (issue 20): which frames a run must make, given the takes asked for and what the folder holds.

A frame's take 0 is the job's first result; take n > 0 draws other noise (method.frame_generator) from
the *take-0 latents* of its parents. Children are always made from take-0 parents too, so a job's
frames depend on its settings and takes alone, not on the order re-rolls were asked in, and a re-roll
changes exactly the frames it names. The state folder therefore keeps each frame's take-0 latent;
the manifest records per frame the take its file holds (None while a file is being replaced).

A run has two passes: the first makes the take-0 latents that are missing (and the files of frames
wanted at take 0), the second remakes the re-rolled frames, one plan level at a time so that no
re-rolled frame is the parent of another within a call. Pure Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional


@dataclass
class TakePlan:
    first: set[int]                       # inner frames the take-0 pass makes
    second: list[list[int]] = field(default_factory=list)  # re-rolled frames to make, by plan level
    kept: set[int] = field(default_factory=set)            # inner frames whose file stays as it is


def recorded_take(entry: Optional[dict]) -> Optional[int]:
    """The take a manifest entry's file holds: manifests from before takes existed hold take 0."""
    if not entry:
        return None
    return entry.get("take", 0)


def plan_takes(count: int, takes: dict[int, int], base: dict, entries: list[dict],
               has_file: Callable[[int], bool], levels: dict[int, int]) -> TakePlan:
    """`base`: frames with a take-0 latent on disk; `entries`: the previous manifest's frames (same
    job apart from takes, else empty); `levels`: frame index -> plan level."""
    def holds(i: int, take: int) -> bool:
        return recorded_take(entries[i] if i < len(entries) else None) == take and has_file(i)

    inner = range(1, count - 1)
    first = {i for i in inner if i not in base or (not takes.get(i) and not holds(i, 0))}
    rerolled = sorted(i for i, take in takes.items() if not holds(i, take))
    by_level: dict[int, list[int]] = {}
    for i in rerolled:
        by_level.setdefault(levels[i], []).append(i)
    kept = {i for i in inner if i not in rerolled and (i not in first or takes.get(i))}
    return TakePlan(first, [by_level[level] for level in sorted(by_level)], kept)


def pending_take(i: int, wanted: int, entries: list[dict], has_file: Callable[[int], bool]) -> Optional[int]:
    """What a not-yet-made frame's manifest entry says its file holds: the wanted take when no other
    take's file is there (a kill after the file write then keeps it), else None until it is replaced."""
    entry = entries[i] if i < len(entries) else None
    if not has_file(i) or recorded_take(entry) == wanted:
        return wanted
    return None
