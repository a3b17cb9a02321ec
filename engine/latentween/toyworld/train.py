"""Train the toy world's tiny latent diffusion model on the CPU and save it as a diffusers folder.

    python -m latentween.toyworld.train --out DIR [--minutes-vae M] [--minutes-unet M] [--seed S]
    python -m latentween.toyworld.train --out DIR --steps-vae N --steps-unet N [--seed S]

Recipe and sizes from FACTS.md, "Toy world": (1) a tiny AutoencoderKL 64x64x3 -> 16x16x4, whose
config `scaling_factor` is then set to 1/std of its latents on data; (2) a frozen, randomly
initialised tiny CLIPTextModel over a word-level tokenizer built here; (3) a tiny
UNet2DConditionModel trained with DDPM (1000 steps, scaled_linear 0.00085-0.012, epsilon),
min-SNR-5 weighting, EMA 0.999 and 10% caption dropout (the empty caption is the unconditional
branch of classifier-free guidance). The VAE sees fresh `world` images every step; its
posterior std is then fixed to a small constant (`make_encoder_deterministic`), and the UNet
draws from a pool of 16,384 fresh `world` images encoded once. `--world shapes` trains on `shapes`
scenes and captions instead; the default `disks` run keeps its vocabulary, samples and seeds.

A time budget is turned into a step count once, after a short warm-up, and the run is a pure
function of (seed, steps): `--steps-vae/--steps-unet` with the counts logged in
`train_log.json` repeat a timed run.
"""
from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np

# On a CPU shared with another busy process, OpenMP's default spin-waiting made UNet steps 4-15x
# slower here (2-13 s against 0.8 s per step with passive waiting; 0.4 s on an idle CPU).
# It only takes effect when set before torch loads, so the script sets it here (latentween.runtime);
# importing this module leaves the process alone.
if __name__ == "__main__":
    from latentween.runtime import configure_environment

    configure_environment()

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from . import shapes, world
from .defaults import WORLD_NAMES

