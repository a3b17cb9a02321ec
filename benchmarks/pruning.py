"""Early candidate pruning in the toy world, judged by its analytic scorer (not a test; for notes):

    python benchmarks/pruning.py [--pairs 20] [--frames 9] [--candidates 4] [--prune-at 0.2,0.4,0.6]

For every frame, the same candidates are made twice from the same seed: once to the end (the pick a
full run makes: the best analytic score among the finished candidates) and once pruned at
`--prune-at` (the pick made on the previews of the predicted clean latents). The score is the toy
world's "true in-between" measure: on-manifold, then closeness of the fitted disk's position between
the keyframes' to the frame's fraction (toyworld.metrics). Reported: how often the early pick is the
full run's pick, how often it is a true in-between when the full pick is, and the UNet evaluations
saved, from the manifest-style counts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))


def analytic_score(image: np.ndarray, fraction: float, ka, kb) -> float:
    from latentween.toyworld import metrics, scorer

    fit = scorer.fit(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    if not fit.on_manifold or fit.params is None:
        return -10.0
    return -abs(metrics.inbetweenness(fit.params, ka, kb) - fraction)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--prune-at", default="0.2,0.4,0.6")
    args = parser.parse_args()
    from latentween.models import ModelManager
    from latentween.pipeline import InterpolationPipeline, InterpolationRequest
    from latentween.toyworld import world, worlds

    components = ModelManager().get("toy")
    pipe = InterpolationPipeline.from_components(components, max_batch=16)
    fractions = [i / (args.frames - 1) for i in range(args.frames)]
    cuts = [float(v) for v in args.prune_at.split(",")]
    agree = {c: [] for c in cuts}
    good = {c: [] for c in cuts}
    cost = {c: 0 for c in cuts}
    full_cost = 0
    for a, b in worlds.WORLDS["disks"].make_pairs(args.pairs, seed=1):
        keys = [world.render(a).astype(np.float32) / 255, world.render(b).astype(np.float32) / 255]
        ka, kb = a, b

        def chooser(frame, images, record):
            scores = [analytic_score(im, fractions[frame.index], ka, kb) for im in images]
            record[frame.index] = scores
            return int(np.argmax(scores)), scores

        base = dict(fractions=fractions, seed=3, steps=args.steps, guidance=1.0,
                    candidates=lambda level: args.candidates)
        full: dict = {}
        results = {r.index: r for r in pipe(keys, InterpolationRequest(**base), chooser=lambda f, im: chooser(f, im, full))}
        full_cost += sum(r.info["unet"]["evaluations"] for r in results.values())
        for cut in cuts:
            early: dict = {}
            pruned = pipe(keys, InterpolationRequest(**base, prune_at=cut, rank_early=True),
                          chooser=lambda f, im: chooser(f, im, early))
            cost[cut] += sum(r.info["unet"]["evaluations"] for r in pruned)
            for r in pruned:
                # parents differ once an earlier pick differs: compare where both runs saw the same parents
                if all(results[p].info["chosen"] == next(x for x in pruned if x.index == p).info["chosen"]
                       for p in r.info["parents"] if p in results):
                    agree[cut].append(r.info["chosen"] == results[r.index].info["chosen"])
                    if max(full[r.index]) > -0.1:  # the full run's pick is a true in-between
                        good[cut].append(analytic_score(r.image, r.fraction, ka, kb) > -0.1)
    print(f"## Early pruning in the toy world: {args.pairs} pairs x {args.frames - 2} frames, {args.candidates} "
          f"candidates, {args.steps} steps (dpmpp-2m), guidance 1, judged by the analytic scorer")
    print("| prune at | early pick = full pick | true in-between kept (where the full pick is one) | "
          "UNet evaluations vs no pruning |\n|---|---|---|---|")
    for cut in cuts:
        print(f"| {cut} | {np.mean(agree[cut]):.2f} ({len(agree[cut])} frames) | {np.mean(good[cut]):.2f} | "
              f"{cost[cut] / full_cost:.2f} |")


if __name__ == "__main__":
    main()
