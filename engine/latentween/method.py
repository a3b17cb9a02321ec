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


def add_noise(z0: torch.Tensor, eps: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
    """Forward noising z_t = alpha_t z0 + sigma_t eps (METHOD.md, Pieces). For DDIM alpha_t = sqrt(alpha_bar)
    and sigma_t = sqrt(1 - alpha_bar); sigma-parameterised samplers (Euler) use alpha_t = 1."""
    return alpha * z0 + sigma * eps


def noise_interpolate(z_a: torch.Tensor, z_b: torch.Tensor, f: torch.Tensor | float, eps: torch.Tensor,
                      alpha: float, sigma: float) -> torch.Tensor:
    """METHOD.md 1, steps 1-2: add ONE noise tensor to both parents at the same timestep, then slerp."""
    return slerp(add_noise(z_a, eps, alpha, sigma), add_noise(z_b, eps, alpha, sigma), f)


def frame_generator(seed: int, fraction: float, candidate: int = 0, stream: str = "frame",
                    take: int = 0) -> torch.Generator:
    """A CPU generator for one (frame, candidate): a hash of the job seed, the frame's exact fraction,
    the candidate number and a stream name. Noise drawn from it is the same whatever the batching.
    A re-rolled frame's `take` > 0 joins the hash; take 0 leaves it out, so first takes keep their bytes."""
    key = f"{seed}|{float(fraction).hex()}|{candidate}|{stream}{f'|take{take}' if take else ''}".encode()
    value = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little") & (2**63 - 1)
    return torch.Generator(device="cpu").manual_seed(value)


def randn(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    """Standard normal noise, always drawn on the CPU in float32 so every device sees the same numbers."""
    return torch.randn(tuple(shape), generator=generator, dtype=torch.float32)


Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def denoise(model: Denoiser, z: torch.Tensor, scheduler, begin: int, *, end: Optional[int] = None, eta: float = 0.0,
            generators: Optional[Sequence[torch.Generator]] = None, capture: Optional[set[int]] = None,
            callback: Optional[Callable[[dict], None]] = None) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """Denoise every row of `z` from the scheduler's timestep `begin` down to 0 (METHOD.md 1, step 3).

    `scheduler` is a diffusers scheduler after `set_timesteps` (its begin index set where it keeps
    one); `z` is already noised to `scheduler.timesteps[begin]`. `model(x, t)` returns the guided
    model output for the scheduler-scaled input x. Stochastic steps (eta > 0, ancestral and
    consistency samplers) draw each row's noise from its own generator, so a row's result does not
    depend on its batch mates. `end` stops before that position (the rest may continue with another
    call). `capture` names DDIM indices (0 = cleanest) whose latents, before that step, are returned
    for the DID baseline.
    """
    import inspect

    timesteps = scheduler.timesteps
    accepts = inspect.signature(scheduler.step).parameters
    extra = {}
    if "eta" in accepts:
        extra["eta"] = eta
    if "generator" in accepts and generators is not None:
        extra["generator"] = list(generators)
    captured: dict[int, torch.Tensor] = {}
    steps = len(timesteps)
    # flow-matching samplers feed the model the latents as they are
    scale = getattr(scheduler, "scale_model_input", lambda x, t: x)
    for pos in range(begin, steps if end is None else end):
        if capture and steps - 1 - pos in capture:
            captured[steps - 1 - pos] = z.clone()
        t = timesteps[pos]
        out = model(scale(z, t), t)
        z = scheduler.step(out, t, z, return_dict=False, **extra)[0].to(z.dtype)
        if callback is not None:
            callback({"step": pos - begin + 1, "steps": steps - begin, "timestep": int(t), "samples": z.shape[0]})
    return z, captured


def predicted_clean(x: torch.Tensor, out: torch.Tensor, alpha_bar: float, prediction_type: str) -> torch.Tensor:
    """The model's estimate of z0 from its input x at a timestep with alpha_bar (DDIM's "predicted x0",
    eq. 12 of Song et al.), for epsilon, v or sample prediction; x is the scheduler-scaled input."""
    a, s = alpha_bar**0.5, (1.0 - alpha_bar) ** 0.5
    if prediction_type == "epsilon":
        return (x - s * out) / a
    if prediction_type == "v_prediction":
        return a * x - s * out
    return out
