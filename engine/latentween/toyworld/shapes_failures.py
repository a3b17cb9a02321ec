"""Why a shapes-world frame is not a true in-between: the disks' kinds (failures.py), per object.

The order (the first rule that holds names the kind):
1. `wrong count`: an object of the keyframes is not found at all.
2. `blend`: not a valid scene, and better explained (lower RMS) by an alpha mix w_a A + w_b B of the
   two rendered keyframes than by the fitted objects drawn in their own core colours, with both weights >= BLEND_MIN and the smaller
   <= BLEND_MAX (as failures.py: both parents visible, at least one only partly).
3. `wrong colour`: an object whose core colour is not a world colour (a washed-out mixture) or whose
   hue lies more than HUE_TOL degrees off the short arc between its keyframes' hues.
4. `wrong shape`: any other invalid scene: an outline not of its kind (shape error), or parts that
   the fitted objects do not explain (the residual).
5. `copy of a parent`: a valid scene whose every object is within COPY_TOL of its keyframes'
   parameter distance from the same keyframe k, while the frame's fraction is more than
   TRUE_INBETWEEN from k.
6. `off-path`: any other valid scene: some object's |lambda - f| > TRUE_INBETWEEN.
A true in-between gets no kind (None).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import shapes, shapes_scorer
from .failures import BLEND_MAX, BLEND_MIN, COPY_TOL, TRUE_INBETWEEN, hue_between, mix_weights, world_colour
from .scorer import as_float_image
from .shapes import Scene

CORE_INSET = 1.5  # px inside the fitted outline: past a decoder's soft edge, so the core is the object's colour


def core_colours(img: np.ndarray, objects) -> list[Optional[np.ndarray]]:
    """Median colour of each fitted object's pixels CORE_INSET px inside its outline (None if too small)."""
    h = img.shape[0]
    out = []
    for o in objects:
        inside = shapes.signed_distance(o, h) <= -CORE_INSET
        out.append(np.median(img[inside], axis=0) if inside.sum() >= 4 else None)
    return out


def _wrong_colour(img: np.ndarray, fit: shapes_scorer.SceneFit, a: Scene, b: Scene) -> bool:
    for o, oa, ob, colour in zip(fit.objects, a.objects, b.objects, core_colours(img, fit.objects)):
        if colour is not None and not world_colour(colour):
            return True
        if not hue_between(o.hue, oa.hue, ob.hue):
            return True
    return False


def _copy_of(fit: shapes_scorer.SceneFit, a: Scene, b: Scene, f: float) -> bool:
    for k, parent in ((0.0, a), (1.0, b)):
        if abs(f - k) <= TRUE_INBETWEEN:
            continue
        near = True
        for o, oa, ob, op in zip(fit.objects, a.objects, b.objects, parent.objects):
            ref = 0.5 * (oa.size + ob.size)
            span = float(np.linalg.norm(shapes_scorer.param_vector(ob, oa, ref)))
            near &= float(np.linalg.norm(shapes_scorer.param_vector(o, op, ref))) <= COPY_TOL * span
        if near:
            return True
    return False


def classify(image: np.ndarray, f: float, a: Scene, b: Scene,
             fit: Optional[shapes_scorer.SceneFit] = None) -> Optional[str]:
    """The failure kind of a frame at fraction `f` between keyframe scenes `a` and `b` (module
    docstring), or None for a true in-between. `fit` is shapes_scorer.fit(image, (a, b)) when known."""
    img = as_float_image(image)
    fit = fit or shapes_scorer.fit(img, (a, b))
    if any(o is None for o in fit.objects):
        return "wrong count"
    lambdas = [shapes_scorer.object_lambda(o, oa, ob) for o, oa, ob in zip(fit.objects, a.objects, b.objects)]
    if fit.valid and all(abs(lam - f) <= TRUE_INBETWEEN for lam in lambdas):
        return None
    if not fit.valid:
        h = img.shape[0]
        wa, wb, mix_rms = mix_weights(img, shapes.render_float(a, h), shapes.render_float(b, h))
        # the fitted outlines in the frame's own colours: the best scene of them, world colours or not
        own = shapes.render_float(fit.scene, h, colours=core_colours(img, fit.objects))
        own_rms = float(np.sqrt(np.mean((img - own) ** 2)))
        if BLEND_MIN <= min(wa, wb) <= BLEND_MAX and mix_rms < own_rms:
            return "blend"
    if _wrong_colour(img, fit, a, b):
        return "wrong colour"
    if not fit.valid:
        return "wrong shape"
    if _copy_of(fit, a, b, f):
        return "copy of a parent"
    return "off-path"
