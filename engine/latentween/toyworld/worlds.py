"""The toy worlds `latentween eval --world` runs: keyframe pairs, rendering and per-frame scoring.

Each world fills the same per-frame facts of a SchemeResult (evaluate.py), so the report's tables
read alike: on-manifold (a valid frame), lambda and the failure kind of every in-between, and the
path measures. The disks world scores each frame's one fitted disk (scorer, metrics); the shapes
world fits the keyframes' objects to each frame (shapes_scorer) and reports, per frame, the object
whose |lambda - f| is largest, so "true in-between" means every object's |lambda - f| <= 0.1.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from . import edges, failures, metrics, scorer, shapes, shapes_failures, shapes_scorer, world


class Disks:
    """One filled disk (world.py); the paper's comparison was first reproduced here."""

    name = "disks"
    model = "toy"
    distance = (16.0, 24.0)
    units = "fitted-parameter px"  # of the path measures (PPL, PDV, steps)

    def make_pairs(self, n: int, seed: int, distance: tuple[float, float] = distance) -> list:
        """Seeded pairs: any colours and radii, centres `distance` px apart (the probe's ~20)."""
        rng = np.random.default_rng(seed)
        pairs = []
        while len(pairs) < n:
            a, b = world.sample_params(rng, 2)
            if distance[0] <= math.hypot(a.x - b.x, a.y - b.y) <= distance[1]:
                pairs.append((a, b))
        return pairs

    def render(self, params) -> np.ndarray:
        return world.render(params)

    def describe(self, distance) -> str:
        return f"centres {distance[0]:.0f}-{distance[1]:.0f} px apart"

    def score(self, result, images: list[np.ndarray], fractions: list[float], pair) -> None:
        """Append one sequence's facts to `result`; the keyframes are fitted from the frames themselves."""
        fits = [scorer.fit(im) for im in images]
        ka, kb = fits[0].params, fits[-1].params
        on, lam, near, kinds = [], [], [], []
        for image, fit, f in zip(images[1:-1], fits[1:-1], fractions[1:-1]):
            kinds.append(failures.classify(image, f, ka, kb, fit))
            result.look_inbetweens.append(edges.frame_measures(image, fit.params))
            on.append(bool(fit.on_manifold))
            if fit.params is None or ka is None or kb is None:
                lam.append(None)
                near.append(None)
            else:
                lam.append(metrics.inbetweenness(fit.params, ka, kb))
                near.append(metrics.keyframe_distance(fit.params, ka, kb))
        result.add_sequence(on, lam, near, kinds)
        result.look_keyframes += [edges.frame_measures(images[i], fits[i].params) for i in (0, -1)]
        if all(f.params is not None for f in fits):
            seq = [f.params for f in fits]
            result.end_steps.append(edges.end_steps(seq))
            result.ppl.append(metrics.path_length(seq))
            result.pdv.append(metrics.path_deviation(seq))
            result.monotone.append(metrics.monotonicity(seq))


class Shapes:
    """Up to two disks, squares and triangles that move, turn, scale and change hue (shapes.py)."""

    name = "shapes"
    model = "toy-shapes"
    distance = (10.0, 20.0)
    units = "the shapes scorer's normalised parameter units"

    def make_pairs(self, n: int, seed: int, distance: tuple[float, float] = distance) -> list:
        """shapes.make_pairs: every object moves `distance` px, turns up to 30 degrees, scales up to 1.25x."""
        return shapes.make_pairs(n, seed, min_shift=distance[0], max_shift=distance[1])

    def render(self, scene) -> np.ndarray:
        return shapes.render(scene)

    def describe(self, distance) -> str:
        return (f"1-2 objects each moving {distance[0]:.0f}-{distance[1]:.0f} px, turning up to 30 "
                f"degrees, scaling up to 1.25x, hue up to 20 degrees; lambda is the worst object's")

    def score(self, result, images: list[np.ndarray], fractions: list[float], pair) -> None:
        """Append one sequence's facts to `result`, fitting the pair's known objects to every frame.

        Path measures are in the scorer's normalised units (shapes_scorer.UNITS), concatenated over
        objects; the look measures (edge width, halo) are the disks world's only."""
        a, b = pair
        fits = [shapes_scorer.fit(im, (a, b)) for im in images]
        on, lam, near, kinds = [], [], [], []
        for image, fit, f in zip(images[1:-1], fits[1:-1], fractions[1:-1]):
            kinds.append(shapes_failures.classify(image, f, a, b, fit))
            on.append(bool(fit.valid))
            if fit.scene is None:
                lam.append(None)
                near.append(None)
                continue
            lambdas = [shapes_scorer.object_lambda(o, oa, ob) for o, oa, ob in zip(fit.objects, a.objects, b.objects)]
            lam.append(max(lambdas, key=lambda v: abs(v - f)))
            near.append(min(_mean_centre_distance(fit.scene, k) for k in (a, b)))
        result.add_sequence(on, lam, near, kinds)
        if all(f.scene is not None for f in fits):
            steps = _unit_steps([f.scene for f in fits], a, b)
            result.end_steps.append((float(steps[0]), float(steps[-1]), float(np.median(steps))))
            result.ppl.append(float(steps.sum()))
            result.pdv.append(float(steps.std()))


def _mean_centre_distance(s: shapes.Scene, k: shapes.Scene) -> float:
    return float(np.mean([math.hypot(o.x - ok.x, o.y - ok.y) for o, ok in zip(s.objects, k.objects)]))


def _unit_steps(seq: Sequence[shapes.Scene], a: shapes.Scene, b: shapes.Scene) -> np.ndarray:
    """Distances between adjacent scenes in normalised units, all objects' parameters together."""
    refs = [0.5 * (oa.size + ob.size) for oa, ob in zip(a.objects, b.objects)]
    return np.array([
        float(np.linalg.norm(np.concatenate([shapes_scorer.param_vector(o1, o0, r)
                                             for o0, o1, r in zip(s0.objects, s1.objects, refs)])))
        for s0, s1 in zip(seq[:-1], seq[1:])])


WORLDS = {"disks": Disks(), "shapes": Shapes()}
