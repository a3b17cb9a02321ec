"""Why toy-world hues go the long way round, and the colour fixes tried for it (issue 17).

    python benchmarks/issue17_colour.py latent-path
        decode the slerp of two disks' latents (no UNet) at t = 0.25, 0.5, 0.75 and print the hue
    python benchmarks/issue17_colour.py start pixel|hsv|hybrid --out DIR [--pairs 50]
        the eval's 50 pairs, ours-aligned, 9 frames, dpmpp-2m 40, with each frame's start latent
        changed: pixel = encode the RGB blend of the decoded, aligned parents; hsv = the same blend
        per pixel in HSV with hue on the short arc; hybrid = the aligned parents plus the latent
        difference E(hsv blend) - E(rgb blend)
    python benchmarks/issue17_colour.py vae-penalty --weight W --steps N
        train a disk VAE (train.py's recipe) with W * MSE(latent mean, 1x1 conv of the 4x4-pooled
        pixels) added, then print its latent-path hues

README, "Why frames fail", quotes the results; none of these is in the product.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
from latentween.runtime import configure_environment  # noqa: E402

configure_environment()  # OpenMP's waiting policy must be set before torch loads

import numpy as np  # noqa: E402
import torch  # noqa: E402

PROBES = [(275, 180), (180, 320), (170, 330), (60, 240), (0, 120), (240, 0), (275, 60), (30, 180)]


def _disk(hue: float) -> np.ndarray:
    from latentween.toyworld import world

    return world.render(world.DiskParams(32, 32, 12, hue)).astype(np.float32) / 255


def latent_path(encode, decode) -> None:
    """Hue at the centre of the decoded slerp of two disks' latents, for each probe pair."""
    from latentween.method import slerp
    from latentween.toyworld import world

    for ha, hb in PROBES:
        z = encode([_disk(ha), _disk(hb)])
        hues = []
        for t in (0.25, 0.5, 0.75):
            im = decode(slerp(z[:1], z[1:], t))[0]
            hues.append(f"{world.rgb_to_hue(im[28:36, 28:36].reshape(-1, 3).mean(0)):4.0f}")
        print(f"{ha:3d} -> {hb:3d} (gap {world.hue_distance(ha, hb):5.1f}): {' / '.join(hues)}")


def _pipe():
    from latentween.models import ModelManager
    from latentween.pipeline import InterpolationPipeline

    manager = ModelManager()
    return manager, InterpolationPipeline.from_components(manager.get("toy"))


def _hsv_blend(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    import cv2

    ha, hb = (cv2.cvtColor(np.ascontiguousarray(x, dtype=np.float32), cv2.COLOR_RGB2HSV) for x in (a, b))
    d = (hb[..., 0] - ha[..., 0] + 180) % 360 - 180
    h = np.where(ha[..., 1] < 0.15, hb[..., 0], np.where(hb[..., 1] < 0.15, ha[..., 0], ha[..., 0] + t * d)) % 360
    hsv = np.stack([h, (1 - t) * ha[..., 1] + t * hb[..., 1], (1 - t) * ha[..., 2] + t * hb[..., 2]], -1)
    return np.clip(cv2.cvtColor(hsv.astype(np.float32), cv2.COLOR_HSV2RGB), 0, 1)


def start(mode: str, out: Path, pairs: int) -> None:
    from latentween import schemes
    from latentween.toyworld.evaluate import EvalConfig, run_scheme, write_keyframes
    from latentween.toyworld.worlds import WORLDS

    manager, pipe = _pipe()
    original = schemes._ours_parents

    def parents(s, frame):
        left, right = original(s, frame)
        t = frame.local_fraction
        a, b = pipe.decode_latents(torch.cat([left, right]))
        if mode == "pixel":
            z = pipe.encode_images([(1 - t) * a + t * b]).to(left)
            return z, z
        hsv = _hsv_blend(a, b, t)
        if mode == "hsv":
            z = pipe.encode_images([hsv]).to(left)
            return z, z
        zs = pipe.encode_images([hsv, (1 - t) * a + t * b]).to(left)
        return left + (zs[:1] - zs[1:]), right + (zs[:1] - zs[1:])

    schemes._ours_parents = parents
    config = EvalConfig(pairs=pairs, frames=9, scheduler="dpmpp-2m", steps=40, model="toy", distance=(16.0, 24.0))
    disks = WORLDS["disks"].make_pairs(pairs, 0)
    r = run_scheme("ours-aligned", disks, write_keyframes(out / "keyframes", disks), config, manager, out).summary()
    print(f"{mode}: on-manifold {r['on_manifold']:.3f}, true in-between {r['true_inbetween']:.3f}, failures "
          f"{r['failures']['counts']}, per position {[round(v['true_inbetween'], 2) for v in r['per_position'].values()]}")


def vae_penalty(weight: float, steps: int) -> None:
    import torch.nn.functional as F

    from latentween.toyworld import train

    torch.manual_seed(0)
    vae = train.build_vae(0)
    colour = torch.nn.Conv2d(3, vae.config.latent_channels, 1)
    rng, gen = np.random.default_rng([0, 1]), torch.Generator().manual_seed(1)
    opt = torch.optim.AdamW(list(vae.parameters()) + list(colour.parameters()), lr=2e-3)
    vae.train()

    def step_fn(step, total):
        x, _, _ = train.image_batch(rng, 32)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = (F.mse_loss(recon, x) + train.KL_WEIGHT * posterior.kl().mean()
                + weight * F.mse_loss(posterior.mean, colour(F.avg_pool2d(x, 4))))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    train.run_steps("vae", step_fn, opt, 2e-3, 0.0, steps)
    vae.eval().requires_grad_(False)
    train.make_encoder_deterministic(vae)
    print(f"valid reconstructions {train.vae_on_manifold(vae, 0):.3f}")

    def encode(images):
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2) * 2 - 1
        return vae.encode(x).latent_dist.mean

    def decode(z):
        return [((vae.decode(z).sample[0].permute(1, 2, 0) + 1) / 2).clamp(0, 1).numpy()]

    with torch.no_grad():
        latent_path(encode, decode)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("latent-path")
    p = sub.add_parser("start")
    p.add_argument("mode", choices=("pixel", "hsv", "hybrid"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--pairs", type=int, default=50)
    p = sub.add_parser("vae-penalty")
    p.add_argument("--weight", type=float, default=1.0)
    p.add_argument("--steps", type=int, default=410)
    args = parser.parse_args()
    if args.what == "latent-path":
        _, pipe = _pipe()
        latent_path(pipe.encode_images, pipe.decode_latents)
    elif args.what == "start":
        start(args.mode, args.out, args.pairs)
    else:
        vae_penalty(args.weight, args.steps)


if __name__ == "__main__":
    main()
