"""The recursive generation plan and its noise schedule (METHOD.md section 2). Pure Python.

Frames live at fractions 0 = f_0 < f_1 < ... < f_{n-1} = 1; the first and last are the keyframes.
Level 1 makes the frame in the middle of (0, n-1) from those two; each later level splits every gap
that still has missing frames, always from the two nearest finished frames ("parents").

Any frame count works, not only 2^L + 1:
- Split rule: the new frame of a gap (i, j) is the index k in (i, j) whose fraction is closest to the
  gap's midpoint (f_i + f_j) / 2; on a tie the lower index. With evenly spaced fractions and
  n = 2^L + 1 this is exactly the reference's bisection.
- Noise follows the parents' distance d = f_j - f_i: with d_min the smallest parent distance in the
  whole plan, the position p = log2(1 / d) / log2(1 / d_min) runs from 0 (the first pair, d = 1) to 1
  (the closest parents). noise(p) = min + (max - min) * curve(1 - p), curve = x (linear), x^2 (convex)
  or sqrt(x) (concave). For n = 2^L + 1 the level-l parents are 2^(1-l) apart, so p = (l-1)/(L-1): the
  reference's linear-in-level schedule. A plan with a single level uses the max noise.
- The noise fraction becomes a DDIM index k = floor(fraction * steps) (clamped to steps - 1); the
  frame is noised to the k-th DDIM timestep and denoised from there to 0. METHOD.md's example
  (200 steps, 0.30 / 0.55, 17 frames) gives k = 110, 93, 76, 60.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

# Products like 0.3 * 200 land a hair below the integer; the reference truncates exact values.
_FLOOR_EPS = 1e-9


@dataclass(frozen=True)
class PlannedFrame:
    """One frame to generate: `index` between finished parents `left` and `right`."""

    index: int
    left: int
    right: int
    level: int              # 1 = the first midpoint
    local_fraction: float   # where the frame lies between its parents, in (0, 1)
    parent_distance: float  # f_right - f_left
    noise: float            # fraction of the schedule, in [min_noise, max_noise]


def curve_value(x: float, curve: str) -> float:
    """Shape of the schedule on x in [0, 1]: linear, convex (x^2) or concave (sqrt x)."""
    if curve == "linear":
        return x
    if curve == "convex":
        return x * x
    if curve == "concave":
        return math.sqrt(x)
    raise ValueError(f"unknown noise curve {curve!r}")


def split_index(fractions: Sequence[float], i: int, j: int) -> int:
    """Index in (i, j) whose fraction is closest to the gap's midpoint; ties go to the lower index."""
    mid = 0.5 * (fractions[i] + fractions[j])
    return min(range(i + 1, j), key=lambda k: (abs(fractions[k] - mid), k))


def bisection_plan(fractions: Sequence[float]) -> list[list[tuple[int, int, int]]]:
    """Levels of (index, left, right) triples; every parent is finished before its children."""
    levels: list[list[tuple[int, int, int]]] = []
    gaps = [(0, len(fractions) - 1)]
    while gaps:
        level, next_gaps = [], []
        for i, j in gaps:
            if j - i < 2:
                continue
            k = split_index(fractions, i, j)
            level.append((k, i, j))
            next_gaps += [(i, k), (k, j)]
        if level:
            levels.append(level)
        gaps = next_gaps
    return levels


def noise_for_distance(d: float, d_min: float, min_noise: float, max_noise: float, curve: str = "linear") -> float:
    """Noise fraction for parents `d` apart (module docstring): max at d = 1, min at d = d_min."""
    span = math.log2(1.0 / d_min)
    p = 0.0 if span <= 0 else min(max(math.log2(1.0 / d) / span, 0.0), 1.0)
    return min_noise + (max_noise - min_noise) * curve_value(1.0 - p, curve)


def ddim_index(noise: float, steps: int) -> int:
    """DDIM index (0 = cleanest) a frame is noised to: floor(noise * steps), at most steps - 1."""
    return max(0, min(steps - 1, int(math.floor(noise * steps + _FLOOR_EPS))))


def make_plan(fractions: Sequence[float], min_noise: float, max_noise: float, curve: str = "linear") -> list[list[PlannedFrame]]:
    """The full plan: levels of `PlannedFrame`s with local fractions and noise levels."""
    triples = bisection_plan(fractions)
    distances = [fractions[j] - fractions[i] for level in triples for _, i, j in level]
    d_min = min(distances, default=1.0)
    plan = []
    for depth, level in enumerate(triples, start=1):
        plan.append([
            PlannedFrame(
                index=k, left=i, right=j, level=depth,
                local_fraction=(fractions[k] - fractions[i]) / (fractions[j] - fractions[i]),
                parent_distance=fractions[j] - fractions[i],
                noise=noise_for_distance(fractions[j] - fractions[i], d_min, min_noise, max_noise, curve),
            )
            for k, i, j in level
        ])
    return plan


def reference_candidates(level: int) -> int:
    """Candidates per frame in the reference: 8 at level 1, one fewer per level, never below 3."""
    return max(3, 9 - level)


@dataclass(frozen=True)
class PlannedRow:
    """One candidate of one frame: a row of the batched denoising."""

    frame: PlannedFrame
    candidate: int
    start: int  # DDIM index (0 = cleanest) it is noised to and denoised from


def level_chunks(level: Sequence[PlannedFrame], candidates: int | Sequence[int], starts: Sequence[int],
                 size: int) -> list[list[PlannedRow]]:
    """Rows of one level cut into the chunks that go through the denoiser together.

    Determinism by construction: floating-point kernels may round differently for different batch
    shapes, so a frame's result is reproducible only if its chunk is. Chunks therefore depend on the
    plan, the candidate counts and `size` alone, never on which frames are already finished: a resume
    re-runs a whole chunk exactly as the first run did. A chunk holds whole frames (all candidates
    of each, so they can be ranked and pruned together) that share a start index (every row walks
    the same timesteps, as multistep schedulers need), in plan order, as many as fit in `size` rows;
    a frame with more candidates than `size` is a chunk of its own.
    """
    counts = [candidates] * len(level) if isinstance(candidates, int) else list(candidates)
    by_start: dict[int, list[list[PlannedRow]]] = {}
    for frame, count, start in zip(level, counts, starts):
        by_start.setdefault(start, []).append([PlannedRow(frame, c, start) for c in range(count)])
    chunks: list[list[PlannedRow]] = []
    for start in sorted(by_start, reverse=True):
        current: list[PlannedRow] = []
        for rows in by_start[start]:
            if current and len(current) + len(rows) > size:
                chunks.append(current)
                current = []
            current += rows
        chunks.append(current)
    return chunks


def candidate_counter(fixed: Optional[int]) -> Callable[[int], int]:
    """Candidates per level: a fixed number, or the reference schedule (METHOD.md 5)."""
    return (lambda level: fixed) if fixed else reference_candidates
