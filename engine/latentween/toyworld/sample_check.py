"""Measure a toy-world model: sample with DDIM through diffusers and score every image.

    python -m latentween.toyworld.sample_check --model DIR --n 200 --guidance G [--steps 50] [--seed 0]
    python -m latentween.toyworld.sample_check --world shapes --n 200 --guidance G

Prompts cycle through the palette ("a red disk", "a orange disk", ...). Prints the on-manifold
rate (the scorer accepts the image) and the colour accuracy (the fitted hue names the prompt's
colour; an image with no object counts as wrong), plus the spread of the fitted parameters next
to the world's, so that a model that always draws the same disk shows. `--world shapes` prompts
with the captions of seeded scenes ("a red square and a blue disk") and counts an image valid when
shapes_scorer fits the prompt's objects (kinds, drawing order, colours) with a residual and shape
error within its limits.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

from . import MODEL_DIR, SHAPES_MODEL_DIR, scorer, world
from .defaults import WORLD_NAMES


def load_pipeline(model: Path | str = MODEL_DIR):
    """The model folder through diffusers' ordinary loader (no network needed: it is a local folder)."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(model), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def prompts_for(n: int) -> list[str]:
    return [f"a {world.COLOURS[k % len(world.COLOURS)]} disk" for k in range(n)]


def sample(pipe, prompts: list[str], guidance: float, steps: int = 50, seed: int = 0, batch: int = 50) -> np.ndarray:
    """uint8 images (n, 64, 64, 3), one per prompt; batch b uses generator seed `seed + b`."""
    import torch

    out = []
    for b, start in enumerate(range(0, len(prompts), batch)):
        gen = torch.Generator().manual_seed(seed + b)
        images = pipe(prompt=prompts[start:start + batch], height=world.SIZE, width=world.SIZE,
                      num_inference_steps=steps, guidance_scale=guidance, generator=gen, output_type="np").images
        out.append(world.to_uint8(np.asarray(images)))
    return np.concatenate(out)


def score(images: np.ndarray, prompts: list[str]) -> dict:
    """On-manifold rate, colour accuracy and fitted-parameter spread of images made for `prompts`."""
    fits = [scorer.fit(img) for img in images]
    wanted = [p.split()[1] for p in prompts]
    on = np.array([f.on_manifold for f in fits])
    colour_ok = np.array([f.params is not None and f.params.colour == c for f, c in zip(fits, wanted)])
    fitted = np.array([[f.params.x, f.params.y, f.params.radius] for f in fits if f.on_manifold]).reshape(-1, 3)
    return {
        "n": len(fits),
        "on_manifold": float(on.mean()),
        "colour_accuracy": float(colour_ok.mean()),
        "colour_accuracy_on_manifold": float(colour_ok[on].mean()) if on.any() else 0.0,
        "fitted_mean_xyr": fitted.mean(axis=0).round(2).tolist() if len(fitted) else None,
        "fitted_std_xyr": fitted.std(axis=0).round(2).tolist() if len(fitted) else None,
    }


def shapes_prompts(n: int, seed: int = 0) -> tuple[list[str], list]:
    """Captions of `n` seeded shapes scenes, and the scenes (their kinds and hues are what is asked for)."""
    from . import shapes

    scenes = shapes.sample_scenes(n, seed + 1000)
    return [shapes.caption(s) for s in scenes], scenes


def shapes_score(images: np.ndarray, scenes: list) -> dict:
    """Share of images in which the prompt's objects are found and the scene is valid (shapes_scorer.fit)."""
    from . import shapes_scorer

    fits = [shapes_scorer.fit(img, (s, s)) for img, s in zip(images, scenes)]
    two = np.array([len(s.objects) == 2 for s in scenes])
    valid = np.array([f.valid for f in fits])
    return {"n": len(fits), "on_manifold": float(valid.mean()),
            "on_manifold_one_object": float(valid[~two].mean()) if (~two).any() else None,
            "on_manifold_two_objects": float(valid[two].mean()) if two.any() else None}


def grid(images: np.ndarray, cols: int = 10) -> np.ndarray:
    rows = -(-len(images) // cols)
    canvas = np.full((rows * world.SIZE, cols * world.SIZE, 3), 255, np.uint8)
    for k, img in enumerate(images):
        r, c = divmod(k, cols)
        canvas[r * world.SIZE:(r + 1) * world.SIZE, c * world.SIZE:(c + 1) * world.SIZE] = img
    return canvas


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latentween.toyworld.sample_check", description=__doc__.split("\n")[0])
    parser.add_argument("--world", choices=WORLD_NAMES, default="disks")
    parser.add_argument("--model", type=Path, default=None,
                        help="diffusers folder (default: the world's shipped model, model/ or model_shapes/)")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--guidance", type=float, default=2.0, help="classifier-free guidance scale (1 = off)")
    parser.add_argument("--steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, default=None, help="also save the samples as one PNG")
    args = parser.parse_args(argv)
    if args.n < 1:
        raise SystemExit(f"--n must be >= 1, got {args.n}")

    start = time.monotonic()
    pipe = load_pipeline(args.model or (MODEL_DIR if args.world == "disks" else SHAPES_MODEL_DIR))
    if args.world == "shapes":
        prompts, scenes = shapes_prompts(args.n, args.seed)
    else:
        prompts = prompts_for(args.n)
    images = sample(pipe, prompts, args.guidance, args.steps, args.seed)
    result = shapes_score(images, scenes) if args.world == "shapes" else score(images, prompts)
    result.update(guidance=args.guidance, ddim_steps=args.steps, seed=args.seed, seconds=round(time.monotonic() - start, 1))
    if args.grid is not None:
        import cv2

        cv2.imwrite(str(args.grid), cv2.cvtColor(grid(images), cv2.COLOR_RGB2BGR))
    print(json.dumps(result))
    colour = f", colour accuracy {result['colour_accuracy']:.1%}" if "colour_accuracy" in result else ""
    print(f"on-manifold {result['on_manifold']:.1%}{colour} (n={args.n}, guidance {args.guidance}, DDIM {args.steps})",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
