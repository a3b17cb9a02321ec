"""Samplers as components: diffusers schedulers by name, set up img2img-style for the method's step.

The paper's step does not change with the sampler (METHOD.md 1): one shared noise added to both
parents at the frame's level, slerp, then denoise to 0. What the sampler decides is where that level
lies on its own timesteps and how noise is added there. A frame noised to DDIM index k (0 = the
cleanest, `plan.ddim_index`) starts at position `begin = len(timesteps) - 1 - k` of the scheduler's
own descending timesteps, is noised with the scheduler's own `add_noise` at `timesteps[begin]`, and
the sampler runs from that very position (with `set_begin_index`, which sigma-based samplers need).
For DDIM this is exactly METHOD.md's indexing (200 steps, 0.30..0.55, 17 frames: 110, 93, 76, 60).
"""
from __future__ import annotations

import inspect
from typing import Literal

SchedulerName = Literal["auto", "ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "unipc", "lcm", "tcd"]

# name -> (diffusers class, options on top of the model's own scheduler config)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "ddim": ("DDIMScheduler", {}),
    "dpmpp-2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                 "use_karras_sigmas": False}),
    "dpmpp-2m-karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                        "use_karras_sigmas": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lcm": ("LCMScheduler", {}),
    "tcd": ("TCDScheduler", {}),
}
# A distilled model's folder names the sampler it needs; other models' configs name whatever their
# authors happened to save (PNDM for SD 1.5), so those get DEFAULT_SCHEDULER.
_BY_CLASS = {"LCMScheduler": "lcm", "TCDScheduler": "tcd"}
DEFAULT_SCHEDULER = "dpmpp-2m"
# Latent models never want these, whatever their config says: clip_sample clamps predicted latents
# to [-1, 1] (a pixel-space default; it is PNDM's and DDIM's default) and thresholding is for pixels.
_LATENT_SAFE = {"clip_sample": False, "thresholding": False}


def resolve_name(name: str, model_config: dict) -> str:
    """`auto`: the model's own scheduler when it is one of ours, else DEFAULT_SCHEDULER."""
    if name != "auto":
        return name
    return _BY_CLASS.get(model_config.get("_class_name", ""), DEFAULT_SCHEDULER)


def make_scheduler(name: str, model_config: dict):
    """A fresh diffusers scheduler `name` over the model's noise schedule (betas, prediction type)."""
    import diffusers

    cls_name, options = SCHEDULERS[resolve_name(name, model_config)]
    cls = getattr(diffusers, cls_name)
    config = {k: v for k, v in model_config.items() if not k.startswith("_")}
    known = set(inspect.signature(cls.__init__).parameters)
    overrides = {k: v for k, v in {**_LATENT_SAFE, **options}.items() if k in known}
    if cls_name in ("DDIMScheduler", "LCMScheduler", "TCDScheduler"):
        # The paper's DDIM (and the consistency samplers) use alpha_bar of the last step as is.
        overrides.setdefault("set_alpha_to_one", False)
    return cls.from_config(config, **overrides)


def begin_index(scheduler, k: int) -> int:
    """Position in the scheduler's timesteps (after `set_timesteps`) for DDIM index k."""
    return len(scheduler.timesteps) - 1 - k


def start_at(scheduler, steps: int, k: int, device=None) -> int:
    """Set the scheduler up for a run that begins at DDIM index k; returns the begin position.
    Multistep state starts afresh, so every chunk is sampled exactly as if it were alone."""
    scheduler.set_timesteps(steps, device=device)
    begin = begin_index(scheduler, k)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return begin


def noise_coefficients(scheduler, begin: int) -> tuple[float, float]:
    """(a, s) with the scheduler's own noising z_t = a z0 + s eps at timesteps[begin]
    (a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar) for DDIM; a = 1, s = sigma for Euler)."""
    import torch

    t = scheduler.timesteps[begin:begin + 1]
    one, zero = torch.ones(1), torch.zeros(1)
    a = scheduler.add_noise(one, zero, t)
    s = scheduler.add_noise(zero, one, t)
    return float(a), float(s)
