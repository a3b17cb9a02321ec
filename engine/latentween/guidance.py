"""Classifier-free guidance around a UNet (and an optional ControlNet), with both halves and all
frames in shared micro-batches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

import torch

from latentween.families import Prompt


@dataclass
class UNetCounter:
    """How much work was done: `calls` UNet forward passes evaluating `rows` samples in all."""

    calls: int = 0
    rows: int = 0
    controlnet_calls: int = 0


@dataclass
class GuidedDenoiser:
    """eps_hat = eps(uncond) + g * (eps(cond) - eps(uncond)), with per-sample conditioning.

    The unconditional and conditional rows of every active sample are stacked and run through the
    UNet in chunks of at most `max_batch` rows; g == 1 skips the unconditional half and g == 0 the
    conditional one. A ControlNet, when given, sees the same control image in both halves
    (METHOD.md 4) and its residuals are scaled per sample. `condition` (the model family's
    unet_kwargs) turns rows of prompts into the UNet's and ControlNet's conditioning arguments.
    Inputs and outputs are float32; the models run in their own dtype.
    """

    unet: torch.nn.Module
    guidance: float
    max_batch: int
    counter: UNetCounter = field(default_factory=UNetCounter)
    controlnet: Optional[torch.nn.Module] = None
    condition: Optional[Callable[[Prompt, torch.Tensor], dict]] = None  # default: the context alone (families.SD)

    def __post_init__(self):
        if self.condition is None:
            self.condition = lambda context, sample: {"encoder_hidden_states": context.hidden}

    def __call__(self, z: torch.Tensor, t: torch.Tensor, cond: Prompt, uncond: Prompt,
                 control: Optional[torch.Tensor] = None, control_scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        """z: (B, C, h, w); cond, uncond: B rows each; control: (B, 3, H, W) in [0, 1]; control_scale: (B,)."""
        halves = []
        if self.guidance != 1.0:
            halves.append(uncond)
        if self.guidance != 0.0:
            halves.append(cond)
        n, k = z.shape[0], len(halves)
        rows = dict(latents=torch.cat([z] * k), context=Prompt.cat(halves))
        if control is not None and self.controlnet is not None:
            rows.update(control=torch.cat([control] * k), scale=torch.cat([control_scale] * k))
        out = torch.cat([self._run(t, **{key: v[lo:lo + self.max_batch] for key, v in rows.items()})
                         for lo in range(0, n * k, self.max_batch)])
        if k == 1:
            return out
        out_uncond, out_cond = out[:n], out[n:]
        return out_uncond + self.guidance * (out_cond - out_uncond)

    def _run(self, t: torch.Tensor, latents: torch.Tensor, context: Prompt,
             control: Optional[torch.Tensor] = None, scale: Optional[torch.Tensor] = None) -> torch.Tensor:
        dtype, device = self.unet.dtype, self.unet.device
        sample = latents.to(device, dtype)
        conditioning = self.condition(context.to(device, dtype), sample)
        residuals = {}
        with torch.inference_mode():
            if control is not None:
                down, mid = self.controlnet(sample, t.to(device), controlnet_cond=control.to(device, dtype),
                                            conditioning_scale=1.0, return_dict=False, **conditioning)
                s = scale.to(device, dtype)
                residuals = dict(down_block_additional_residuals=_scaled(down, s),
                                 mid_block_additional_residual=_scaled(mid, s))
                self.counter.controlnet_calls += 1
            pred = self.unet(sample, t.to(device), return_dict=False, **conditioning, **residuals)[0]
        self.counter.calls += 1
        self.counter.rows += sample.shape[0]
        return pred.float()


def _scaled(residuals, scale: torch.Tensor):
    """ControlNet residuals times a per-sample scale: a tensor or a list of them (a UNet's down blocks,
    a Flux ControlNet's blocks), of any rank; None (no blocks of that kind) stays None."""
    if residuals is None:
        return None
    if isinstance(residuals, (list, tuple)):
        return [_scaled(r, scale) for r in residuals]
    return residuals * scale.view(-1, *[1] * (residuals.ndim - 1))
