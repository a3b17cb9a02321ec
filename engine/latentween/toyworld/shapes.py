"""Toy world 2, "shapes": one or two coloured disks, squares or triangles on the light background.

An object (`Shape`) is a kind, a centre (x, y) in pixels, a size, a rotation angle in degrees and
a hue. `size` is the radius of the disk with the same area, for every kind: area = pi size^2, so
the scorer reads the size from the area alone whatever the kind. The centre is the centroid (for
the equilateral triangle also the circumcentre). Angle 0 is an axis-aligned square and a triangle
with a vertex straight up; positive angles turn counter-clockwise as seen on screen. A `Scene` is
1-2 objects drawn in list order (later ones on top). Objects may overlap, but sampled scenes and
pairs keep centres `MIN_CENTRE_GAP` of the sizes' sum apart, so no object is ever hidden.

Colours reuse `world`: fixed saturation and value, hue within `world.HUE_JITTER` of a `PALETTE`
hue. The two objects of a scene get palette hues >= `MIN_SCENE_HUE_GAP` apart so that the scorer
can tell them apart by hue. Anti-aliasing is a 1-px linear ramp of the signed distance to the
outline, like `world.coverage`: it is continuous in every parameter, which the scorer's angle
search relies on (4x supersampling would quantise coverage to 1/16). Pure numpy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from .world import BACKGROUND, COLOURS, HUE_JITTER, PALETTE, SIZE, colour_name, hue_distance, hue_to_rgb, to_uint8

KINDS = ("disk", "square", "triangle")
WORDS = ("square", "triangle", "and")  # caption words the disk world's vocabulary lacks
# Rotations that map the kind onto itself; 0 means any rotation does (the disk).
SYMMETRY: dict[str, float] = {"disk": 0.0, "square": 90.0, "triangle": 120.0}
SIZE_RANGE = (6.0, 12.0)  # equal-area radius, px
MARGIN = 2.0  # px between the object's circumcircle and the frame
MIN_SCENE_HUE_GAP = 60.0  # degrees between the palette hues of a scene's two objects
# Centres at least this share of the two sizes' sum apart: overlap stays partial, so no object
# (and no colour its caption names) can vanish under the other.
MIN_CENTRE_GAP = 0.75
# Circumradius / size: square of area pi s^2 has half-diagonal s sqrt(pi/2); equilateral triangle
# of area pi s^2 has circumradius s sqrt(4 pi / (3 sqrt 3)).
CIRCUMRADIUS = {"disk": 1.0, "square": math.sqrt(math.pi / 2.0), "triangle": math.sqrt(4.0 * math.pi / (3.0 * math.sqrt(3.0)))}


@dataclass(frozen=True)
class Shape:
    """One object. Pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5)."""

    kind: str
    x: float
    y: float
    size: float  # radius of the equal-area disk, px
    angle: float  # degrees, counter-clockwise on screen; meaningful modulo SYMMETRY[kind]
    hue: float  # degrees in [0, 360)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")

    @property
    def colour(self) -> str:
        return colour_name(self.hue)

    @property
    def circumradius(self) -> float:
        return self.size * CIRCUMRADIUS[self.kind]


@dataclass(frozen=True)
class Scene:
    """1-2 objects in drawing order."""

    objects: tuple[Shape, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "objects", tuple(self.objects))
        if not 1 <= len(self.objects) <= 2:
            raise ValueError(f"a scene holds 1 or 2 objects, got {len(self.objects)}")

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(o.kind for o in self.objects)


def wrap(delta: float, period: float) -> float:
    """`delta` moved into [-period/2, period/2); unchanged when period is 0 (no symmetry)."""
    if period <= 0.0:
        return 0.0
    return (delta + period / 2.0) % period - period / 2.0


def angle_delta(kind: str, a: float, b: float) -> float:
    """Shortest signed rotation from angle a to angle b for this kind (0 for the disk)."""
    return wrap(b - a, SYMMETRY[kind])


def hue_delta(a: float, b: float) -> float:
    """Shortest signed hue change from a to b, degrees."""
    return wrap(b - a, 360.0)


def signed_distance(shape: Shape, size: int = SIZE) -> np.ndarray:
    """Signed distance (px, negative inside) from each pixel centre to the outline.

    Exact inside and along edges; outside a polygon's corners it is the max over the edges'
    half-planes, a little short of the true distance, which only widens the corners' ramp.
    """
    centres = np.arange(size) + 0.5
    dx = centres[None, :] - shape.x
    dy = centres[:, None] - shape.y
    if shape.kind == "disk":
        return np.hypot(dx, dy) - shape.size
    t = math.radians(shape.angle)
    # Into the object's frame, y up: screen y points down, so flip it before rotating by -angle.
    u = math.cos(t) * dx - math.sin(t) * dy
    v = -math.sin(t) * dx - math.cos(t) * dy
    if shape.kind == "square":
        half = shape.size * math.sqrt(math.pi) / 2.0
        return np.maximum(np.abs(u), np.abs(v)) - half
    inradius = shape.circumradius / 2.0
    normals = [(math.cos(math.radians(d)), math.sin(math.radians(d))) for d in (-90.0, 30.0, 150.0)]
    return np.max([nu * u + nv * v for nu, nv in normals], axis=0) - inradius


def coverage(shape: Shape, size: int = SIZE) -> np.ndarray:
    """Share of each pixel covered by the object, in [0, 1], with a 1-px linear edge ramp."""
    return np.clip(0.5 - signed_distance(shape, size), 0.0, 1.0)


def render_float(scene: Scene, size: int = SIZE, colours: Optional[Sequence[Optional[np.ndarray]]] = None) -> np.ndarray:
    """The scene as float RGB in [0, 1], shape (size, size, 3); objects composited in order, each in
    the world's colour of its hue or, where `colours` gives one, in that RGB colour."""
    img = np.broadcast_to(BACKGROUND, (size, size, 3)).copy()
    for k, obj in enumerate(scene.objects):
        alpha = coverage(obj, size)[..., None]
        colour = colours[k] if colours is not None and colours[k] is not None else hue_to_rgb(obj.hue)
        img = (1.0 - alpha) * img + alpha * colour
    return img


