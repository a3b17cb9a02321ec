"""Engine speed: UNet work per delivered frame and seconds per frame (not a test; numbers for notes).

    python benchmarks/engine_speed.py [--sd-frames 5] [--sd-steps 20] [--skip-sd] [--determinism]

1. Planned UNet evaluations per in-between frame for the reference's settings and ours (exact
   counts from the plan, no model needed).
2. The tiny test checkpoint: a 17-frame morph, 50 steps, guidance on, one candidate.
3. A randomly initialised SD-1.5-architecture UNet (859.5M parameters) with SD's VAE and a CLIP-L
   text encoder at 256x256 (32x32 latents): a short morph, timed.
4. --determinism: the SD UNet's batch-2 forward time with the batch-invariant CPU settings
   (MKL strict reproducibility + ATen convolutions) against PyTorch's defaults, each in a fresh
   process, side by side in one run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))

import latentween  # noqa: E402,F401  (sets MKL_CBWR before torch loads)


def planned_evaluations(frames: int, steps: int, min_noise: float, max_noise: float, candidates, guidance: bool) -> float:
    from latentween.plan import ddim_index, make_plan

    plan = make_plan([i / (frames - 1) for i in range(frames)], min_noise, max_noise)
    rows = sum((ddim_index(f.noise, steps) + 1) * candidates(f.level) * (2 if guidance else 1)
               for level in plan for f in level)
    return rows / (frames - 2)


def section_plan() -> None:
    from latentween.plan import reference_candidates

    print("## UNet evaluations per in-between frame (from the plan)")
    print("| settings | evaluations/frame |")
    print("|---|---|")
    rows = [
        ("reference: 17 frames, 200 steps, 0.30-0.55, 8..3 candidates, guidance", 17, 200, reference_candidates),
        ("ours default: 17 frames, 50 steps, 0.30-0.55, 8..3 candidates, guidance", 17, 50, reference_candidates),
        ("ours, --candidates 1: 17 frames, 50 steps, guidance", 17, 50, lambda level: 1),
    ]
    for name, frames, steps, cands in rows:
        print(f"| {name} | {planned_evaluations(frames, steps, 0.30, 0.55, cands, True):.1f} |")
    print()


def timed_morph(pipe, size: int, frames: int, steps: int) -> tuple[float, float, float]:
    import numpy as np

    from latentween.pipeline import InterpolationRequest

    rng = np.random.default_rng(0)
    images = [rng.random((size, size, 3), dtype=np.float32) for _ in range(2)]
    request = InterpolationRequest(fractions=[i / (frames - 1) for i in range(frames)], seed=0, steps=steps,
                                   prompt="a photo", negative="blurry")
    pipe(images, InterpolationRequest(fractions=[0, 0.5, 1], seed=0, steps=2))  # warm-up
    pipe.counter.calls = pipe.counter.rows = 0
    start = time.perf_counter()
    pipe(images, request)
    seconds = time.perf_counter() - start
    new = frames - 2
    return seconds / new, pipe.counter.rows / new, pipe.counter.calls / new


def section_tiny() -> None:
    from latentween.models import ModelManager
    from latentween.pipeline import InterpolationPipeline
    from latentween.testing.tiny import write_tiny_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        write_tiny_checkpoint(tmp)
        components = ModelManager().get(tmp)
        pipe = InterpolationPipeline.from_components(components, max_batch=8)
        s, rows, calls = timed_morph(pipe, 64, 17, 50)
    print("## Tiny checkpoint, 64x64, 17 frames, 50 steps, guidance 7.5, 1 candidate, max_batch 8")
    print(f"seconds/frame {s:.3f} | UNet evaluations/frame {rows:.1f} | UNet calls (batched forwards)/frame {calls:.1f}")
    print()


def sd15_components():
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from latentween.models import configure_determinism, make_batch_invariant
    from latentween.testing.tiny import _build_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, _ = _build_tokenizer(Path(tmp))
    tokenizer.model_max_length = 77
    text = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_attention_heads=12,
                                        num_hidden_layers=12, max_position_embeddings=77))
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    configure_determinism(torch.device("cpu"))
    for m in (unet, vae, text):
        m.eval().requires_grad_(False)
        make_batch_invariant(m)
    return unet, vae, text, tokenizer, scheduler


def section_sd(frames: int, steps: int, max_batch: int) -> None:
    from latentween.pipeline import InterpolationPipeline

    unet, vae, text, tokenizer, scheduler = sd15_components()
    params = sum(p.numel() for p in unet.parameters()) / 1e6
    pipe = InterpolationPipeline(unet, vae, text, tokenizer, scheduler, max_batch=max_batch)
    s, rows, calls = timed_morph(pipe, 256, frames, steps)
    print(f"## SD-1.5-architecture UNet ({params:.1f}M parameters, random weights), 256x256, {frames} frames, "
          f"{steps} steps, guidance 7.5, 1 candidate, max_batch {max_batch}")
    print(f"seconds/frame {s:.2f} | UNet evaluations/frame {rows:.1f} | UNet calls/frame {calls:.1f} | "
          f"seconds/evaluation {s / rows:.3f}")
    print()


_FORWARD = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
if sys.argv[2] == "1":
    import latentween
import torch
from diffusers import UNet2DConditionModel
if sys.argv[2] == "1":
    from latentween.models import configure_determinism, make_batch_invariant
torch.manual_seed(0)
u = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
if sys.argv[2] == "1":
    configure_determinism(torch.device("cpu")); make_batch_invariant(u)
x, c = torch.randn(2, 4, 32, 32), torch.randn(2, 77, 768)
with torch.inference_mode():
    u(x, 500, c)
    best = min((lambda t0: (u(x, 500, c), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
print(best)
"""


def section_determinism() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    times = {}
    for label, flag in (("batch-invariant (ours)", "1"), ("PyTorch defaults", "0")):
        out = subprocess.run([sys.executable, "-c", _FORWARD, str(ROOT / "engine"), flag], env=env,
                             capture_output=True, text=True, check=True)
        times[label] = float(out.stdout.strip().splitlines()[-1])
    ours, default = times["batch-invariant (ours)"], times["PyTorch defaults"]
    print("## Cost of bit-identical batching on the CPU: SD-1.5 UNet forward, batch 2, 32x32 latents, best of 3")
    print(f"ours {ours:.2f} s | defaults {default:.2f} s | ratio ours/defaults {ours / default:.2f}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sd-frames", type=int, default=5)
    parser.add_argument("--sd-steps", type=int, default=20)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--skip-sd", action="store_true")
    parser.add_argument("--determinism", action="store_true")
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, MKL_CBWR={os.environ.get('MKL_CBWR')}\n")
    section_plan()
    section_tiny()
    if not args.skip_sd:
        section_sd(args.sd_frames, args.sd_steps, args.max_batch)
    if args.determinism:
        section_determinism()


if __name__ == "__main__":
    main()
