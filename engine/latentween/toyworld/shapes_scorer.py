"""The analytic scorer of the shapes world: fit the keyframes' objects to a frame and judge it.

`fit(image, (a, b))` knows the kinds and drawing order from the keyframes. It labels every pixel
with the object whose keyframe hue arc (a's hue to b's hue, short way) is nearest to the pixel's
hue: mixing a world colour with the grey background keeps its hue, so soft edges are labelled
right. Per object, the core (near-full contrast) gives the colour; each pixel's coverage is its
projection onto the background-to-colour line; centroid and area give the centre and the size
(area = pi size^2). The angle comes from a search over one symmetry period, rendering the object's
coverage, and a pattern search then polishes (x, y, size, angle) against the coverage on the
pixels that no other object claims (nor its 1-px rim, where colours mix): that undoes the bias
of moments where a later object hides part of an earlier one. The fitted
scene is re-rendered; the residual is the share of pixels off by more than `PIXEL_TOL` outside
a band of `EDGE_BAND` px around every fitted outline (soft decoder edges, as in `scorer`).

`score(image, a, b, f)` measures, per object, lambda = the projection of (fit - a) onto (b - a)
in a normalised parameter space with unit weights `UNITS`: 10 px of position, 10% of the
keyframes' mean size, 15 degrees of rotation (short arc modulo the symmetry), 30 degrees of hue.
A frame is a true in-between at fraction f when it is valid and every |lambda - f| <= `LAMBDA_TOL`.

The residual's edge band hides a wrong kind of equal area (a disk lies within 2 px of the outline
of an equal-area square), so `valid` also needs the shape error (`_shape_error`) <= `MAX_SHAPE_ERROR`.

Calibration (`calibrate(300, seed=0)`: 300 mixed 1-2 object pairs from `shapes.make_pairs(300, 0)`;
"soft" = Gaussian blur sigma 0.75 px, "soft1" = sigma 1.0 px, both + N(0, 0.03) pixel noise):
real keyframes valid 100% (max residual 0.0), soft 100%, soft1 100% (max residual 0.00024, max
shape error 0.066); rendered lerp midpoints true in-betweens 100% (max |lambda - 0.5| 0.0021);
50/50 blends rejected 100% (min residual 0.024, 6x MAX_RESIDUAL); keyframe a scored at f=0.5
rejected 100%; one object turned into another kind (same place, size, hue) rejected 99.7% (the
swaps that pass the residual have shape error >= 0.095). On 600 more scenes (seed 21, blur 0.75 or
1.0 + noise) soft shape errors reach 0.099 and kind swaps start at 0.109, both at the smallest
sizes (~6 px): for size-6 objects the shape check has almost no margin. Recovery on 300 sharp
scenes (459 objects): position <= 0.01 px, size <= 0.1%, angle <= 0.02 deg, hue <= 0.3 deg;
after blur 0.75 + noise: <= 0.41 px, 2.6%, 4.4 deg (99th pct 1.9), 1.6 deg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import shapes
from .scorer import _dilate, _median3, as_float_image
from .shapes import Scene, Shape
from .world import BACKGROUND, rgb_to_hue

FG_THRESHOLD = 0.2  # as scorer.py: world colours differ from the background by >= 0.77 somewhere
MIN_AREA = 12.0  # px; the smallest object (size 6) covers about 113
EDGE_BAND = 1.5  # px each side of each fitted outline that the residual ignores
PIXEL_TOL = 0.15  # a pixel is wrong when a channel is off by more than this
MAX_RESIDUAL = 0.004  # share of the image allowed to be wrong: 16 px of 4096
# Shape check: the residual's edge band hides a wrong kind of the same area (a disk's outline lies
# within 2 px of an equal-area square's), so the fit also compares the object's coverage with the
# fitted one, both blurred by SHAPE_BLUR px so that soft edges cancel and only the outline counts.
SHAPE_BLUR = 1.5
EDGE_SOFTNESS = (0.0, 0.75, 1.0)  # px, Gaussian sigmas
MAX_SHAPE_ERROR = 0.10  # share of the object's area
LAMBDA_TOL = 0.1
# Normalised parameter units: one unit of each is about equally visible in a 64x64 frame.
UNITS = {"position_px": 10.0, "size_rel": 0.1, "angle_deg": 15.0, "hue_deg": 30.0}


@dataclass(frozen=True)
class SceneFit:
    """Fitted objects in drawing order (None where one was not found).

    `valid` needs every object found, `residual` <= MAX_RESIDUAL and `shape_error` <= MAX_SHAPE_ERROR.
    """

    objects: tuple[Optional[Shape], ...]
    residual: float
    valid: bool
    shape_error: float = 1.0  # worst object's |coverage - fitted coverage| sum / fitted area

    @property
    def scene(self) -> Optional[Scene]:
        return Scene(self.objects) if all(o is not None for o in self.objects) else None


@dataclass(frozen=True)
class Score:
    """`lambdas[k]` is object k's fraction of the way from a to b; `reason` is None when it passed."""

    fit: SceneFit
    lambdas: tuple[float, ...]
    true_inbetween: bool
    reason: Optional[str]