def render(scene: Scene, size: int = SIZE) -> np.ndarray:
    """The scene as uint8 RGB, shape (size, size, 3)."""
    return to_uint8(render_float(scene, size))


def caption(scene: Scene) -> str:
    """E.g. "a red square and a blue disk", objects in drawing order."""
    return " and ".join(f"a {o.colour} {o.kind}" for o in scene.objects)


def inside_frame(shape: Shape, size: int = SIZE) -> bool:
    """The object's circumcircle keeps `MARGIN` px from every side, at any rotation."""
    lo = shape.circumradius + MARGIN
    return lo <= shape.x <= size - lo and lo <= shape.y <= size - lo


def _sample_shape(rng: np.random.Generator, hue: float) -> Shape:
    kind = KINDS[int(rng.integers(len(KINDS)))]
    s = float(rng.uniform(*SIZE_RANGE))
    lo = s * CIRCUMRADIUS[kind] + MARGIN
    x, y = (float(lo + rng.uniform() * (SIZE - 2 * lo)) for _ in range(2))
    period = SYMMETRY[kind]
    angle = float(rng.uniform(0.0, period)) if period else 0.0
    return Shape(kind, x, y, s, angle, hue)


def apart(scene: Scene) -> bool:
    """The objects' centres are at least `MIN_CENTRE_GAP` of their sizes' sum apart."""
    if len(scene.objects) < 2:
        return True
    a, b = scene.objects
    return math.hypot(a.x - b.x, a.y - b.y) >= MIN_CENTRE_GAP * (a.size + b.size)


def sample_scene(rng: np.random.Generator, n_objects: Optional[int] = None) -> Scene:
    """One scene of `n_objects` (1 or 2; drawn at random when None), colours far apart in hue."""
    n = int(rng.integers(1, 3)) if n_objects is None else n_objects
    if n not in (1, 2):
        raise ValueError(f"n_objects must be 1 or 2, got {n}")
    while True:
        names = [COLOURS[int(i)] for i in rng.integers(0, len(COLOURS), size=n)]
        if n == 1 or hue_distance(PALETTE[names[0]], PALETTE[names[1]]) >= MIN_SCENE_HUE_GAP:
            break
    hues = [(PALETTE[c] + float(rng.uniform(-HUE_JITTER, HUE_JITTER))) % 360.0 for c in names]
    while True:
        scene = Scene(tuple(_sample_shape(rng, h) for h in hues))
        if apart(scene):
            return scene


def sample_scenes(n: int, seed: int, n_objects: Optional[int] = None) -> list[Scene]:
    """`n` scenes from `seed`; the same seed gives the same scenes."""
    rng = np.random.default_rng(seed)
    return [sample_scene(rng, n_objects) for _ in range(n)]


