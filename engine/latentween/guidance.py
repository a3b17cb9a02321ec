"""Classifier-free guidance around a UNet, with both halves and all frames in shared micro-batches."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch


@dataclass
class UNetCounter:
    """How much UNet work was done: `calls` forward passes evaluating `rows` samples in all."""

    calls: int = 0
    rows: int = 0
    controlnet_calls: int = 0


@dataclass
class GuidedDenoiser:
    """eps_hat = eps(uncond) + g * (eps(cond) - eps(uncond)), with per-sample conditioning.

    The unconditional and conditional rows of every active sample are stacked and run through the
    UNet in chunks of at most `max_batch` rows; g == 1 skips the unconditional half and g == 0 the
    conditional one. Inputs and outputs are float32; the UNet runs in its own dtype.
    """

    unet: torch.nn.Module
    guidance: float
    max_batch: int
    counter: UNetCounter = field(default_factory=UNetCounter)

    def __call__(self, z: torch.Tensor, t: torch.Tensor, cond: torch.Tensor, uncond: torch.Tensor,
                 extra: Optional[dict] = None) -> torch.Tensor:
        """z: (B, C, h, w) float32 on the UNet's device; cond, uncond: (B, L, D) text embeddings."""
        halves = []
        if self.guidance != 1.0:
            halves.append(uncond)
        if self.guidance != 0.0:
            halves.append(cond)
        n = z.shape[0]
        latents = torch.cat([z] * len(halves))
        context = torch.cat(halves)
        out = self.run(latents, t, context, extra)
        if len(halves) == 1:
            return out
        out_uncond, out_cond = out[:n], out[n:]
        return out_uncond + self.guidance * (out_cond - out_uncond)

    def run(self, latents: torch.Tensor, t: torch.Tensor, context: torch.Tensor, extra: Optional[dict]) -> torch.Tensor:
        dtype = self.unet.dtype
        device = self.unet.device
        outs = []
        for lo in range(0, latents.shape[0], self.max_batch):
            hi = lo + self.max_batch
            sample = latents[lo:hi].to(device, dtype)
            hidden = context[lo:hi].to(device, dtype)
            with torch.inference_mode():
                pred = self.unet(sample, t.to(device), encoder_hidden_states=hidden, return_dict=False)[0]
            self.counter.calls += 1
            self.counter.rows += sample.shape[0]
            outs.append(pred.float())
        return torch.cat(outs)