def pixel_hues(img: np.ndarray) -> np.ndarray:
    """HSV hue in degrees of every pixel of a float HxWx3 image (0 for greys)."""
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    mx, mn = img.max(axis=2), img.min(axis=2)
    c = np.where(mx - mn > 1e-9, mx - mn, 1.0)
    h = np.where(mx == r, ((g - b) / c) % 6.0, np.where(mx == g, (b - r) / c + 2.0, (r - g) / c + 4.0))
    return np.where(mx - mn > 1e-9, h * 60.0, 0.0)


def _arc_distance(hues: np.ndarray, a: float, b: float) -> np.ndarray:
    """Hue distance of each hue to the short arc from a to b (sampled every few degrees)."""
    d = shapes.hue_delta(a, b)
    points = a + d * np.linspace(0.0, 1.0, max(2, int(abs(d) / 2.0) + 2))
    diff = np.abs(hues[..., None] - points) % 360.0
    return np.minimum(diff, 360.0 - diff).min(axis=-1)


def _blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a square array, zero outside: K a K^T with K the 1-D kernel matrix."""
    idx = np.arange(a.shape[0])
    k = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    k /= k.sum(axis=1, keepdims=True)
    return k @ a @ k.T


def _shape_error(alpha: np.ndarray, cov: np.ndarray, weight: np.ndarray) -> float:
    """Weighted |blurred coverage - blurred fitted coverage| over the fitted area.

    The fitted coverage is also tried with the extra softness of decoded edges (`EDGE_SOFTNESS`)
    and the best match counts: a soft edge is no wrong outline.
    """
    target = _blur(alpha, SHAPE_BLUR)
    area = max(float((weight * cov).sum()), 1.0)
    return min(float((weight * np.abs(target - _blur(cov, math.hypot(SHAPE_BLUR, s)))).sum()) / area
               for s in EDGE_SOFTNESS)


def _polish(obj: Shape, alpha: np.ndarray, weight: np.ndarray, size: int) -> Shape:
    """Pattern search on (x, y, size, angle) minimising the weighted coverage error."""
    names = ("x", "y", "size", "angle") if shapes.SYMMETRY[obj.kind] else ("x", "y", "size")
    steps = {"x": 0.5, "y": 0.5, "size": 0.3, "angle": 2.0}

    def loss(o: Shape) -> float:
        return float((weight * (shapes.coverage(o, size) - alpha) ** 2).sum())

    best, best_loss = obj, loss(obj)
    for _ in range(12):
        improved = True
        while improved:
            improved = False
            for name in names:
                for sign in (1.0, -1.0):
                    cand = Shape(**{**best.__dict__, name: getattr(best, name) + sign * steps[name]})
                    if cand.size <= 0.5:
                        continue
                    cand_loss = loss(cand)
                    if cand_loss < best_loss:
                        best, best_loss, improved = cand, cand_loss, True
        steps = {k: v / 2.0 for k, v in steps.items()}
    return best


def _search_angle(obj: Shape, alpha: np.ndarray, weight: np.ndarray, size: int) -> Shape:
    """Best angle on a 3-degree grid over one symmetry period (the polish refines it)."""
    period = shapes.SYMMETRY[obj.kind]
    if not period:
        return obj
    cands = [Shape(obj.kind, obj.x, obj.y, obj.size, float(t), obj.hue) for t in np.arange(0.0, period, 3.0)]
    errs = [float((weight * (shapes.coverage(c, size) - alpha) ** 2).sum()) for c in cands]
    return cands[int(np.argmin(errs))]


def fit(image: np.ndarray, keyframes: tuple[Scene, Scene], max_residual: float = MAX_RESIDUAL,
        max_shape_error: float = MAX_SHAPE_ERROR) -> SceneFit:
    """Fit the keyframes' objects (kinds, order) to `image` (uint8 or float HxWx3) and judge it."""
    a, b = keyframes
    if a.kinds != b.kinds:
        raise ValueError(f"keyframes differ in kinds: {a.kinds} vs {b.kinds}")
    img = as_float_image(image)
    h, w, _ = img.shape
    if h != w:
        raise ValueError(f"image must be square, got {h}x{w}")
    diff = img - BACKGROUND
    dist = np.abs(diff).max(axis=2)
    fg = dist > FG_THRESHOLD
    near = _dilate(fg, 2)
    hues = pixel_hues(img)
    labels = np.argmin([_arc_distance(hues, oa.hue, ob.hue) for oa, ob in zip(a.objects, b.objects)], axis=0)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5

    alphas: list[Optional[np.ndarray]] = []
    rough: list[Optional[Shape]] = []
    for k, oa in enumerate(a.objects):
        mine = near & (labels == k)
        solid = mine & fg
        if solid.sum() < MIN_AREA:
            alphas.append(None)
            rough.append(None)
            continue
        core = solid & (dist >= 0.85 * np.percentile(dist[solid], 95))
        colour = np.median(img[core], axis=0)
        axis = colour - BACKGROUND
        # Clipped at -0.25, not 0: pixel noise is zero-mean, and cutting off its negative half
        # would add a bias to the area from every pixel of the rim.
        alpha = np.where(mine, np.clip(diff @ axis / float(axis @ axis), -0.25, 1.0), 0.0)
        area = float(alpha.sum())
        if area < MIN_AREA:
            alphas.append(None)
            rough.append(None)
            continue
        alphas.append(alpha)
        rough.append(Shape(oa.kind, float((alpha * xs).sum() / area), float((alpha * ys).sum() / area),
                           math.sqrt(area / math.pi), 0.0, rgb_to_hue(colour) % 360.0))

    fitted: list[Optional[Shape]] = []
    shape_error = 0.0
    for k, obj in enumerate(rough):
        if obj is None:
            fitted.append(None)
            continue
        # Pixels that a later object covers say nothing about this one, and where two objects
        # meet a pixel mixes two colours, so its projection on one colour line is no coverage.
        other = np.zeros((h, w))
        for j, alpha in enumerate(alphas):
            if j != k and alpha is not None:
                other = np.maximum(other, alpha)
        other = np.lib.stride_tricks.sliding_window_view(np.pad(other, 1), (3, 3)).max(axis=(-1, -2))
        weight = np.clip(1.0 - 2.0 * other, 0.0, 1.0)
        obj = _search_angle(obj, alphas[k], weight, h)
        obj = _polish(obj, alphas[k], weight, h)
        fitted.append(obj)
        shape_error = max(shape_error, _shape_error(alphas[k], shapes.coverage(obj, h), weight))

    if any(o is None for o in fitted):
        return SceneFit(tuple(fitted), 1.0, False)
    scene = Scene(tuple(fitted))  # type: ignore[arg-type]
    error = _median3(np.abs(img - shapes.render_float(scene, h)).max(axis=2))
    band = np.zeros((h, w), bool)
    for o in fitted:
        band |= np.abs(shapes.signed_distance(o, h)) <= EDGE_BAND + 0.5  # type: ignore[arg-type]
    residual = float(((error > PIXEL_TOL) & ~band).mean())
    return SceneFit(tuple(fitted), residual, residual <= max_residual and shape_error <= max_shape_error, shape_error)