def _hue_arc_gap(a: Scene, b: Scene) -> float:
    """Smallest hue distance between the two objects' keyframe hue arcs (inf for one object)."""
    if len(a.objects) < 2:
        return math.inf
    arcs = []
    for oa, ob in zip(a.objects, b.objects):
        d = hue_delta(oa.hue, ob.hue)
        arcs.append([oa.hue + d * t for t in np.linspace(0.0, 1.0, 9)])
    return min(hue_distance(h0, h1) for h0 in arcs[0] for h1 in arcs[1])


def make_pairs(n: int, seed: int, n_objects: Optional[int] = None, min_shift: float = 10.0,
               max_shift: float = 20.0, max_scale: float = 1.25, max_rotation: float = 30.0,
               max_hue_shift: float = 20.0, min_hue_arc_gap: float = 30.0) -> list[tuple[Scene, Scene]]:
    """`n` keyframe pairs (a, b): same kinds in the same order, every object moved.

    Each object's centre moves by `min_shift`..`max_shift` px, its size scales by a factor in
    [1/max_scale, max_scale], it turns by up to `max_rotation` degrees (kept below half the kind's
    symmetry so the short arc is unambiguous) and its hue moves by up to `max_hue_shift` degrees.
    Both keyframes keep every object inside the frame, the objects stay `apart` all along the
    straight path between the keyframes, and the hue arcs of two objects stay
    `min_hue_arc_gap` degrees apart so the scorer can segment any frame between them by hue.
    """
    if max_rotation >= 45.0:
        raise ValueError("max_rotation must stay below 45 degrees (half the square's symmetry)")
    rng = np.random.default_rng(seed)
    pairs: list[tuple[Scene, Scene]] = []
    while len(pairs) < n:
        a = sample_scene(rng, n_objects)
        moved = []
        for o in a.objects:
            d = rng.uniform(min_shift, max_shift)
            phi = rng.uniform(0.0, 2.0 * math.pi)
            s = o.size * math.exp(rng.uniform(-1.0, 1.0) * math.log(max_scale))
            rot = rng.uniform(-max_rotation, max_rotation) if SYMMETRY[o.kind] else 0.0
            hue = (o.hue + rng.uniform(-max_hue_shift, max_hue_shift)) % 360.0
            moved.append(Shape(o.kind, o.x + d * math.cos(phi), o.y + d * math.sin(phi), s, o.angle + rot, hue))
        b = Scene(tuple(moved))
        # Apart along the whole straight path, not only at the ends: crossing objects would hide
        # one another in the in-betweens.
        path_apart = all(apart(lerp_scene(a, b, t)) for t in np.linspace(0.0, 1.0, 11))
        if all(inside_frame(o) for o in b.objects) and path_apart and _hue_arc_gap(a, b) >= min_hue_arc_gap:
            pairs.append((a, b))
    return pairs


def lerp_shape(a: Shape, b: Shape, t: float) -> Shape:
    """Linear in x, y, size; angle on the shortest arc modulo the kind's symmetry; hue on the short arc."""
    if a.kind != b.kind:
        raise ValueError(f"cannot interpolate a {a.kind} into a {b.kind}")
    return Shape(
        a.kind,
        a.x + t * (b.x - a.x),
        a.y + t * (b.y - a.y),
        a.size + t * (b.size - a.size),
        a.angle + t * angle_delta(a.kind, a.angle, b.angle),
        (a.hue + t * hue_delta(a.hue, b.hue)) % 360.0,
    )


def lerp_scene(a: Scene, b: Scene, t: float) -> Scene:
    """The scene at fraction `t` between keyframes with the same kinds in the same order."""
    if a.kinds != b.kinds:
        raise ValueError(f"keyframes differ in kinds: {a.kinds} vs {b.kinds}")
    return Scene(tuple(lerp_shape(oa, ob, t) for oa, ob in zip(a.objects, b.objects)))


def sample_batch(rng: np.random.Generator, n: int) -> tuple[np.ndarray, list[str], list[Scene]]:
    """`n` fresh scenes (1 or 2 objects each) as uint8 (n, SIZE, SIZE, 3), their captions, the scenes."""
    scenes = [sample_scene(rng) for _ in range(n)]
    return np.stack([render(s) for s in scenes]), [caption(s) for s in scenes], scenes


def blend(a: Scene, b: Scene) -> np.ndarray:
    """The 50/50 alpha blend of two rendered scenes, uint8: what pixel-space interpolation makes."""
    return to_uint8(0.5 * render_float(a) + 0.5 * render_float(b))
