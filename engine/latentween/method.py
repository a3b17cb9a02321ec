"""The method as small pure functions over tensors (METHOD.md sections 1 and 2).

No I/O, no models: the denoiser is any callable. Randomness always comes from a `generator`;
`frame_generator` derives one per (seed, frame fraction, candidate) so that a frame's noise does not
depend on which other frames are computed with it, in what order, or after which restart.
"""
from __future__ import annotations

import hashlib
from typing import Callable, Optional, Sequence

import torch

# METHOD.md 1: cos clamped to +-(1 - 1e-7); above this the vectors are treated as parallel and lerped,
# where slerp's 1/sin(theta) would amplify rounding error.
COS_CLAMP = 1.0 - 1e-7
LERP_ABOVE = 0.9995


def slerp(v0: torch.Tensor, v1: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation of each sample over its whole flattened tensor (METHOD.md 1, step 2).

    v0, v1: (B, ...); t: scalar or (B,). Computed in float64, returned in v0's dtype. Falls back to
    lerp per sample when the two vectors are nearly parallel (|cos| > 0.9995).
    """
    shape, dtype = v0.shape, v0.dtype
    a = v0.reshape(shape[0], -1).double()
    b = v1.reshape(shape[0], -1).double()
    t = torch.as_tensor(t, dtype=torch.float64, device=a.device).reshape(-1, 1).expand(shape[0], 1)
    cos = (a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True)).clamp_min(1e-30)
    cos = cos.clamp(-COS_CLAMP, COS_CLAMP)
    theta = torch.arccos(cos)
    sin = torch.sin(theta)
    s0 = torch.sin((1 - t) * theta) / sin
    s1 = torch.sin(t * theta) / sin
    parallel = cos.abs() > LERP_ABOVE
    s0 = torch.where(parallel, 1 - t, s0)
    s1 = torch.where(parallel, t, s1)
    return (s0 * a + s1 * b).reshape(shape).to(dtype)


def add_noise(z0: torch.Tensor, eps: torch.Tensor, alpha_bar: float) -> torch.Tensor:
    """Forward noising z_t = alpha_t z0 + sigma_t eps, alpha_t = sqrt(alpha_bar), sigma_t = sqrt(1 - alpha_bar)."""
    return alpha_bar**0.5 * z0 + (1.0 - alpha_bar) ** 0.5 * eps


def noise_interpolate(z_a: torch.Tensor, z_b: torch.Tensor, f: torch.Tensor | float, eps: torch.Tensor,
                      alpha_bar: float) -> torch.Tensor:
    """METHOD.md 1, steps 1-2: add ONE noise tensor to both parents at the same timestep, then slerp."""
    return slerp(add_noise(z_a, eps, alpha_bar), add_noise(z_b, eps, alpha_bar), f)


def frame_generator(seed: int, fraction: float, candidate: int = 0, stream: str = "frame") -> torch.Generator:
    """A CPU generator for one (frame, candidate): a hash of the job seed, the frame's exact fraction,
    the candidate number and a stream name. Noise drawn from it is the same whatever the batching."""
    key = f"{seed}|{float(fraction).hex()}|{candidate}|{stream}".encode()
    value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
    return torch.Generator(device="cpu").manual_seed(value)


def randn(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise, always drawn on the CPU in float32 so every device sees the same numbers."""
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


Denoiser = Callable[[torch.Tensor, torch.Tensor, list], torch.Tensor]


def sample_ddim(model: Denoiser, z: torch.Tensor, start: Sequence[int], scheduler, *, eta: float = 0.0,
                generators: Optional[Sequence[torch.Generator]] = None,
                capture: Optional[Sequence[set]] = None,
                callback: Optional[Callable[[dict], None]] = None) -> tuple[torch.Tensor, list[dict]]:
    """DDIM from each sample's own start down to 0 (METHOD.md 1, step 3), all samples in one loop.

    `scheduler` is a diffusers DDIMScheduler after `set_timesteps(steps)`. Sample i starts at DDIM
    index start[i] (0 = the cleanest timestep) and joins the batch when the loop reaches it, so
    frames with different noise levels share UNet calls from then on. `model(z, t, rows)` returns
    the guided model output for the samples `rows`. With eta > 0 each sample's extra noise comes
    from its own generator. `capture[i]` names DDIM indices at which sample i's latent (before that
    step) is kept, for the DID baseline. Returns the clean latents and the captured latents.
    """
    z = z.clone()
    timesteps = scheduler.timesteps  # descending
    steps = len(timesteps)
    captured: list[dict] = [{} for _ in range(z.shape[0])]
    first = steps - 1 - max(start)
    for pos in range(first, steps):
        k = steps - 1 - pos
        rows = [i for i, s in enumerate(start) if s >= k]
        if capture is not None:
            for i in rows:
                if k in capture[i]:
                    captured[i][k] = z[i].clone()
        index = torch.tensor(rows)
        t = timesteps[pos]
        out = model(z[index], t, rows)
        variance_noise = None
        if eta > 0:
            variance_noise = torch.stack([randn(z.shape[1:], generators[i]) for i in rows]).to(z)
        z[index] = scheduler.step(out, t, z[index], eta=eta, variance_noise=variance_noise).prev_sample.to(z.dtype)
        if callback is not None:
            callback({"step": pos - first + 1, "steps": steps - first, "timestep": int(t), "samples": len(rows)})
    return z, captured
