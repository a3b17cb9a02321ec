"""Issue 17: ours-aligned in the toy world with the ranking and appearance settings `latentween eval` does not set.

Runs the eval's pairs (toyworld.worlds.Disks.make_pairs, same seed, same scorer) through run_morph once per
variant and reports on-manifold / true in-between overall, per position, and separately for the pairs
whose keyframe hues differ by 90 degrees or more ("distant") and the rest ("near"). Variant `base`
reproduces `latentween eval --schemes ours-aligned` (a check that the harness matches the eval).

    .venv/bin/python benchmarks/issue17_eval.py --pairs 50 --out /tmp/i17 \\
        base: stats:appearance=stats cons3:candidates=3,choose=consistency,prune_at=0

A variant is NAME:KEY=VALUE,... of MorphSettings fields; the extra key `result_stats=1` (an experiment,
no setting) imposes the interpolated keyframe statistics on each frame's finished latent instead, and
`start_stats=zt` or `start_stats=mean` try other starts (start_stats_patch).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DISTANT = 90.0  # degrees of hue between the keyframes


def hue_gap(a: float, b: float) -> float:
    """Circular hue difference in degrees, 0..180."""
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, rest = text.partition(":")
    values = {}
    for part in filter(None, rest.split(",")):
        key, _, value = part.partition("=")
        values[key] = value
    return name, values


def result_stats_patch():
    """Experiment: AdaIN each finished frame latent to the keyframes' statistics at its fraction (on the
    result rather than on the start). Wraps the pipeline's _start (keyframe latents) and _denoise (z0)."""
    import torch

    from latentween import pipeline as P
    from latentween.appearance import adain, interpolated_stats

    keys = {}
    start, denoise = P.InterpolationPipeline._start, P.InterpolationPipeline._denoise

    def _start(self, images, request, done):
        latents, text = start(self, images, request, done)
        keys["a"], keys["b"] = latents[0], latents[len(request.fractions) - 1]
        return latents, text

    def _denoise(self, chunk, *args, **kwargs):
        rows, z0, captured = denoise(self, chunk, *args, **kwargs)
        request = args[5]
        out = []
        for i, r in enumerate(rows):
            f = request.fractions[chunk[r].frame.index]
            out.append(adain(z0[i:i + 1], *interpolated_stats(keys["a"][None], keys["b"][None], f))[0])
        return rows, (torch.stack(out) if out else z0), captured

    P.InterpolationPipeline._start, P.InterpolationPipeline._denoise = _start, _denoise
    return lambda: (setattr(P.InterpolationPipeline, "_start", start), setattr(P.InterpolationPipeline, "_denoise", denoise))


def start_stats_patch(mode: str):
    """Experiments on the start (not settings): `zt` imposes on the noised start z_t the statistics of the
    keyframes noised with the frame's own noise, interpolated at its fraction (DiffMorpher applies AdaIN to
    its noisy latents); `mean` moves only the channel means of the parents' blend (std left as it is)."""
    from latentween import schemes
    from latentween.appearance import adain, channel_stats, interpolated_stats
    from latentween.method import add_noise, noise_interpolate, slerp

    original = schemes.STARTS["ours"]

    def ours(s, row, eps):
        frame = row.frame
        left, right = schemes._ours_parents(s, frame)
        key_a, key_b, f = s.latents[0][None], s.latents[s.last][None], s.fractions[frame.index]
        if mode == "mean":
            mean, _ = interpolated_stats(key_a, key_b, f)
            shift = mean - channel_stats(slerp(left, right, frame.local_fraction))[0]
            left, right = left + shift, right + shift
        z_t = noise_interpolate(left, right, frame.local_fraction, eps[None], *s.noise)
        if mode == "zt":
            z_t = adain(z_t, *interpolated_stats(add_noise(key_a, eps[None], *s.noise),
                                                 add_noise(key_b, eps[None], *s.noise), f))
        return z_t

    schemes.STARTS["ours"] = ours
    return lambda: schemes.STARTS.__setitem__("ours", original)


def run_variant(name, values, pairs, files, args, manager, out: Path) -> dict:
    from latentween.images import read_image
    from latentween.morph import run_morph
    from latentween.settings import MorphSettings, RuntimeSettings
    from latentween.toyworld.evaluate import SchemeResult, _read_rgb
    from latentween.toyworld.worlds import WORLDS

    values = dict(values)
    patched = values.pop("result_stats", None)
    start_mode = values.pop("start_stats", None)
    settings = MorphSettings(**{"model": "toy", "frames": args.frames, "seed": 0, "steps": 50, "scheduler": "ddim",
                                "guidance": 1.0, "scheme": "ours", "candidates": 1, "align": "features", **values})
    fractions = settings.frame_fractions()
    groups = {k: SchemeResult(name, fractions) for k in ("all", "distant", "near")}
    undo = result_stats_patch() if patched else start_stats_patch(start_mode) if start_mode else None
    started, per_pair = time.perf_counter(), []
    try:
        for k, ((a, b), (fa, fb)) in enumerate(zip(pairs, files)):
            folder = out / "runs" / name / f"{k:03d}"
            run_morph([read_image(fa), read_image(fb)], folder, settings, RuntimeSettings(max_batch=16), manager)
            manifest = json.loads((folder / "manifest.json").read_text())
            images = [_read_rgb(folder / e["file"]) for e in manifest["frames"]]
            gap = hue_gap(a.hue, b.hue)
            for group in ("all", "distant" if gap >= DISTANT else "near"):
                WORLDS["disks"].score(groups[group], images, fractions, (a, b))
            per_pair.append({"pair": k, "hue_gap": round(gap, 1), "on": groups["all"].on[-1],
                             "lambda": groups["all"].lam[-1]})
            print(f"{name}: {k + 1}/{len(pairs)}", file=sys.stderr, flush=True)
    finally:
        if undo:
            undo()
    experiment = {"result_stats": patched} if patched else {"start_stats": start_mode} if start_mode else {}
    report = {"settings": values | experiment,
              "seconds": time.perf_counter() - started, "pairs": per_pair}
    for group, result in groups.items():
        if result.on:
            s = result.summary()
            report[group] = {"pairs": len(result.on), "on_manifold": s["on_manifold"],
                             "true_inbetween": s["true_inbetween"], "per_position": s["per_position"]}
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="+", metavar="NAME:KEY=VALUE,...")
    parser.add_argument("--pairs", type=int, default=50)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    from latentween.models import ModelManager
    from latentween.settings import RuntimeSettings
    from latentween.toyworld.evaluate import write_keyframes
    from latentween.toyworld.worlds import WORLDS

    out = Path(args.out)
    pairs = WORLDS["disks"].make_pairs(args.pairs, 0)
    files = write_keyframes(out / "keyframes", pairs)
    manager = ModelManager(RuntimeSettings())
    reports = {}
    for text in args.variants:
        name, values = parse_variant(text)
        reports[name] = run_variant(name, values, pairs, files, args, manager, out)
        (out / "report.json").write_text(json.dumps(reports, indent=2))
    for name, r in reports.items():
        for group in ("all", "distant", "near"):
            if group in r:
                g = r[group]
                positions = " ".join(f"{p}:{v['on_manifold']:.2f}/{v['true_inbetween']:.2f}"
                                     for p, v in g["per_position"].items())
                print(f"{name:10s} {group:8s} n={g['pairs']:3d} on {g['on_manifold']:.3f} true {g['true_inbetween']:.3f} | {positions}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
