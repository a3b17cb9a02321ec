"""Seeded generator of the toy world: one anti-aliased filled disk on a plain light background.

A disk is four numbers (`DiskParams`): centre x, y and radius in pixels, and hue in degrees.
Saturation and value are fixed, so the hue alone names the colour; sampled hues sit within
`HUE_JITTER` degrees of one of the named `PALETTE` hues, which keeps every caption unambiguous
while still giving the model a continuum of hues to interpolate through. Pure numpy.
"""
from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import Sequence

import numpy as np

SIZE = 64
BACKGROUND = np.array([0.94, 0.94, 0.94])
SATURATION = 0.8
VALUE = 0.85
PALETTE: dict[str, float] = {
    "red": 0.0, "orange": 30.0, "yellow": 60.0, "green": 120.0,
    "cyan": 180.0, "blue": 240.0, "purple": 275.0, "pink": 320.0,
}
COLOURS = tuple(PALETTE)
# Neighbouring palette hues are >= 30 degrees apart: +-8 leaves a gap of >= 14 degrees between bins.
HUE_JITTER = 8.0
RADIUS_RANGE = (7.0, 16.0)
# Whole disk inside the frame with this many pixels to spare, so area -> radius holds for every sample.
MARGIN = 2.0


@dataclass(frozen=True)
class DiskParams:
    """One disk. Pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5)."""

    x: float
    y: float
    radius: float
    hue: float  # degrees in [0, 360)

    @property
    def colour(self) -> str:
        return colour_name(self.hue)

    def rgb(self) -> np.ndarray:
        return hue_to_rgb(self.hue)


def hue_to_rgb(hue: float) -> np.ndarray:
    """RGB in [0, 1] of the world's colour with this hue (fixed saturation and value)."""
    return np.array(colorsys.hsv_to_rgb((hue % 360.0) / 360.0, SATURATION, VALUE))


def rgb_to_hue(rgb: Sequence[float]) -> float:
    """Hue in degrees of an RGB colour in [0, 1]."""
    r, g, b = (float(v) for v in rgb)
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360.0


def hue_distance(a: float, b: float) -> float:
    """Shortest distance in degrees between two hues on the colour circle."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def colour_name(hue: float) -> str:
    """The palette colour nearest to `hue` on the colour circle."""
    return min(PALETTE, key=lambda name: hue_distance(hue, PALETTE[name]))


def sample_params(rng: np.random.Generator, n: int) -> list[DiskParams]:
    """`n` disks: a palette colour with hue jitter, a radius, and a centre that keeps the disk inside."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    names = rng.integers(0, len(COLOURS), size=n)
    jitter = rng.uniform(-HUE_JITTER, HUE_JITTER, size=n)
    radius = rng.uniform(*RADIUS_RANGE, size=n)
    lo = radius + MARGIN
    x = lo + rng.uniform(0.0, 1.0, size=n) * (SIZE - 2 * lo)
    y = lo + rng.uniform(0.0, 1.0, size=n) * (SIZE - 2 * lo)
    return [
        DiskParams(float(x[k]), float(y[k]), float(radius[k]), float((PALETTE[COLOURS[names[k]]] + jitter[k]) % 360.0))
        for k in range(n)
    ]


def coverage(params: DiskParams, size: int = SIZE) -> np.ndarray:
    """Share of each pixel covered by the disk (size x size in [0, 1]), with a 1-px linear edge ramp."""
    centres = np.arange(size) + 0.5
    d = np.hypot(centres[None, :] - params.x, centres[:, None] - params.y)
    return np.clip(params.radius + 0.5 - d, 0.0, 1.0)


def render_float(params: DiskParams, size: int = SIZE) -> np.ndarray:
    """The image of one disk as float RGB in [0, 1], shape (size, size, 3)."""
    alpha = coverage(params, size)[..., None]
    return (1.0 - alpha) * BACKGROUND + alpha * params.rgb()


def render(params: DiskParams, size: int = SIZE) -> np.ndarray:
    """The image of one disk as uint8 RGB, shape (size, size, 3)."""
    return to_uint8(render_float(params, size))


def render_many(params: Sequence[DiskParams], size: int = SIZE) -> np.ndarray:
    """A batch of images, uint8 (n, size, size, 3)."""
    return np.stack([render(p, size) for p in params]) if params else np.zeros((0, size, size, 3), np.uint8)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


def caption(params: DiskParams) -> str:
    """The caption the model is trained on, e.g. "a red disk"."""
    return f"a {params.colour} disk"
