"""Why a frame is not a true in-between: one failure kind per frame, decided in a fixed order.

The order (the first rule that holds names the kind):
1. `wrong count`: the fit finds no object at all.
2. `blend`: off-manifold, and the image is explained better (lower RMS) by an alpha mix
   w_a A + w_b B of the two keyframes' rendered disks than by the best single disk, with both
   weights >= BLEND_MIN and the smaller <= BLEND_MAX: both parents visible, at least one only
   partly (decoded latent mixes come out as e.g. 0.9 / 0.45). Two opaque disks (both weights
   near 1) are not a blend but rule 3's second object.
3. `wrong count`: off-manifold, and not even one disk of its own colour: re-rendering the fitted
   disk in the frame's own core colour (not the world's) still leaves more than the scorer's
   residual. More than one object, a ring or a broken blob land here.
4. `wrong colour`: one disk (rule 3 passed) that is off-manifold, which then means its colour is
   not a world colour (washed out, too dark: a mixture); or an on-manifold disk whose hue lies
   more than HUE_TOL degrees off the short arc between the keyframes' hues.
5. `copy of a parent`: a valid disk within COPY_TOL of the keyframes' parameter distance from a
   keyframe k while the frame's fraction f is more than TRUE_INBETWEEN from k.
6. `off-path`: any other valid disk: |lambda - f| > TRUE_INBETWEEN, or it leaves the segment.
A true in-between (on-manifold, |lambda - f| <= TRUE_INBETWEEN) gets no kind (None), checked
before rule 1, so the kinds split exactly the frames the report's table does not count as true.
"""
from __future__ import annotations

import colorsys
from typing import Optional, Sequence

import numpy as np

from . import metrics, scorer, world

TRUE_INBETWEEN = 0.1
# `wrong shape` is the shapes world's (shapes_failures.py); a disk frame never gets it.
KINDS = ("wrong count", "blend", "wrong colour", "wrong shape", "copy of a parent", "off-path")
CODES = {"wrong count": "CNT", "blend": "BLD", "wrong colour": "COL", "wrong shape": "SHP", "copy of a parent": "CPY",
         "off-path": "OFF", None: "ok"}
BLEND_MIN, BLEND_MAX = 0.15, 0.85
HUE_TOL = 10.0  # degrees: the palette's jitter is +-8, so a keyframe's own hue passes
COPY_TOL = 0.1  # share of the keyframes' parameter distance: the same tolerance as lambda's


def core_colour(img: np.ndarray) -> Optional[np.ndarray]:
    """The object's colour as the scorer reads it (median of its near-full-contrast core), or None."""
    dist = np.abs(img - world.BACKGROUND).max(axis=2)
    fg = dist > scorer.FG_THRESHOLD
    if fg.sum() < scorer.MIN_AREA:
        return None
    core = fg & (dist >= 0.85 * np.percentile(dist[fg], 95))
    return np.median(img[core], axis=0)


def render_in(params: world.DiskParams, colour: np.ndarray, size: int) -> np.ndarray:
    """The fitted disk in an arbitrary colour: the best single disk, whether or not the world has it."""
    alpha = world.coverage(params, size)[..., None]
    return (1.0 - alpha) * world.BACKGROUND + alpha * colour


def own_colour_residual(img: np.ndarray, params: world.DiskParams, colour: np.ndarray) -> float:
    """The scorer's residual share, against the fitted disk rendered in the frame's own colour."""
    h = img.shape[0]
    error = scorer._median3(np.abs(img - render_in(params, colour, h)).max(axis=2))
    ys, xs = np.mgrid[0:h, 0:h] + 0.5
    band = np.abs(np.hypot(xs - params.x, ys - params.y) - params.radius) <= scorer.EDGE_BAND + 0.5
    return float(((error > scorer.PIXEL_TOL) & ~band).mean())