def param_vector(obj: Shape, ref: Shape, ref_size: float) -> np.ndarray:
    """`obj` - `ref` in normalised units (`UNITS`); angle and hue the short way round."""
    return np.array([
        (obj.x - ref.x) / UNITS["position_px"],
        (obj.y - ref.y) / UNITS["position_px"],
        (obj.size - ref.size) / (UNITS["size_rel"] * ref_size),
        shapes.angle_delta(obj.kind, ref.angle, obj.angle) / UNITS["angle_deg"],
        shapes.hue_delta(ref.hue, obj.hue) / UNITS["hue_deg"],
    ])


def object_lambda(obj: Shape, a: Shape, b: Shape) -> float:
    """Projection of (obj - a) onto (b - a) in normalised units: 0 at a, 1 at b."""
    ref_size = 0.5 * (a.size + b.size)
    ab = param_vector(b, a, ref_size)
    denom = float(ab @ ab)
    if denom < 1e-12:
        raise ValueError("keyframe objects are identical: lambda is undefined")
    return float(param_vector(obj, a, ref_size) @ ab / denom)


def score(image: np.ndarray, a: Scene, b: Scene, f: float, tol: float = LAMBDA_TOL) -> Score:
    """Is `image` a true in-between of keyframes a and b at fraction f? With the reason when not."""
    result = fit(image, (a, b))
    if any(o is None for o in result.objects):
        missing = [k for k, o in enumerate(result.objects) if o is None]
        return Score(result, (), False, f"object(s) {missing} not found")
    lambdas = tuple(object_lambda(o, oa, ob) for o, oa, ob in zip(result.objects, a.objects, b.objects))  # type: ignore[arg-type]
    if not result.valid:
        return Score(result, lambdas, False, f"not a valid scene: residual {result.residual:.4f} > {MAX_RESIDUAL}")
    off = [k for k, lam in enumerate(lambdas) if abs(lam - f) > tol]
    if off:
        detail = ", ".join(f"object {k}: lambda {lambdas[k]:.3f}" for k in off)
        return Score(result, lambdas, False, f"not at f={f:.3f} (tol {tol}): {detail}")
    return Score(result, lambdas, True, None)


