"""The analytic scorer: fit one disk to an image, re-render the fit, and judge the residual.

An image is "on the manifold" when it is, up to small errors, a picture the world could have
rendered: one disk of a world colour on the background. The fit separates the object from the
background, takes its colour from the object's core, turns each pixel into a coverage (alpha) by
projecting its colour onto the background-to-object line, and reads centre and radius from the
coverage's centroid and area (area = pi r^2). The residual is the share of image pixels that
differ from the re-rendered fit by more than `PIXEL_TOL`, ignoring a band of `EDGE_BAND` px on
each side of the fitted edge: decoded disks have soft edges about 1.5 px wide, and a scorer
without that band fails blurred but otherwise perfect disks (FACTS.md, "Toy world").

Calibration (`calibrate(500, seed=0)`, see tests/test_toyworld.py): real samples, also after a
Gaussian blur and pixel noise, pass; 50/50 alpha blends of two disks whose centres are >= 8 px
apart fail. The numbers are in `engine/latentween/toyworld/model/README.md`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import world

# A pixel belongs to the object when some channel differs from the background by more than this;
# world colours differ by >= 0.77 in at least one channel, and decoding errors are a few hundredths.
FG_THRESHOLD = 0.2
MIN_AREA = 12.0  # px; the smallest world disk (r = 7) covers about 154
EDGE_BAND = 1.5  # px each side of the fitted edge that the residual ignores
PIXEL_TOL = 0.15  # a pixel is wrong when a channel is off by more than this (half-coverage: >= 0.38)
MAX_RESIDUAL = 0.004  # share of the image allowed to be wrong: 16 px of 4096


@dataclass(frozen=True)
class FitResult:
    """`params` is None when the image holds no object at all; then `on_manifold` is False."""

    params: Optional[world.DiskParams]
    residual: float
    on_manifold: bool


def as_float_image(image: np.ndarray) -> np.ndarray:
    """uint8 or float HxWx3 -> float64 in [0, 1]."""
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"image must be HxWx3, got shape {image.shape}")
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return np.clip(image.astype(np.float64), 0.0, 1.0)


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    padded = np.pad(mask, px)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (2 * px + 1, 2 * px + 1))
    return windows.any(axis=(-1, -2))


def _median3(a: np.ndarray) -> np.ndarray:
    # Isolated noisy pixels are decoder noise, not a wrong object: a wrong object is a patch.
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(a, 1, mode="edge"), (3, 3))
    return np.median(windows.reshape(*a.shape, 9), axis=-1)


def fit(image: np.ndarray, max_residual: float = MAX_RESIDUAL) -> FitResult:
    """Fit one disk to `image` (uint8 or float in [0, 1], HxWx3) and score the fit's residual."""
    img = as_float_image(image)
    h, w, _ = img.shape
    diff = img - world.BACKGROUND
    dist = np.abs(diff).max(axis=2)
    fg = dist > FG_THRESHOLD
    if fg.sum() < MIN_AREA:
        return FitResult(None, 1.0, False)

    # The core (near-full contrast) gives the colour; a median ignores the odd stray pixel.
    core = fg & (dist >= 0.85 * np.percentile(dist[fg], 95))
    colour = np.median(img[core], axis=0)
    axis = colour - world.BACKGROUND
    alpha = np.clip(diff @ axis / float(axis @ axis), 0.0, 1.0)
    # Faint background noise summed over thousands of pixels would bias the area: keep the object.
    alpha[~_dilate(fg, 2)] = 0.0
    area = float(alpha.sum())
    if area < MIN_AREA:
        return FitResult(None, 1.0, False)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    params = world.DiskParams(
        x=float((alpha * xs).sum() / area),
        y=float((alpha * ys).sum() / area),
        radius=math.sqrt(area / math.pi),
        hue=world.rgb_to_hue(colour),
    )
    if h != w:
        raise ValueError(f"image must be square, got {h}x{w}")
    error = _median3(np.abs(img - world.render_float(params, size=h)).max(axis=2))
    band = np.abs(np.hypot(xs - params.x, ys - params.y) - params.radius) <= EDGE_BAND + 0.5
    residual = float(((error > PIXEL_TOL) & ~band).mean())
    return FitResult(params, residual, residual <= max_residual)


def blend_pairs(rng: np.random.Generator, n: int, min_centre_distance: float = 8.0) -> list[tuple[world.DiskParams, world.DiskParams]]:
    """`n` pairs of disks whose centres are at least `min_centre_distance` px apart.

    Pairs that differ only in colour or barely in place blend into something that is, or nearly
    is, a valid disk (a red and a yellow disk in one place blend into an orange disk): the
    calibration of the blend failure rate is meant for pairs that differ.
    """
    pairs: list[tuple[world.DiskParams, world.DiskParams]] = []
    while len(pairs) < n:
        a, b = world.sample_params(rng, 2)
        if math.hypot(a.x - b.x, a.y - b.y) >= min_centre_distance:
            pairs.append((a, b))
    return pairs


def blend(a: world.DiskParams, b: world.DiskParams) -> np.ndarray:
    """The 50/50 alpha blend of two rendered disks, uint8: what pixel-space interpolation makes."""
    return world.to_uint8(0.5 * world.render_float(a) + 0.5 * world.render_float(b))


def calibrate(n: int = 500, seed: int = 0) -> dict[str, float]:
    """Pass rates of the scorer on `n` real, blurred-and-noisy real, and blended samples."""
    import cv2  # only here: the scorer itself is numpy

    rng = np.random.default_rng(seed)
    real = world.sample_params(rng, n)
    real_pass = sum(fit(world.render(p)).on_manifold for p in real)
    soft_pass = 0
    for p in real:
        # A 1.5-px soft edge (sigma 0.75) and +-0.03 noise: what a good decoder leaves behind.
        soft = cv2.GaussianBlur(world.render_float(p), (0, 0), 0.75)
        soft = soft + rng.normal(0.0, 0.03, soft.shape)
        soft_pass += fit(np.clip(soft, 0.0, 1.0)).on_manifold
    blend_fail = sum(not fit(blend(a, b)).on_manifold for a, b in blend_pairs(rng, n))
    return {"n": n, "real_pass": real_pass / n, "soft_real_pass": soft_pass / n, "blend_fail": blend_fail / n}