MAX_TOKENS = 16
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
WORDS = ("a", "an", "the", "disk", "circle", "on", "light", "background") + world.COLOURS
WARMUP_STEPS = 50
KL_WEIGHT = 1e-6
SNR_GAMMA = 5.0
EMA_DECAY = 0.999
CAPTION_DROPOUT = 0.1
POOL_SIZE = 16384
POSTERIOR_STD = 0.01


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build_tokenizer(world_name: str = "disks"):
    """A word-level tokenizer: '<bos> words <eos>', padded with <pad> to MAX_TOKENS."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    # Appended, not merged: the disks vocabulary (so the text encoder's random init) stays as it was.
    words = WORDS + (shapes.WORDS if world_name == "shapes" else ())
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=MAX_TOKENS)


def build_text_encoder(vocab_size: int, seed: int):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    config = CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_attention_heads=4, num_hidden_layers=2,
        max_position_embeddings=MAX_TOKENS, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    return CLIPTextModel(config).eval().requires_grad_(False)


def build_vae(seed: int):
    from diffusers import AutoencoderKL

    torch.manual_seed(seed)
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, sample_size=world.SIZE,
        block_out_channels=(16, 32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3)


def build_unet(seed: int):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=world.SIZE // 4, in_channels=4, out_channels=4,
        block_out_channels=(32, 64, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=8, cross_attention_dim=32)


def ddpm_scheduler():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                         beta_end=0.012, prediction_type="epsilon")


def ddim_scheduler():
    from diffusers import DDIMScheduler

    return DDIMScheduler(num_train_timesteps=1000, beta_schedule="scaled_linear", beta_start=0.00085,
                         beta_end=0.012, prediction_type="epsilon", steps_offset=1, set_alpha_to_one=False,
                         clip_sample=False, timestep_spacing="leading")


def image_batch(rng: np.random.Generator, n: int, world_name: str = "disks") -> tuple[torch.Tensor, list[str], list]:
    """`n` fresh images of the named world as NCHW float in [-1, 1], their captions and parameters."""
    if world_name == "shapes":
        images, captions, params = shapes.sample_batch(rng, n)
    else:
        params = world.sample_params(rng, n)
        images, captions = world.render_many(params), [world.caption(p) for p in params]
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0, captions, params


def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """Text embeddings exactly as StableDiffusionPipeline.encode_prompt makes them."""
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        return text_encoder(ids)[0]


def lr_factor(step: int, total: int) -> float:
    """Linear warm-up for WARMUP_STEPS, then cosine decay to 0 at `total`."""
    if step < WARMUP_STEPS:
        return (step + 1) / WARMUP_STEPS
    return 0.5 * (1.0 + math.cos(math.pi * (step - WARMUP_STEPS) / max(1, total - WARMUP_STEPS)))


def run_steps(name: str, step_fn: Callable[[int, int], float], optimizer, base_lr: float,
              minutes: float, steps: Optional[int]) -> dict:
    """Call `step_fn(step, total)` for `steps` steps, or for as many as `minutes` allow.

    With a time budget the count is fixed once, from the speed of the warm-up steps, so the
    schedule (and the run) depends on the count only.
    """
    start = time.monotonic()
    total = steps if steps is not None else WARMUP_STEPS + 1
    step, recent = 0, []
    while step < total:
        for group in optimizer.param_groups:
            group["lr"] = base_lr * lr_factor(step, total)
        recent.append(step_fn(step, total))
        step += 1
        elapsed = time.monotonic() - start
        if steps is None and step == WARMUP_STEPS:
            total = max(WARMUP_STEPS + 1, int(minutes * 60.0 / (elapsed / step)))
            log(f"[{name}] {elapsed / step:.3f} s/step -> {total} steps for {minutes} min")
        if step % 100 == 0 or step == total:
            log(f"[{name}] step {step}/{total} loss {np.mean(recent):.5f} lr {optimizer.param_groups[0]['lr']:.2e}"
                f" elapsed {elapsed / 60:.1f} min")
            recent = []
    return {"steps": total, "minutes": (time.monotonic() - start) / 60.0}


def train_vae(vae, seed: int, minutes: float, steps: Optional[int], world_name: str = "disks") -> dict:
    rng = np.random.default_rng([seed, 1])
    gen = torch.Generator().manual_seed(seed + 1)
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    vae.train()

    def step_fn(step: int, total: int) -> float:
        x, _, _ = image_batch(rng, 32, world_name)
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample(generator=gen)).sample
        loss = F.mse_loss(recon, x) + KL_WEIGHT * posterior.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    info = run_steps("vae", step_fn, opt, 2e-3, minutes, steps)
    vae.eval().requires_grad_(False)
    return info


@torch.no_grad()
def make_encoder_deterministic(vae, std: float = POSTERIOR_STD) -> None:
    """Fix the posterior's std to a small constant: `latent_dist.sample()` becomes the mean.

    After a few minutes of training with KL weight 1e-6 the posterior std is still about 0.6 of
    the latents' spread (measured on the first full run), since it starts at 1 and only the
    reconstruction loss pulls it down. A UNet trained on such samples has to model that noise
    too, and anyone encoding keyframes with `.sample()` (diffusers' img2img does) would get it.
    The decoder, trained on noisy samples, reconstructs the means as well (see train_log.json).
    """
    c = vae.config.latent_channels
    vae.quant_conv.weight[c:] = 0.0
    vae.quant_conv.bias[c:] = 2.0 * math.log(std)


@torch.no_grad()
def latent_scale(vae, seed: int, n: int = 512, world_name: str = "disks") -> float:
    """1 / std of the VAE's latents on world images: unit-variance latents for the UNet (as SD does)."""
    rng = np.random.default_rng([seed, 2])
    gen = torch.Generator().manual_seed(seed + 2)
    latents = [vae.encode(image_batch(rng, 64, world_name)[0]).latent_dist.sample(generator=gen)
               for _ in range(n // 64)]
    return 1.0 / float(torch.cat(latents).std())


@torch.no_grad()
def vae_on_manifold(vae, seed: int, n: int = 256, world_name: str = "disks") -> float:
    """Share of VAE reconstructions of fresh world images that the scorer accepts (shapes: the true scene's)."""
    from . import scorer, shapes_scorer

    rng = np.random.default_rng([seed, 3])
    passed = 0
    for _ in range(n // 64):
        x, _, truth = image_batch(rng, 64, world_name)
        recon = vae.decode(vae.encode(x).latent_dist.mode()).sample
        images = ((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        passed += sum(shapes_scorer.fit(img, (s, s)).valid if world_name == "shapes" else scorer.fit(img).on_manifold
                      for img, s in zip(images, truth))
    return passed / (n // 64 * 64)


@torch.no_grad()
def encode_pool(vae, seed: int, n: int, world_name: str = "disks") -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Posterior means and stds of `n` fresh world images, with their captions.

    Encoding once instead of every step buys about 30% more UNet steps in the same time; the
    pool is far larger than what a 1.7M-parameter UNet could memorise (4 numbers per image).
    """
    rng = np.random.default_rng([seed, 4])
    means, stds, captions = [], [], []
    for _ in range(n // 256):
        x, caps, _ = image_batch(rng, 256, world_name)
        dist = vae.encode(x).latent_dist
        means.append(dist.mean)
        stds.append(dist.std)
        captions += caps
    return torch.cat(means), torch.cat(stds), captions


def train_unet(unet, vae, tokenizer, text_encoder, seed: int, minutes: float, steps: Optional[int],
               world_name: str = "disks") -> dict:
    start = time.monotonic()
    gen = torch.Generator().manual_seed(seed + 5)
    pool_mean, pool_std, pool_captions = encode_pool(vae, seed, POOL_SIZE, world_name)
    pool_minutes = (time.monotonic() - start) / 60.0
    log(f"[unet] encoded a pool of {len(pool_captions)} images in {pool_minutes:.1f} min")
    scheduler = ddpm_scheduler()
    alphas_cumprod = scheduler.alphas_cumprod
    # Shapes captions combine two objects: too many to list, so the table holds the pool's.
    captions = [""] + (sorted(set(pool_captions)) if world_name == "shapes" else [f"a {n} disk" for n in world.COLOURS])
    table = dict(zip(captions, encode_prompts(tokenizer, text_encoder, captions)))
    sf = vae.config.scaling_factor
    ema = [p.detach().clone() for p in unet.parameters()]
    opt = torch.optim.AdamW(unet.parameters(), lr=1e-3)
    unet.train()

    def step_fn(step: int, total: int) -> float:
        idx = torch.randint(0, len(pool_captions), (64,), generator=gen)
        z0 = (pool_mean[idx] + pool_std[idx] * torch.randn(pool_mean[idx].shape, generator=gen)) * sf
        drop = (torch.rand(len(idx), generator=gen) < CAPTION_DROPOUT).tolist()
        cond = torch.stack([table["" if d else pool_captions[i]] for i, d in zip(idx.tolist(), drop)])
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(idx),), generator=gen)
        zt = scheduler.add_noise(z0, noise, t)
        pred = unet(zt, t, encoder_hidden_states=cond).sample
        # min-SNR-gamma weighting for epsilon prediction: weight = min(SNR, gamma) / SNR.
        snr = alphas_cumprod[t] / (1.0 - alphas_cumprod[t])
        weight = torch.clamp(snr, max=SNR_GAMMA) / snr
        loss = (weight * F.mse_loss(pred, noise, reduction="none").mean(dim=(1, 2, 3))).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        # EMA with the usual warm-up, so early weights do not linger in a short run.
        decay = min(EMA_DECAY, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema, unet.parameters()):
                e.lerp_(p.detach(), 1.0 - decay)
        return loss.item()

    # The budget covers the pool too.
    info = run_steps("unet", step_fn, opt, 1e-3, max(0.1, minutes - pool_minutes), steps)
    info.update(pool_size=len(pool_captions), pool_minutes=pool_minutes, minutes=(time.monotonic() - start) / 60.0)
    with torch.no_grad():
        for e, p in zip(ema, unet.parameters()):
            p.copy_(e)
    unet.eval().requires_grad_(False)
    return info


def save_pipeline(out: Path, vae, text_encoder, tokenizer, unet) -> None:
    """A standard StableDiffusionPipeline folder that loads offline with `from_pretrained(out)`."""
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=ddim_scheduler(), safety_checker=None, feature_extractor=None,
                                   image_encoder=None, requires_safety_checker=False)
    pipe.save_pretrained(out, safe_serialization=True)
    # transformers 5 records its new class name; PreTrainedTokenizerFast is the name both 4.x and 5.x know.
    index_path = out / "model_index.json"
    index = json.loads(index_path.read_text())
    index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
    index_path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    config_path = out / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latentween.toyworld.train", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the diffusers pipeline")
    parser.add_argument("--minutes-vae", type=float, default=6.0, help="VAE training budget in minutes")
    parser.add_argument("--minutes-unet", type=float, default=22.0, help="UNet training budget in minutes")
    parser.add_argument("--steps-vae", type=int, default=None, help="exact VAE steps (overrides the minutes)")
    parser.add_argument("--steps-unet", type=int, default=None, help="exact UNet steps (overrides the minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--world", choices=WORLD_NAMES, default="disks", help="toy world to train on")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    for flag in ("steps_vae", "steps_unet"):
        value = getattr(args, flag)
        if value is not None and value <= WARMUP_STEPS:
            raise SystemExit(f"--{flag.replace('_', '-')} must be > {WARMUP_STEPS}, got {value}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    started = time.monotonic()

    # 1. Autoencoder
    vae = build_vae(args.seed)
    log(f"VAE: {count_params(vae) / 1e6:.2f}M parameters")
    vae_info = train_vae(vae, args.seed, args.minutes_vae, args.steps_vae, args.world)
    make_encoder_deterministic(vae)
    vae.register_to_config(scaling_factor=latent_scale(vae, args.seed, world_name=args.world))
    vae_info["scaling_factor"] = vae.config.scaling_factor
    vae_info["on_manifold_reconstructions"] = vae_on_manifold(vae, args.seed, world_name=args.world)
    log(f"VAE: scaling_factor {vae.config.scaling_factor:.4f}, "
        f"on-manifold reconstructions {vae_info['on_manifold_reconstructions']:.1%}")

    # 2. Frozen text encoder
    tokenizer = build_tokenizer(args.world)
    text_encoder = build_text_encoder(len(tokenizer), args.seed)
    log(f"text encoder: {count_params(text_encoder) / 1e6:.3f}M parameters (frozen, random)")

    # 3. Denoiser
    unet = build_unet(args.seed)
    log(f"UNet: {count_params(unet) / 1e6:.2f}M parameters")
    unet_info = train_unet(unet, vae, tokenizer, text_encoder, args.seed, args.minutes_unet, args.steps_unet,
                           args.world)

    # 4. Save
    args.out.mkdir(parents=True, exist_ok=True)
    save_pipeline(args.out, vae, text_encoder, tokenizer, unet)
    import diffusers
    import transformers

    record = {
        "command": "python -m latentween.toyworld.train " + " ".join(sys.argv[1:] if argv is None else argv),
        "seed": args.seed, "world": args.world, "vae": vae_info, "unet": unet_info,
        "parameters": {"vae": count_params(vae), "text_encoder": count_params(text_encoder), "unet": count_params(unet)},
        "wall_minutes": (time.monotonic() - started) / 60.0, "torch_threads": torch.get_num_threads(),
        # CPU time / threads: the minutes the run would take on cores of its own (the CPU is shared).
        "cpu_minutes_per_thread": time.process_time() / 60.0 / torch.get_num_threads(),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "diffusers": diffusers.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
    }
    (args.out / "train_log.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"saved to {args.out} after {record['wall_minutes']:.1f} min wall, "
        f"{record['cpu_minutes_per_thread']:.1f} min CPU per thread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
