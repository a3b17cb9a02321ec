"""Pop at the ends, measured: how much in-betweens differ in look from the (exact) keyframes.

A sequence pops when its first and last in-betweens jump away from the keyframes: in softness of
the edge, in a white halo round the disk or a dark centre (decoder artefacts the keyframes, being
the input files, do not have), or in a large first/last step in parameter space. Every measure
reads the disk through its fit (scorer.fit's params), in pixels from the fitted edge.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from . import metrics, scorer, world
from .failures import core_colour

BIN = 0.25  # px: radial bins of the coverage profile; a 64x64 disk's rim has >= 40 px per bin
HALO_RING = (1.0, 3.0)  # px outside the fitted edge: past the world's 1-px ramp and a decoder's soft edge
BACKGROUND_FROM = 6.0  # px outside the edge: the frame's own background level


def _geometry(img: np.ndarray, p: world.DiskParams) -> tuple[np.ndarray, np.ndarray]:
    h = img.shape[0]
    ys, xs = np.mgrid[0:h, 0:img.shape[1]] + 0.5
    centre = np.hypot(xs - p.x, ys - p.y)
    return centre, centre - p.radius


def edge_width(image: np.ndarray, p: world.DiskParams, lo: float = 0.1, hi: float = 0.9) -> Optional[float]:
    """The 10-90% rise distance (px) of the disk's coverage across its edge.

    Coverage is each pixel's colour projected on the background-to-core-colour line (1 in the
    core, 0 on the background), averaged in BIN-wide rings by distance to the fitted edge and read
    from the inside out. A world render's 1-px ramp measures about 0.8 px. None when the profile
    never rises to `hi`."""
    img = scorer.as_float_image(image)
    colour = core_colour(img)
    if colour is None:
        return None
    axis = colour - world.BACKGROUND
    alpha = (img - world.BACKGROUND) @ axis / float(axis @ axis)
    _, d = _geometry(img, p)
    bounds = np.arange(-min(6.0, p.radius - 1.0), 6.0 + BIN, BIN)
    which = np.digitize(d, bounds) - 1
    centres, profile = [], []
    for i in range(len(bounds) - 1):
        sel = which == i
        if sel.any():
            centres.append(0.5 * (bounds[i] + bounds[i + 1]))
            profile.append(float(alpha[sel].mean()))
    centres, profile = np.array(centres), np.array(profile)
    inside = np.flatnonzero(profile >= hi)
    if inside.size == 0:
        return None
    start = inside[0]

    def crossing(level: float) -> Optional[float]:
        below = np.flatnonzero(profile[start:] <= level)
        if below.size == 0:
            return None
        i = start + below[0]
        if i == 0:
            return float(centres[0])
        x0, x1, y0, y1 = centres[i - 1], centres[i], profile[i - 1], profile[i]
        return float(x0 + (y0 - level) / (y0 - y1) * (x1 - x0)) if y0 != y1 else float(x1)

    outer, inner = crossing(lo), crossing(hi)
    return None if outer is None or inner is None else outer - inner


def _brightness(img: np.ndarray) -> np.ndarray:
    return img.mean(axis=2)


def halo(image: np.ndarray, p: world.DiskParams) -> float:
    """Mean brightness excess (0-1) of the ring HALO_RING px outside the fitted edge over the frame's
    own background; only brighter pixels count, so a soft (darker) edge does not hide a halo."""
    img = scorer.as_float_image(image)
    _, d = _geometry(img, p)
    bright = _brightness(img)
    far = d >= BACKGROUND_FROM
    level = float(np.median(bright[far])) if far.sum() >= 64 else float(world.BACKGROUND.mean())
    ring = (d >= HALO_RING[0]) & (d <= HALO_RING[1])
    return float(np.clip(bright[ring] - level, 0.0, None).mean()) if ring.any() else 0.0


def dark_centre(image: np.ndarray, p: world.DiskParams) -> float:
    """Mean brightness deficit (0-1) of the disk's core (within 0.3 r of the centre) against its
    mid-radius ring (0.45-0.75 r): 0 for a flat disk, positive for a darker centre."""
    img = scorer.as_float_image(image)
    centre, _ = _geometry(img, p)
    bright = _brightness(img)
    core = centre <= 0.3 * p.radius
    mid = (centre >= 0.45 * p.radius) & (centre <= 0.75 * p.radius)
    if not core.any() or not mid.any():
        return 0.0
    return float(bright[mid].mean() - bright[core].mean())


def end_steps(seq: Sequence[world.DiskParams]) -> tuple[float, float, float]:
    """(first step, last step, median step) of a sequence in parameter space (px)."""
    steps = metrics.adjacent_distances(seq)
    return float(steps[0]), float(steps[-1]), float(np.median(steps))


def frame_measures(image: np.ndarray, p: Optional[world.DiskParams]) -> Optional[dict]:
    """edge width, halo and dark centre of one fitted frame; None when it has no fit."""
    if p is None:
        return None
    return {"edge_width": edge_width(image, p), "halo": halo(image, p), "dark_centre": dark_centre(image, p)}


def _median(values) -> Optional[float]:
    values = [v for v in values if v is not None]
    return float(np.median(values)) if values else None


def summarise(inbetweens: Sequence[Optional[dict]], keyframes: Sequence[Optional[dict]],
              steps: Sequence[tuple[float, float, float]]) -> dict:
    """Medians of each look measure over in-betweens and over keyframes, and the end steps' ratios
    to the median step (median over sequences; 1.0 for evenly spaced frames)."""
    look = {}
    for key in ("edge_width", "halo", "dark_centre"):
        look[key] = {"inbetweens": _median(m[key] for m in inbetweens if m),
                     "keyframes": _median(m[key] for m in keyframes if m)}
    ratios = [(a / m, b / m) for a, b, m in steps if m > 1e-9]
    look["end_steps"] = {
        "first_over_median": _median(r[0] for r in ratios), "last_over_median": _median(r[1] for r in ratios),
        "first_px": _median(s[0] for s in steps), "last_px": _median(s[1] for s in steps),
        "median_step_px": _median(s[2] for s in steps), "sequences": len(ratios)}
    return look
