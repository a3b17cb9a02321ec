"""Engine speed: UNet work per delivered frame and seconds per frame (not a test; numbers for notes).

    python benchmarks/engine_speed.py [--sd-frames 5] [--sd-steps 20] [--skip-sd] [--determinism]

1. Planned UNet evaluations per in-between frame for the reference's settings and ours (exact
   counts from the plan, no model needed).
2. The tiny test checkpoint: a 17-frame morph, 50 steps, guidance on, one candidate; then each model
   family's tiny checkpoint (SD, SDXL) through `latentween morph` at its default settings, the
   evaluations per frame read from the manifest.
3. A randomly initialised SD-1.5-architecture UNet (859.5M parameters) with SD's VAE and a CLIP-L
   text encoder at 256x256 (32x32 latents): a short morph, timed.
4. --determinism: the SD UNet's forward time at batch 2 and 8 with the previous design's
   batch-invariant CPU settings (MKL strict reproducibility, ATen convolutions, NCHW copies) against
   what the fixed-chunk design allows (oneDNN, optionally channels-last), each in a fresh process,
   side by side in one run.
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



def planned_evaluations(frames: int, steps: int, min_noise: float, max_noise: float, candidates, guidance: bool) -> float:
    from latentween.plan import ddim_index, make_plan

    plan = make_plan([i / (frames - 1) for i in range(frames)], min_noise, max_noise)
    rows = sum((ddim_index(f.noise, steps) + 1) * candidates(f.level) * (2 if guidance else 1)
               for level in plan for f in level)
    return rows / (frames - 2)


def section_plan() -> None:
    from latentween.plan import reference_candidates
    from latentween.settings import MorphSettings

    steps = MorphSettings().steps
    print("## UNet evaluations per in-between frame (from the plan, without early pruning)")
    print("| settings | evaluations/frame |")
    print("|---|---|")
    rows = [
        ("reference: 17 frames, 200 steps, 0.30-0.55, 8..3 candidates, guidance", 17, 200, reference_candidates),
        (f"ours: 17 frames, {steps} steps, 0.30-0.55, 8..3 candidates, guidance", 17, steps, reference_candidates),
        (f"ours, --candidates 1: 17 frames, {steps} steps, guidance", 17, steps, lambda level: 1),
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
        section_families(Path(tmp))


def section_families(tiny: Path) -> None:
    """Each family's tiny checkpoint at the default settings (CLIP ranking with the tiny CLIP)."""
    import json

    sys.path.insert(0, str(ROOT / "tests"))
    from conftest import disk_image, write_png
    from latentween.cli import main

    a = write_png(tiny / "a.png", disk_image((20, 30), (200, 30, 30)))
    b = write_png(tiny / "b.png", disk_image((44, 34), (30, 30, 200)))
    print("## Model families at their default settings: 17 frames, 64x64, tiny checkpoints")
    from latentween.testing.tiny_flux import write_tiny_flux

    schnell = tiny / "flux-schnell"
    if not (schnell / "model_index.json").is_file():
        write_tiny_flux(schnell, guidance_embeds=False)  # no guidance embedding: schnell's defaults
    print("| family | model | UNet/transformer evaluations/frame (manifest) | seconds/frame |")
    print("|---|---|---|---|")
    for family, model in (("sd", tiny), ("sdxl", tiny / "sdxl"), ("flux", tiny / "flux"), ("flux-schnell", schnell)):
        out = tiny / f"out-{family}"
        main(["morph", str(a), str(b), "--out", str(out), "--model", str(model), "--frames", "17", "--seed", "1",
              "--clip-model", str(tiny / "clip"), "--quiet"])
        manifest = json.loads((out / "manifest.json").read_text())
        seconds = manifest["timings"]["generate_s"] / 15
        print(f"| {manifest['model']['family']} | {family} tiny | {manifest['unet']['evaluations_per_frame']} | "
              f"{seconds:.3f} |")
    print()