def soften(image: np.ndarray, sigma: float = 0.75, noise: float = 0.0, rng: Optional[np.random.Generator] = None) -> np.ndarray:
    """Gaussian blur (and optional pixel noise) of a float image: what a good decoder leaves behind."""
    import cv2  # only here: the scorer itself is numpy

    out = cv2.GaussianBlur(as_float_image(image), (0, 0), sigma)
    if noise:
        out = out + (rng or np.random.default_rng(0)).normal(0.0, noise, out.shape)
    return np.clip(out, 0.0, 1.0)


def swap_kind(scene: Scene, rng: np.random.Generator) -> Scene:
    """`scene` with one object, at random, turned into another kind of the same place, size and hue."""
    k = int(rng.integers(len(scene.objects)))
    o = scene.objects[k]
    kind = [x for x in shapes.KINDS if x != o.kind][int(rng.integers(len(shapes.KINDS) - 1))]
    objects = list(scene.objects)
    objects[k] = Shape(kind, o.x, o.y, o.size, o.angle, o.hue)
    return Scene(tuple(objects))


def calibrate(n: int = 300, seed: int = 0) -> dict[str, float]:
    """Rates on `n` pairs: keyframes (sharp, softened), midpoints, blends, keyframe-as-midpoint, wrong kinds."""
    rng = np.random.default_rng(seed)
    pairs = shapes.make_pairs(n, seed)
    names = ("real_valid", "soft_valid", "soft1_valid", "mid_true", "blend_rejected", "keyframe_rejected",
             "kind_swap_rejected")
    counts = dict.fromkeys(names, 0)
    out = {"max_real_residual": 0.0, "max_soft1_residual": 0.0, "min_blend_residual": 1.0,
           "max_soft1_shape_error": 0.0, "min_kind_swap_shape_error": math.inf, "max_mid_lambda_error": 0.0}
    for a, b in pairs:
        real = fit(shapes.render(a), (a, b))
        soft = fit(soften(shapes.render_float(a), 0.75, 0.03, rng), (a, b))
        soft1 = fit(soften(shapes.render_float(a), 1.0, 0.03, rng), (a, b))
        mid = score(shapes.render(shapes.lerp_scene(a, b, 0.5)), a, b, 0.5)
        blend = score(shapes.blend(a, b), a, b, 0.5)
        swap = fit(shapes.render(swap_kind(a, rng)), (a, b))
        counts["real_valid"] += real.valid
        counts["soft_valid"] += soft.valid
        counts["soft1_valid"] += soft1.valid
        counts["mid_true"] += mid.true_inbetween
        counts["blend_rejected"] += not blend.true_inbetween
        counts["keyframe_rejected"] += not score(shapes.render(a), a, b, 0.5).true_inbetween
        counts["kind_swap_rejected"] += not swap.valid
        out["max_real_residual"] = max(out["max_real_residual"], real.residual)
        out["max_soft1_residual"] = max(out["max_soft1_residual"], soft1.residual)
        out["min_blend_residual"] = min(out["min_blend_residual"], blend.fit.residual)
        out["max_soft1_shape_error"] = max(out["max_soft1_shape_error"], soft1.shape_error)
        if swap.residual <= MAX_RESIDUAL:  # the swaps that only the shape check can catch
            out["min_kind_swap_shape_error"] = min(out["min_kind_swap_shape_error"], swap.shape_error)
        out["max_mid_lambda_error"] = max([out["max_mid_lambda_error"], *(abs(lam - 0.5) for lam in mid.lambdas)])
    return {"n": float(n), **{k: v / n for k, v in counts.items()}, **out}
