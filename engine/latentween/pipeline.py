"""The interpolation pipeline: METHOD.md sections 1 and 2 on diffusers components.

Reads like the paper: encode both keyframes, plan the recursive bisection, and for every level add
shared noise to each new frame's parents, slerp, and denoise with DDIM and classifier-free guidance,
all frames of the level (and their candidates) together. Parents are always finished frames.
Images in and out are float32 arrays (H, W, 3) in [0, 1] at the work size; file handling is elsewhere.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence

import numpy as np
import torch

from latentween.errors import Cancelled
from latentween.guidance import GuidedDenoiser, UNetCounter
from latentween.models import fast_convolutions
from latentween.method import add_noise, frame_generator, noise_interpolate, randn, sample_ddim, slerp
from latentween.plan import PlannedFrame, ddim_index, make_plan


@dataclass
class FrameResult:
    """One finished frame: the chosen image, its latent (kept for children and for resuming) and facts."""

    index: int
    fraction: float
    image: np.ndarray
    latent: torch.Tensor
    info: dict


@dataclass
class Candidate:
    """One sample of the batched denoising: a (frame, candidate) pair and where it starts."""

    frame: PlannedFrame
    number: int
    start: int  # DDIM index it is noised to


@dataclass
class InterpolationRequest:
    """What to make. `fractions` are absolute positions of all frames, keyframes included."""

    fractions: Sequence[float]
    seed: int
    prompt: str = ""
    negative: str = ""
    steps: int = 50
    guidance: float = 7.5
    eta: float = 0.0
    min_noise: float = 0.30
    max_noise: float = 0.55
    noise_curve: str = "linear"
    scheme: str = "ours"
    candidates: Callable[[int], int] = field(default=lambda level: 1)
    # Conditioning (METHOD.md 3-4): the keyframes' prompt embeddings and the shared negative, e.g.
    # from textual inversion (None: encode `prompt`/`negative`); and per frame fraction the ControlNet
    # input (float (H, W, 3) in [0, 1]) with its scale (None: no ControlNet).
    text: Optional[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = None
    control: Optional[Callable[[float], tuple[np.ndarray, float]]] = None
    # Beyond the paper: the keyframes' displacement field (latentween.align); parents are moved by
    # their share of it before the noise-interpolate-denoise step (scheme "ours" only).
    alignment: Optional[object] = None


Chooser = Callable[[PlannedFrame, list[np.ndarray]], tuple[int, list[float]]]
ProgressCallback = Callable[[dict], None]


def first_candidate(frame: PlannedFrame, images: list[np.ndarray]) -> tuple[int, list[float]]:
    return 0, []


class InterpolationPipeline:
    """Components in, frames out. `max_batch` bounds the rows of every UNet and VAE call."""

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, *, controlnet=None, max_batch: int = 8):
        self.unet, self.vae, self.text_encoder, self.tokenizer = unet, vae, text_encoder, tokenizer
        self.scheduler, self.controlnet = scheduler, controlnet
        self.max_batch = max_batch
        self.counter = UNetCounter()
        self.device = unet.device
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)

    @classmethod
    def from_components(cls, components, *, controlnet=None, max_batch: int = 8) -> "InterpolationPipeline":
        from diffusers import DDIMScheduler

        scheduler = DDIMScheduler.from_config(components.scheduler_config)
        return cls(components.unet, components.vae, components.text_encoder, components.tokenizer, scheduler,
                   controlnet=controlnet, max_batch=max_batch)

    # -- the pieces ---------------------------------------------------------------------------

    def check_inputs(self, images: Sequence[np.ndarray], request: InterpolationRequest) -> None:
        if len(images) != 2:
            raise ValueError(f"`images` must hold 2 keyframes, got {len(images)}")
        if images[0].shape != images[1].shape or images[0].ndim != 3 or images[0].shape[2] != 3:
            raise ValueError(f"keyframes must be equal-size (H, W, 3) arrays, got {images[0].shape} and {images[1].shape}")
        h, w = images[0].shape[:2]
        if h % self.vae_scale_factor or w % self.vae_scale_factor:
            raise ValueError(f"keyframe size {w}x{h} is not a multiple of {self.vae_scale_factor}")
        f = list(request.fractions)
        if len(f) < 2 or f[0] != 0.0 or f[-1] != 1.0 or any(b <= a for a, b in zip(f, f[1:])):
            raise ValueError(f"`fractions` must rise strictly from 0 to 1, got {f}")

    # The VAE sees one image per call: the same shapes every time make its results independent of
    # how many frames a level has (bit-identical frames whatever the batching), which lets it use
    # the CPU's fastest convolutions (oneDNN), unlike the batched UNet (see models.configure_determinism).

    @torch.inference_mode()
    def encode_images(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """E: image -> z0, the posterior mean (deterministic), scaled like the model's training latents."""
        x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device, self.vae.dtype) * 2 - 1
        with fast_convolutions(self.device):
            latents = torch.cat([self.vae.encode(x[i:i + 1]).latent_dist.mean for i in range(x.shape[0])])
        return self._scale(latents.float())

    @torch.inference_mode()
    def decode_latents(self, latents: torch.Tensor) -> list[np.ndarray]:
        """D: latent -> image, float32 (H, W, 3) in [0, 1]."""
        config = self.vae.config
        z = latents / config.scaling_factor + (getattr(config, "shift_factor", None) or 0.0)
        images = []
        with fast_convolutions(self.device):
            for i in range(z.shape[0]):
                x = self.vae.decode(z[i:i + 1].to(self.vae.dtype), return_dict=False)[0]
                images.append(((x[0].float() + 1) / 2).clamp(0, 1).permute(1, 2, 0).cpu().numpy())
        return images

    def _scale(self, latents: torch.Tensor) -> torch.Tensor:
        config = self.vae.config
        return (latents - (getattr(config, "shift_factor", None) or 0.0)) * config.scaling_factor

    @torch.inference_mode()
    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompt embeddings (N, L, D), padded to the tokenizer's length as the model was trained."""
        tokens = self.tokenizer(list(texts), padding="max_length", max_length=self.tokenizer.model_max_length,
                                truncation=True, return_tensors="pt")
        return self.text_encoder(tokens.input_ids.to(self.device), return_dict=False)[0].float()

    def alpha_bar(self, k: int) -> float:
        """alpha_bar at the k-th DDIM timestep (0 = cleanest)."""
        t = int(self.scheduler.timesteps.flip(0)[k])
        return float(self.scheduler.alphas_cumprod[t])

    # -- the method ---------------------------------------------------------------------------

    def generate(self, images: Sequence[np.ndarray], request: InterpolationRequest, *,
                 done: Optional[dict[int, torch.Tensor]] = None, chooser: Chooser = first_candidate,
                 callback: Optional[ProgressCallback] = None,
                 should_cancel: Optional[Callable[[], bool]] = None) -> Iterator[FrameResult]:
        """Yield every new frame as soon as it is final, level by level (METHOD.md 2).

        `done` maps frame indices to latents finished by an earlier run: they are not made again,
        and because noise is seeded per frame the remaining frames come out as if never interrupted.
        """
        # 1. Check inputs
        self.check_inputs(images, request)
        done = dict(done or {})
        fractions = list(request.fractions)
        last = len(fractions) - 1

        # 2. Encode keyframes and prompts
        self.scheduler.set_timesteps(request.steps, device=self.device)
        keys = self.encode_images(images)
        latents: dict[int, torch.Tensor] = {0: keys[0], last: keys[1]}
        latents.update({i: z.to(self.device, torch.float32) for i, z in done.items()})
        if request.text is not None:
            text = tuple(x.to(self.device, torch.float32) for x in request.text)
        else:
            cond, negative = self.encode_text([request.prompt, request.negative])
            text = (cond, cond, negative)

        # 3. Plan the recursion and its noise levels
        plan = make_plan(fractions, request.min_noise, request.max_noise, request.noise_curve)
        todo = [[frame for frame in level if frame.index not in done] for level in plan]
        total = sum(self._sample_steps(level, request) for level in todo)
        progress = {"done": 0, "total": total, "stage": "denoising", "levels": len(plan)}
        trajectories: dict[int, dict[int, torch.Tensor]] = {}  # DID only: frame -> {ddim index: latent}
        denoiser = GuidedDenoiser(self.unet, request.guidance, self.max_batch, self.counter, self.controlnet)

        # 4. Each level: add noise, interpolate, denoise, decode, choose
        for level_number, level in enumerate(todo, start=1):
            if not level:
                continue
            progress["level"] = level_number
            candidates = [Candidate(frame, c, ddim_index(frame.noise, request.steps))
                          for frame in level for c in range(request.candidates(frame.level))]
            started = time.perf_counter()
            z_t = self.prepare_latents(candidates, latents, trajectories, fractions, request)
            if request.scheme == "interpolate-only":
                z0, captured = z_t, [{} for _ in candidates]
            else:
                conditioning = self.frame_conditioning(candidates, fractions, text, request)
                z0, captured = self._denoise(candidates, z_t, denoiser, conditioning, plan, request,
                                             progress, callback, should_cancel)
            images_out = self.decode_latents(z0)
            seconds = (time.perf_counter() - started) / len(level)
            for frame in level:
                rows = [r for r, cand in enumerate(candidates) if cand.frame is frame]
                chosen, scores = chooser(frame, [images_out[r] for r in rows]) if len(rows) > 1 else (0, [])
                row = rows[chosen]
                latents[frame.index] = z0[row]
                trajectories[frame.index] = captured[row]
                yield FrameResult(frame.index, fractions[frame.index], images_out[row], z0[row].cpu(),
                                  self._frame_info(frame, candidates[row], request, rows, chosen, scores, seconds))

    def __call__(self, images: Sequence[np.ndarray], request: InterpolationRequest, **kwargs) -> list[FrameResult]:
        """All new frames, in frame order."""
        return sorted(self.generate(images, request, **kwargs), key=lambda r: r.index)

    # -- helpers of `generate` --------------------------------------------------------------------

    def _sample_steps(self, level: list[PlannedFrame], request: InterpolationRequest) -> int:
        if request.scheme == "interpolate-only":
            return 0
        return sum((ddim_index(f.noise, request.steps) + 1) * request.candidates(f.level) for f in level)

    def prepare_latents(self, candidates: list[Candidate], latents: dict, trajectories: dict,
                      fractions: list[float], request: InterpolationRequest) -> torch.Tensor:
        """z_t of every candidate under the chosen scheme (METHOD.md 1 and the baselines of section 6)."""
        last = len(fractions) - 1
        starts = []
        for cand in candidates:
            frame = cand.frame
            eps = randn(latents[0].shape, frame_generator(request.seed, fractions[frame.index], cand.number)).to(self.device)
            ab = self.alpha_bar(cand.start)
            if request.scheme == "ours":
                left, right = latents[frame.left][None], latents[frame.right][None]
                if request.alignment is not None:
                    left, right = request.alignment.warp_parents(
                        left, right, fractions[frame.left], fractions[frame.right], fractions[frame.index])
                z = noise_interpolate(left, right, frame.local_fraction, eps[None], ab)
            elif request.scheme == "interpolate-only":
                z = slerp(latents[0][None], latents[last][None], fractions[frame.index])
            elif request.scheme == "interpolate-denoise":
                # Parents are always the two keyframes, noised with the frame's own shared noise.
                z = noise_interpolate(latents[0][None], latents[last][None], fractions[frame.index], eps[None], ab)
            else:  # "did", "did-no-shared-noise": parents' partially denoised latents at this timestep
                parents = [self._did_parent(i, cand.start, latents, trajectories, request, last) for i in (frame.left, frame.right)]
                z = slerp(parents[0][None], parents[1][None], frame.local_fraction)
            starts.append(z[0])
        return torch.stack(starts)

    def _did_parent(self, index: int, k: int, latents: dict, trajectories: dict, request: InterpolationRequest,
                    last: int) -> torch.Tensor:
        """A parent at DDIM index k: a generated frame's own trajectory, or a keyframe noised forward
        (one noise for both keyframes, or one each for did-no-shared-noise)."""
        if index in trajectories and k in trajectories[index]:
            return trajectories[index][k]
        shared = request.scheme == "did"
        stream = "keyframes" if shared else f"keyframe-{index}"
        eps = randn(latents[0].shape, frame_generator(request.seed, 0.0, 0, stream)).to(self.device)
        return add_noise(latents[index], eps, self.alpha_bar(k))

    def frame_conditioning(self, candidates: list[Candidate], fractions: list[float], text, request) -> dict:
        """Per candidate: slerp of the keyframes' prompt embeddings at the frame's fraction with the
        negative fixed (METHOD.md 3), and the interpolated pose with its scale (METHOD.md 4)."""
        f = torch.tensor([fractions[c.frame.index] for c in candidates], dtype=torch.float64)
        n = len(candidates)
        out = {"cond": slerp(text[0].expand(n, -1, -1), text[1].expand(n, -1, -1), f),
               "uncond": text[2].expand(n, -1, -1)}
        if request.control is not None and self.controlnet is not None:
            per_frame = {c.frame.index: request.control(fractions[c.frame.index]) for c in candidates}
            images = [per_frame[c.frame.index][0] for c in candidates]
            out["control"] = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).to(self.device)
            out["control_scale"] = torch.tensor([per_frame[c.frame.index][1] for c in candidates],
                                                dtype=torch.float32, device=self.device)
        return out

    def _denoise(self, candidates, z_t, denoiser, conditioning, plan, request, progress, callback, should_cancel):
        n = len(candidates)
        capture = None
        if request.scheme.startswith("did"):
            children = {}
            for level in plan:
                for f in level:
                    for parent in (f.left, f.right):
                        children.setdefault(parent, set()).add(ddim_index(f.noise, request.steps))
            capture = [children.get(c.frame.index, set()) for c in candidates]
        generators = None
        if request.eta > 0:
            generators = [frame_generator(request.seed, request.fractions[c.frame.index], c.number, "eta") for c in candidates]

        index = {}

        def model(z, t, rows):
            key = tuple(rows)
            if key not in index:
                index[key] = torch.tensor(rows, device=self.device)
            return denoiser(z, t, **{name: v[index[key]] for name, v in conditioning.items()})

        def step(info):
            if should_cancel is not None and should_cancel():
                raise Cancelled()
            progress["done"] += info["samples"]
            if callback is not None:
                callback(dict(progress))

        return sample_ddim(model, z_t, [c.start for c in candidates], self.scheduler, eta=request.eta,
                           generators=generators, capture=capture, callback=step)

    def _frame_info(self, frame: PlannedFrame, cand: Candidate, request, rows, chosen, scores, seconds) -> dict:
        timestep = int(self.scheduler.timesteps.flip(0)[cand.start])
        return {
            "level": frame.level, "parents": [frame.left, frame.right],
            "local_fraction": frame.local_fraction, "noise": frame.noise,
            "ddim_index": cand.start, "timestep": timestep if request.scheme != "interpolate-only" else None,
            "candidates": len(rows), "chosen": chosen, "scores": scores, "seconds": seconds,
        }