def sd15_components():
    """Components of a randomly initialised SD-1.5-architecture model (as the model manager returns them)."""
    import torch
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from latentween.models import Components, ModelSource, configure_determinism
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
    return Components(ModelSource("random SD-1.5 architecture", "folder", ""), unet, vae, text, tokenizer,
                      dict(scheduler.config), torch.device("cpu"), torch.float32)


def section_sd(frames: int, steps: int, max_batch: int) -> None:
    from latentween.pipeline import InterpolationPipeline

    components = sd15_components()
    params = sum(p.numel() for p in components.unet.parameters()) / 1e6
    pipe = InterpolationPipeline.from_components(components, scheduler="ddim", max_batch=max_batch)
    s, rows, calls = timed_morph(pipe, 256, frames, steps)
    print(f"## SD-1.5-architecture UNet ({params:.1f}M parameters, random weights), 256x256, {frames} frames, "
          f"{steps} steps, guidance 7.5, 1 candidate, max_batch {max_batch}")
    print(f"seconds/frame {s:.2f} | UNet evaluations/frame {rows:.1f} | UNet calls/frame {calls:.1f} | "
          f"seconds/evaluation {s / rows:.3f}")
    print()


_FORWARD = r"""
import sys, time
import torch
from diffusers import UNet2DConditionModel
config, batch = sys.argv[1], int(sys.argv[2])
torch.manual_seed(0)
u = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
if config == "old":
    # the previous design: ATen convolutions and plain NCHW inputs for batch-invariant kernels
    torch.backends.mkldnn.enabled = False
    for m in u.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.GroupNorm)):
            m.register_forward_pre_hook(lambda mod, args: (args[0].contiguous(),) + tuple(args[1:]))
if config == "channels-last":
    u = u.to(memory_format=torch.channels_last)
x, c = torch.randn(batch, 4, 32, 32), torch.randn(batch, 77, 768)
if config == "bf16":
    u, x, c = u.to(torch.bfloat16), x.to(torch.bfloat16), c.to(torch.bfloat16)
with torch.inference_mode():
    u(x, 500, c)
    best = min((lambda t0: (u(x, 500, c), time.perf_counter() - t0)[1])(time.perf_counter()) for _ in range(3))
print(best)
"""

# (label, config, extra environment); MKL_CBWR=AVX2,STRICT was the previous design's MKL setting
_CONFIGS = [
    ("old: ATen convolutions, NCHW, MKL_CBWR=AVX2,STRICT", "old", {"MKL_CBWR": "AVX2,STRICT"}),
    ("new: oneDNN convolutions (PyTorch defaults)", "new", {}),
    ("new + MKL_CBWR=AVX2,STRICT", "new", {"MKL_CBWR": "AVX2,STRICT"}),
    ("new + channels_last", "channels-last", {}),
    ("new, bfloat16 weights (--dtype bfloat16)", "bf16", {}),
]


def section_determinism(batches=(2, 8)) -> None:
    """Each configuration in a fresh process (MKL reads its settings at load), side by side."""
    base = {k: v for k, v in os.environ.items() if k != "MKL_CBWR"}
    print("## CPU kernels: SD-1.5-architecture UNet forward, 32x32 latents (256 px), best of 3, seconds")
    print("| configuration | " + " | ".join(f"batch {b}" for b in batches) + " |")
    print("|---|" + "---|" * len(batches))
    times = {}
    for label, config, extra in _CONFIGS:
        for batch in batches:
            out = subprocess.run([sys.executable, "-c", _FORWARD, config, str(batch)], env={**base, **extra},
                                 capture_output=True, text=True, check=True)
            times[label, batch] = float(out.stdout.strip().splitlines()[-1])
        print(f"| {label} | " + " | ".join(f"{times[label, b]:.2f}" for b in batches) + " |")
    old = _CONFIGS[0][0]
    for label, _, _ in _CONFIGS[1:]:
        print(f"speed-up of {label!r} over the old design: " +
              ", ".join(f"batch {b} {times[old, b] / times[label, b]:.2f}x" for b in batches))
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
