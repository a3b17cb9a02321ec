"""Metrics of in-between frames in the toy world, computed on fitted disk parameters.

Every function takes `DiskParams` (the `params` of `scorer.fit`), so the ground truth is the
analytic parameter space, not a learned feature space. A disk is the vector
(x, y, radius, COLOUR_SCALE cos(hue), COLOUR_SCALE sin(hue)): all in pixels, the hue as a point
on a circle of radius `COLOUR_SCALE` px so that red (0) and pink (320) are neighbours. On-manifold
alone does not make an in-between: a copy of a keyframe passes the scorer (FACTS.md, "Toy
world"), which is what `inbetweenness` and `keyframe_distance` catch.

PPL and PDV follow the per-sequence definition (b) of METHOD.md, section 6 (sum and standard
deviation of adjacent-frame distances), with the fitted-parameter distance in place of LPIPS.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .world import DiskParams

# A full turn of hue spans 2 pi * 10 = 63 px: neighbouring palette colours (30-60 degrees apart)
# are 5-10 px apart, about as far as a small move of the disk.
COLOUR_SCALE = 10.0
PARAM_NAMES = ("x", "y", "radius", "hue_cos", "hue_sin")


def param_vector(p: DiskParams) -> np.ndarray:
    """The disk as a vector in pixel units: (x, y, radius, 10 cos(hue), 10 sin(hue))."""
    if not isinstance(p, DiskParams):
        raise TypeError(f"expected DiskParams, got {type(p).__name__} (an unfitted frame has params None)")
    h = math.radians(p.hue)
    return np.array([p.x, p.y, p.radius, COLOUR_SCALE * math.cos(h), COLOUR_SCALE * math.sin(h)])


def param_distance(p: DiskParams, q: DiskParams) -> float:
    """Euclidean distance between two disks in parameter space (px)."""
    return float(np.linalg.norm(param_vector(p) - param_vector(q)))


def inbetweenness(p: DiskParams, a: DiskParams, b: DiskParams) -> float:
    """lambda: where `p` projects onto the segment from keyframe `a` (0) to keyframe `b` (1).

    lambda = <p - a, b - a> / |b - a|^2 in parameter space. It is not clipped: lambda < 0 or > 1
    means the frame lies beyond a keyframe. Raises ValueError when `a` and `b` coincide.
    """
    va, vb = param_vector(a), param_vector(b)
    span = vb - va
    norm2 = float(span @ span)
    if norm2 < 1e-12:
        raise ValueError("keyframes a and b have the same parameters: lambda is undefined")
    return float((param_vector(p) - va) @ span / norm2)


def lambda_error(p: DiskParams, a: DiskParams, b: DiskParams, f: float) -> float:
    """|lambda - f|: how far the frame sits from the fraction `f` it was asked for."""
    return abs(inbetweenness(p, a, b) - f)


def share_between(lambdas: Sequence[float]) -> float:
    """Share of frames whose lambda lies in [0, 1], i.e. between the keyframes."""
    lam = np.asarray(lambdas, dtype=float)
    if lam.size == 0:
        raise ValueError("lambdas is empty")
    return float(((lam >= 0.0) & (lam <= 1.0)).mean())


def keyframe_distance(p: DiskParams, a: DiskParams, b: DiskParams, centre_only: bool = False) -> float:
    """Distance (px) from `p` to the nearer keyframe: 0 for a copy of a keyframe.

    In full parameter space by default; with `centre_only`, between disk centres.
    """
    if centre_only:
        return min(math.hypot(p.x - k.x, p.y - k.y) for k in (a, b))
    return min(param_distance(p, a), param_distance(p, b))


def adjacent_distances(seq: Sequence[DiskParams]) -> np.ndarray:
    """Parameter-space distances between consecutive frames (len(seq) - 1 values)."""
    if len(seq) < 2:
        raise ValueError(f"a sequence needs >= 2 frames, got {len(seq)}")
    v = np.stack([param_vector(p) for p in seq])
    return np.linalg.norm(np.diff(v, axis=0), axis=1)


def path_length(seq: Sequence[DiskParams]) -> float:
    """PPL, definition (b) of METHOD.md: the sum of adjacent-frame distances (px).

    The straight path costs |last - first|; anything above that is detour or jitter.
    """
    return float(adjacent_distances(seq).sum())


def path_deviation(seq: Sequence[DiskParams]) -> float:
    """PDV: the standard deviation of adjacent-frame distances (px); 0 for evenly spaced frames."""
    return float(adjacent_distances(seq).std())


def monotonicity(seq: Sequence[DiskParams], tol: float = 0.5) -> float:
    """Share of adjacent steps in which no parameter moves against its overall direction.

    The parameters are x, y, radius and the hue as arc length (px, on the circle of radius
    COLOUR_SCALE) measured from the first frame's hue, wrapped to +-180 degrees: the (cos, sin)
    coordinates of `param_vector` are not monotone along a monotone turn of hue. Each parameter's
    direction is the sign of (last - first); a step breaks monotonicity when some parameter moves
    more than `tol` px the other way. A parameter that barely changes overall (|last - first| <=
    tol) must stay within `tol` of where it started. 1.0 when every parameter is monotone.
    """
    if len(seq) < 2:
        raise ValueError(f"a sequence needs >= 2 frames, got {len(seq)}")
    hue0 = seq[0].hue
    v = np.array([[p.x, p.y, p.radius, COLOUR_SCALE * math.radians((p.hue - hue0 + 180.0) % 360.0 - 180.0)]
                  for p in seq])
    total = v[-1] - v[0]
    steps = np.diff(v, axis=0)
    moving = np.abs(total) > tol
    against = np.where(moving, -np.sign(total) * steps > tol, np.abs(v[1:] - v[0]) > tol)
    return float((~against.any(axis=1)).mean())
