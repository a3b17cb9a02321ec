"""The fast path's three goals as ratios (not a test; numbers for notes and the README):

    python benchmarks/fast_path.py [--frames 17] [--size 256] [--candidates 1] [--skip-sd]

P1 cost: UNet evaluations per delivered in-between frame (both guidance halves, every candidate),
   exact from the plan for the paper's settings, our defaults and --preset draft, and as recorded in
   the manifest of a real run on the tiny test checkpoint.
P2 overhead: wall time of a morph against the summed time of its model forwards (UNet, VAE encoder
   and decoder, text encoder; hooks around each module), SD-1.5-architecture random weights.
P4 memory: peak RSS of that run (a fresh process) against the bytes of the loaded weights.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT / "benchmarks"))


def planned(frames: int, steps: int, candidates, prune_at, keep: int = 1, halves: int = 2) -> float:
    """Evaluations per in-between frame from the plan, with early pruning as the pipeline does it."""
    from latentween.plan import ddim_index, make_plan

    plan = make_plan([i / (frames - 1) for i in range(frames)], 0.30, 0.55)
    total = 0
    for level in plan:
        for f in level:
            n, c = ddim_index(f.noise, steps) + 1, candidates(f.level)
            cut = max(1, round(prune_at * n)) if prune_at else n
            total += halves * (c * n if c <= keep or cut >= n else c * cut + keep * (n - cut))
    return total / (frames - 2)


def section_p1(frames: int) -> None:
    from latentween.plan import reference_candidates
    from latentween.settings import PRESETS, MorphSettings

    d = MorphSettings()
    paper = planned(frames, 200, reference_candidates, None)
    ours = planned(frames, d.steps, reference_candidates, d.prune_at, d.keep)
    draft = planned(frames, PRESETS["draft"]["steps"], lambda level: 1, None)
    print(f"## P1: UNet evaluations per in-between frame, {frames} frames, guidance on (from the plan)")
    print("| settings | evaluations/frame | ratio to the paper |\n|---|---|---|")
    print(f"| paper: DDIM 200, 8..3 candidates | {paper:.1f} | 1 |")
    print(f"| defaults: {d.scheduler} -> dpmpp-2m {d.steps}, 8..3 candidates pruned at {d.prune_at} to {d.keep} | "
          f"{ours:.1f} | 1/{paper / ours:.1f} |")
    print(f"| --preset draft: {PRESETS['draft']} | {draft:.1f} | 1/{paper / draft:.1f} |")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "latentween.testing.tiny", tmp], check=True, capture_output=True)
        sys.path.insert(0, str(ROOT / "tests"))
        from conftest import disk_image, write_png

        a = write_png(Path(tmp) / "a.png", disk_image((20, 30), (200, 30, 30)))
        b = write_png(Path(tmp) / "b.png", disk_image((44, 34), (30, 30, 200)))
        from latentween.cli import main

        for label, extra in (("defaults", []), ("--preset draft", ["--preset", "draft"])):
            out = Path(tmp) / label.replace(" ", "")
            main(["morph", str(a), str(b), "--out", str(out), "--model", tmp, "--frames", str(frames), "--seed", "1",
                  "--clip-model", str(Path(tmp) / "clip"), "--align", "none", "--quiet", *extra])
            unet = json.loads((out / "manifest.json").read_text())["unet"]
            print(f"measured on the tiny checkpoint, {label}: {unet['evaluations_per_frame']} evaluations/frame "
                  f"(manifest), {unet['calls']} UNet calls in all")
    print()


_RUN = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1]); sys.path.insert(0, sys.argv[1] + "/../benchmarks")
frames, size, candidates = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
import numpy as np, torch
from engine_speed import sd15_components
from latentween.pipeline import InterpolationPipeline, InterpolationRequest
from latentween.morph import candidate_counter
from latentween.settings import MorphSettings
import diffusers, transformers
def rss():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmRSS")).split()[1]) * 1024
imported = rss()
components = sd15_components()
unet, vae, text = components.unet, components.vae, components.text_encoder
weights = sum(p.numel() * p.element_size() for m in (unet, vae, text) for p in m.parameters())
spent = {}
def timed(name, module):
    def pre(m, args):
        m._t0 = time.perf_counter()
    def post(m, args, out):
        spent[name] = spent.get(name, 0.0) + time.perf_counter() - m._t0
    module.register_forward_pre_hook(pre); module.register_forward_hook(post)
for name, module in (("unet", unet), ("vae encoder", vae.encoder), ("vae quant", vae.quant_conv),
                     ("vae decoder", vae.decoder), ("vae post-quant", vae.post_quant_conv), ("text encoder", text)):
    timed(name, module)
d = MorphSettings()
pipe = InterpolationPipeline.from_components(components, scheduler=d.scheduler, max_batch=8)
rng = np.random.default_rng(0)
images = [rng.random((size, size, 3), dtype=np.float32) for _ in range(2)]
request = InterpolationRequest(fractions=[i / (frames - 1) for i in range(frames)], seed=0, steps=d.steps,
                               guidance=d.guidance, prompt="a photo", negative="blurry",
                               candidates=candidate_counter(candidates))
start = time.perf_counter()
pipe(images, request)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "forwards": spent, "weights": weights, "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "imported_rss": imported,
                  "evaluations": pipe.counter.rows, "threads": torch.get_num_threads()}))
"""


def section_p2_p4(frames: int, size: int, candidates: int) -> None:
    out = subprocess.run([sys.executable, "-c", _RUN, str(ROOT / "engine"), str(frames), str(size), str(candidates)],
                         capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    forwards = sum(r["forwards"].values())
    print(f"## P2/P4: SD-1.5-architecture random weights, {size} px, {frames} frames, defaults but "
          f"--candidates {candidates}, CPU, {r['threads']} threads (a fresh process)")
    print("| model forward | seconds |\n|---|---|")
    for name, seconds in r["forwards"].items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"P2 overhead: wall {r['wall']:.1f} s / model forwards {forwards:.1f} s = {r['wall'] / forwards:.3f} "
          f"(goal <= 1.10); {r['evaluations'] / (frames - 2):.1f} UNet evaluations per frame")
    print(f"P4 memory: peak RSS {r['peak_rss'] / 2**30:.2f} GiB / weights {r['weights'] / 2**30:.2f} GiB = "
          f"{r['peak_rss'] / r['weights']:.3f} (goal <= 1.30)")
    # The interpreter with torch, diffusers and transformers imported holds this much before any weight
    # exists (most of it the libraries' code pages); what the run itself adds is the part we control.
    above = r['peak_rss'] - r['imported_rss']
    print(f"P4 without the libraries: (peak RSS {r['peak_rss'] / 2**30:.2f} - {r['imported_rss'] / 2**30:.2f} GiB "
          f"after importing torch/diffusers/transformers) / weights = {above / r['weights']:.3f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=17)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=1)
    parser.add_argument("--skip-sd", action="store_true")
    args = parser.parse_args()
    section_p1(args.frames)
    if not args.skip_sd:
        section_p2_p4(args.frames, args.size, args.candidates)


if __name__ == "__main__":
    main()