def mix_weights(img: np.ndarray, key_a: np.ndarray, key_b: np.ndarray) -> tuple[float, float, float]:
    """Least-squares (w_a, w_b) of img - background = w_a (A - bg) + w_b (B - bg) for the rendered
    keyframes A and B (float images of any world), and the mix's RMS."""
    y = (img - world.BACKGROUND).ravel()
    basis = np.stack([(k - world.BACKGROUND).ravel() for k in (key_a, key_b)], axis=1)
    w, *_ = np.linalg.lstsq(basis, y, rcond=None)
    rms = float(np.sqrt(np.mean((y - basis @ w) ** 2)))
    return float(w[0]), float(w[1]), rms


def hue_between(h: float, ha: float, hb: float, tol: float = HUE_TOL) -> bool:
    """Whether hue `h` lies on the short arc from `ha` to `hb`, give or take `tol` degrees."""
    d = world.hue_distance
    return d(h, ha) + d(h, hb) <= d(ha, hb) + 2 * tol


def world_colour(colour: np.ndarray, tol: float = 0.2) -> bool:
    """Whether an RGB colour has the world's saturation and value (within `tol`)."""
    _, s, v = colorsys.rgb_to_hsv(*(float(c) for c in np.clip(colour, 0, 1)))
    return abs(s - world.SATURATION) <= tol and abs(v - world.VALUE) <= tol


def classify(image: np.ndarray, f: float, a: Optional[world.DiskParams], b: Optional[world.DiskParams],
             fit: Optional[scorer.FitResult] = None) -> Optional[str]:
    """The failure kind of a frame at fraction `f` between keyframe disks `a` and `b` (module docstring),
    or None for a true in-between. `fit` is scorer.fit(image) when the caller has it already."""
    img = scorer.as_float_image(image)
    fit = fit or scorer.fit(img)
    p = fit.params
    if p is None:
        return "wrong count"
    paired = a is not None and b is not None and metrics.param_distance(a, b) > 1e-6
    if fit.on_manifold and paired and abs(metrics.inbetweenness(p, a, b) - f) <= TRUE_INBETWEEN:
        return None
    colour = core_colour(img)
    single = render_in(p, colour, img.shape[0])
    if not fit.on_manifold:
        if paired:
            h = img.shape[0]
            wa, wb, mix_rms = mix_weights(img, world.render_float(a, h), world.render_float(b, h))
            single_rms = float(np.sqrt(np.mean((img - single) ** 2)))
            if BLEND_MIN <= min(wa, wb) <= BLEND_MAX and mix_rms < single_rms:
                return "blend"
        if own_colour_residual(img, p, colour) > scorer.MAX_RESIDUAL:
            return "wrong count"
        return "wrong colour"
    if not world_colour(colour) or (paired and not hue_between(p.hue, a.hue, b.hue)):
        return "wrong colour"
    if paired:
        span = metrics.param_distance(a, b)
        for k, parent in ((0.0, a), (1.0, b)):
            if abs(f - k) > TRUE_INBETWEEN and metrics.param_distance(p, parent) <= COPY_TOL * span:
                return "copy of a parent"
    return "off-path"


def breakdown(kinds: Sequence[Sequence[Optional[str]]], fractions: Sequence[float]) -> dict:
    """Counts and shares of each kind over all in-between frames, and shares per frame position.

    `kinds` is [pair][in-between]; `fractions` are the in-betweens' fractions."""
    flat = [k for row in kinds for k in row]
    n = max(len(flat), 1)
    counts = {kind: sum(k == kind for k in flat) for kind in KINDS}
    per_position = {}
    for i, fr in enumerate(fractions):
        column = [row[i] for row in kinds]
        per_position[f"{fr:.3f}"] = {kind: sum(k == kind for k in column) / max(len(column), 1) for kind in KINDS}
    return {"order": list(KINDS), "frames": len(flat), "counts": counts,
            "shares": {kind: c / n for kind, c in counts.items()}, "per_position": per_position}
