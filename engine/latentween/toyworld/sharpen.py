"""Fine-tune a toy model's VAE decoder so that generated frames are as crisp as the keyframes.

    python -m latentween.toyworld.sharpen --model DIR [--minutes M | --steps N] [--seed S]

Why (issue 17, "no pop at the ends"): a keyframe is the input file, but every in-between is decoded,
and the shipped decoder (410 VAE steps of an MSE loss) draws a world image's 0.8 px edge 2.4 px wide
with a faint light halo, so the first generated frame visibly softens. The encoder and quant_conv
stay frozen, so the latents the UNet was trained on, and the UNet itself, stay valid; only how
latents are drawn changes. The loss is L1 on pixels plus L1 on Sobel gradients (MSE alone prefers
the blurred edge). The decoder sees posterior samples of fresh world images with a little extra
latent noise (LATENT_NOISE of the latents' std), since the UNet's latents are never exactly the
encoder's. As train.py: a time budget becomes a step count once, the run is a pure function of
(seed, steps), and the counts go into the folder's train_log.json ("decoder_sharpen").
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Optional

if __name__ == "__main__":
    from latentween.runtime import configure_environment

    configure_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from . import train  # noqa: E402

LR = 5e-4
BATCH = 32
GRADIENT_WEIGHT = 1.0
LATENT_NOISE = 0.05
_SOBEL = torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]) / 4.0


def image_gradients(x: torch.Tensor) -> torch.Tensor:
    """Sobel x and y derivatives of each channel of an NCHW batch (2C channels)."""
    c = x.shape[1]
    kernel = torch.stack([_SOBEL, _SOBEL.T])[:, None].repeat(c, 1, 1, 1).to(x)
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel, groups=c)


def sharpen_loss(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(recon, x) + GRADIENT_WEIGHT * F.l1_loss(image_gradients(recon), image_gradients(x))


def decoder_parameters(vae) -> list:
    return list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())


def sharpen_decoder(vae, seed: int, minutes: float, steps: Optional[int], world_name: str = "disks") -> dict:
    """Train the decoder (and post_quant_conv) of `vae` in place; the encoder is not touched."""
    rng = np.random.default_rng([seed, 5])
    gen = torch.Generator().manual_seed(seed + 5)
    vae.requires_grad_(False)
    params = decoder_parameters(vae)
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=LR, weight_decay=0.0)
    vae.decoder.train()

    def step_fn(step: int, total: int) -> float:
        x, _, _ = train.image_batch(rng, BATCH, world_name)
        with torch.no_grad():
            z = vae.encode(x).latent_dist.sample(generator=gen)
            z = z + LATENT_NOISE * z.std() * torch.randn(z.shape, generator=gen)
        loss = sharpen_loss(vae.decode(z).sample, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    info = train.run_steps("decoder", step_fn, opt, LR, minutes, steps)
    vae.eval().requires_grad_(False)
    return info


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latentween.toyworld.sharpen", description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="a toy model folder (train.py's output); changed in place")
    parser.add_argument("--minutes", type=float, default=8.0, help="training budget in minutes (default: 8)")
    parser.add_argument("--steps", type=int, default=None, help="exact steps (overrides the minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps <= train.WARMUP_STEPS:
        raise SystemExit(f"--steps must be > {train.WARMUP_STEPS}, got {args.steps}")
    log_path = args.model / "train_log.json"
    if not log_path.is_file():
        raise SystemExit(f"{args.model} has no train_log.json: not a folder made by latentween.toyworld.train")
    if args.threads:
        torch.set_num_threads(args.threads)
    from diffusers import AutoencoderKL

    record = json.loads(log_path.read_text())
    world_name = record.get("world", "disks")
    vae = AutoencoderKL.from_pretrained(args.model / "vae")
    before = train.vae_on_manifold(vae, args.seed, world_name=world_name)
    started = time.monotonic()
    info = sharpen_decoder(vae, args.seed, args.minutes, args.steps, world_name)
    info.update(on_manifold_reconstructions_before=before,
                on_manifold_reconstructions=train.vae_on_manifold(vae, args.seed, world_name=world_name),
                wall_minutes=(time.monotonic() - started) / 60.0, seed=args.seed,
                command="python -m latentween.toyworld.sharpen " + " ".join(sys.argv[1:] if argv is None else argv))
    vae.save_pretrained(args.model / "vae", safe_serialization=True)
    config_path = args.model / "vae" / "config.json"  # diffusers records where it loaded from: a local path
    config = json.loads(config_path.read_text())
    config.pop("_name_or_path", None)
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    record["decoder_sharpen"] = info
    log_path.write_text(json.dumps(record, indent=2) + "\n")
    train.log(f"decoder: on-manifold reconstructions {before:.1%} -> {info['on_manifold_reconstructions']:.1%}; "
              f"saved to {args.model / 'vae'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
