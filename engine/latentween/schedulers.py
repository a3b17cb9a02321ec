"""Samplers as components: diffusers schedulers by name, set up img2img-style for the method's step.

The paper's step does not change with the sampler (METHOD.md 1): one shared noise added to both
parents at the frame's level, slerp, then denoise to 0. What the sampler decides is where that level
lies on its own timesteps and how noise is added there. A frame noised to DDIM index k (0 = the
cleanest, `plan.ddim_index`) starts at position `begin = len(timesteps) - 1 - k` of the scheduler's
own descending timesteps, is noised with the scheduler's own `add_noise` at `timesteps[begin]`, and
the sampler runs from that very position (with `set_begin_index`, which sigma-based samplers need).
For DDIM this is exactly METHOD.md's indexing (200 steps, 0.30..0.55, 17 frames: 110, 93, 76, 60).

Flow-matching models (Flux) have one sampler here, `flow-euler` (diffusers' FlowMatchEulerDiscrete
with FluxPipeline's sigmas and resolution shift): noise is added as x = (1 - sigma) x0 + sigma eps
(`scale_noise`), the model predicts the velocity eps - x0, and the levels stay fractions of the
sampler's own (shifted) schedule, so --min-noise/--max-noise mean what they mean for DDIM.
"""
from __future__ import annotations

import inspect
from typing import Literal

SchedulerName = Literal["auto", "ddim", "dpmpp-2m", "dpmpp-2m-karras", "euler", "unipc", "lcm", "tcd", "flow-euler"]

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
    "flow-euler": ("FlowMatchEulerDiscreteScheduler", {}),
}
FLOW = {"flow-euler"}  # samplers of flow-matching models; the others are for noise-prediction models
# A distilled model's folder names the sampler it needs; other models' configs name whatever their
# authors happened to save (PNDM for SD 1.5), so those get DEFAULT_SCHEDULER.
_BY_CLASS = {"LCMScheduler": "lcm", "TCDScheduler": "tcd", "FlowMatchEulerDiscreteScheduler": "flow-euler"}
DEFAULT_SCHEDULER = "dpmpp-2m"
# Latent models never want these, whatever their config says: clip_sample clamps predicted latents
# to [-1, 1] (a pixel-space default; it is PNDM's and DDIM's default) and thresholding is for pixels.
_LATENT_SAFE = {"clip_sample": False, "thresholding": False}


def resolve_name(name: str, model_config: dict) -> str:
    """`auto`: the model's own scheduler when it is one of ours, else DEFAULT_SCHEDULER."""
    if name != "auto":
        return name
    return _BY_CLASS.get(model_config.get("_class_name", ""), DEFAULT_SCHEDULER)


def check_name(name: str, model_config: dict) -> None:
    """A flow model runs only flow samplers and a noise-prediction model none of them: one line otherwise."""
    from latentween.errors import InputError

    flow_model = model_config.get("_class_name", "").startswith("FlowMatch")
    resolved = resolve_name(name, model_config)
    if flow_model != (resolved in FLOW):
        wanted = ", ".join(sorted(FLOW)) if flow_model else ", ".join(n for n in SCHEDULERS if n not in FLOW)
        kind = "a flow-matching" if flow_model else "a noise-prediction"
        raise InputError(f"--scheduler {name} does not fit {kind} model; use auto or one of: {wanted}")


def make_scheduler(name: str, model_config: dict):
    """A fresh diffusers scheduler `name` over the model's noise schedule (betas, prediction type)."""
    import diffusers

    check_name(name, model_config)
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


def is_flow(scheduler) -> bool:
    return hasattr(scheduler, "scale_noise")


def timestep_options(scheduler, steps: int, latent_size: tuple[int, int]) -> dict:
    """Extra `set_timesteps` arguments: for a flow sampler FluxPipeline's sigmas (1 .. 1/steps) and,
    where the model shifts its schedule with the image size, that shift (mu) for latents of this size."""
    if not is_flow(scheduler):
        return {}
    import numpy as np

    options: dict = {"sigmas": np.linspace(1.0, 1.0 / steps, steps)}
    config = scheduler.config
    if config.get("use_dynamic_shifting"):
        tokens = (latent_size[0] // 2) * (latent_size[1] // 2)  # the transformer's 2x2 patches
        base, top = config.get("base_image_seq_len", 256), config.get("max_image_seq_len", 4096)
        low, high = config.get("base_shift", 0.5), config.get("max_shift", 1.15)
        options["mu"] = low + (high - low) * (tokens - base) / (top - base)  # FluxPipeline's calculate_shift
    return options


def start_at(scheduler, steps: int, k: int, device=None, **options) -> int:
    """Set the scheduler up for a run that begins at DDIM index k; returns the begin position.
    Multistep state starts afresh, so every chunk is sampled exactly as if it were alone. `options`:
    `timestep_options`."""
    scheduler.set_timesteps(steps, device=device, **options)
    begin = begin_index(scheduler, k)
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(begin)
    return begin


def noise_coefficients(scheduler, begin: int) -> tuple[float, float]:
    """(a, s) with the scheduler's own noising z_t = a z0 + s eps at timesteps[begin]
    (a = sqrt(alpha_bar), s = sqrt(1 - alpha_bar) for DDIM; a = 1, s = sigma for Euler; a = 1 - sigma,
    s = sigma for flow matching)."""
    import torch

    t = scheduler.timesteps[begin:begin + 1]
    one, zero = torch.ones(1), torch.zeros(1)
    if is_flow(scheduler):
        return float(scheduler.scale_noise(one, t, zero)), float(scheduler.scale_noise(zero, t, one))
    return float(scheduler.add_noise(one, zero, t)), float(scheduler.add_noise(zero, one, t))


def training_coefficients(scheduler, t):
    """(a, s) of z_t = a z0 + s eps at training timesteps t (a tensor; the model's own time axis): the
    DDPM schedule's sqrt(alpha_bar), sqrt(1 - alpha_bar), or flow matching's 1 - t/T, t/T."""
    import torch

    t = torch.as_tensor(t)
    if is_flow(scheduler):
        sigma = t.double() / scheduler.config.num_train_timesteps
        return (1 - sigma).float(), sigma.float()
    alpha_bar = scheduler.alphas_cumprod.to(t.device)[t]
    return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()


def prediction_target(scheduler, z0, eps, a, s):
    """What the model predicts for z_t = a z0 + s eps: eps, v = a eps - s z0, or the flow velocity eps - z0."""
    if is_flow(scheduler):
        return eps - z0
    if scheduler.config.prediction_type == "v_prediction":
        return a * eps - s * z0
    return eps


def clean_estimate(scheduler, x, out, t):
    """The model's estimate of z0 from its input x and output at timestep t of the set schedule
    (DDIM's predicted x0 for eps/v prediction; x - sigma v for flow matching)."""
    from latentween.method import predicted_clean

    if is_flow(scheduler):
        sigma = float(scheduler.sigmas[scheduler.index_for_timestep(t)])
        return x - sigma * out
    alpha_bar = float(scheduler.alphas_cumprod[int(t)])
    return predicted_clean(x, out, alpha_bar, scheduler.config.prediction_type)
