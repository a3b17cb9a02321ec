"""Flux-class flow-matching transformers behind the UNet's calling convention.

The method works on latents as images (B, C, h, w): slerp, alignment and warping read them so. Flux's
transformer reads 2x2 patches of them as tokens (FluxPipeline's `_pack_latents`), with each token's
grid position as its rotary id, and predicts the flow velocity v = eps - x0 per token.
`PackedTransformer` packs on the way in and unpacks on the way out, and takes the timestep as
the flow scheduler names it (sigma * 1000; Flux itself wants sigma), so the guidance wrapper,
textual inversion and the pipeline call it as they call a UNet.
"""
from __future__ import annotations

from typing import Optional

import torch


def pack(latents: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h/2 * w/2, 4C): 2x2 patches as tokens, row-major (FluxPipeline._pack_latents)."""
    b, c, h, w = latents.shape
    x = latents.view(b, c, h // 2, 2, w // 2, 2).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(b, (h // 2) * (w // 2), c * 4)


def unpack(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The inverse of `pack` for latents of size (h, w)."""
    b, _, d = tokens.shape
    x = tokens.view(b, h // 2, w // 2, d // 4, 2, 2).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(b, d // 4, h, w)


def tokens_to_grid(tokens: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Image tokens (B, h/2 * w/2, D) as a feature map (B, D, h/2, w/2), for alignment's matching."""
    b, _, d = tokens.shape
    return tokens.transpose(1, 2).reshape(b, d, h // 2, w // 2)


def image_ids(h: int, w: int, device, dtype) -> torch.Tensor:
    """Rotary position ids of the tokens of (h, w) latents: (0, row, column) per 2x2 patch."""
    ids = torch.zeros(h // 2, w // 2, 3)
    ids[..., 1] += torch.arange(h // 2)[:, None]
    ids[..., 2] += torch.arange(w // 2)[None, :]
    return ids.reshape(-1, 3).to(device=device, dtype=dtype)


class _Wrapper(torch.nn.Module):
    """Shows the wrapped model's config, dtype and device, which the UNet's callers read."""

    holder = ""  # the attribute that holds the wrapped model (a registered submodule)

    @property
    def wrapped(self) -> torch.nn.Module:
        return getattr(self, self.holder)

    @property
    def config(self):
        return self.wrapped.config

    @property
    def dtype(self) -> torch.dtype:
        return self.wrapped.dtype

    @property
    def device(self) -> torch.device:
        return self.wrapped.device


class PackedTransformer(_Wrapper):
    """A FluxTransformer2DModel called like a UNet: (sample (B, C, h, w), timestep, text) -> (velocity,)."""

    holder = "transformer"

    def __init__(self, transformer):
        super().__init__()
        self.transformer = transformer

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor,
                pooled_projections: torch.Tensor, guidance: Optional[torch.Tensor] = None, return_dict: bool = False,
                down_block_additional_residuals=None, mid_block_additional_residual=None) -> tuple[torch.Tensor]:
        """The residuals a PackedControlNet returns come in under the UNet's names: its double-stream
        blocks' as `down_block_additional_residuals`, its single-stream blocks' as `mid_...`."""
        h, w = sample.shape[-2:]
        out = self.transformer(**_inputs(sample, timestep, encoder_hidden_states, pooled_projections, guidance),
                               controlnet_block_samples=down_block_additional_residuals,
                               controlnet_single_block_samples=mid_block_additional_residual, return_dict=False)[0]
        return (unpack(out, h, w),)

    def feature_taps(self, h: int, w: int) -> list:
        """(module, output -> feature map) for latents (h, w): the image tokens, as a grid, of the last
        double-stream block and the middle single-stream block (both return (text, image) tokens)."""
        blocks = [self.transformer.transformer_blocks[-1]]
        singles = self.transformer.single_transformer_blocks
        if len(singles):
            blocks.append(singles[len(singles) // 2])
        return [(block, lambda out: tokens_to_grid(out[1], h, w)) for block in blocks]


# The union ControlNets' (InstantX, Shakker-Labs FLUX.1-dev-ControlNet-Union) index of the openpose mode
OPENPOSE_MODE = 4


class PackedControlNet(_Wrapper):
    """A FluxControlNetModel called like an SD ControlNet: (sample, timestep, controlnet_cond (B, 3, H, W)
    pixels in [0, 1], conditioning_scale, text) -> (double-block residuals, single-block residuals).
    The control image is VAE-encoded, shifted, scaled and packed as FluxControlNetPipeline does for
    ControlNets without a hint block (InstantX, Shakker-Labs); a union ControlNet gets the openpose mode."""

    holder = "controlnet"

    def __init__(self, controlnet, vae):
        super().__init__()
        self.controlnet, self.vae = controlnet, vae

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, controlnet_cond: torch.Tensor,
                conditioning_scale: float = 1.0, *, encoder_hidden_states: torch.Tensor,
                pooled_projections: torch.Tensor, guidance: Optional[torch.Tensor] = None, return_dict: bool = False):
        config = self.vae.config
        pixels = controlnet_cond.to(self.vae.dtype) * 2 - 1
        control = self.vae.encode(pixels).latent_dist.mean  # the pipeline samples; the mean keeps it deterministic
        control = (control - (config.shift_factor or 0.0)) * config.scaling_factor
        mode = None
        if self.controlnet.union:
            mode = torch.full((sample.shape[0], 1), OPENPOSE_MODE, dtype=torch.long, device=sample.device)
        blocks, singles = self.controlnet(
            **_inputs(sample, timestep, encoder_hidden_states, pooled_projections, guidance),
            controlnet_cond=pack(control.to(sample.dtype)), controlnet_mode=mode,
            conditioning_scale=conditioning_scale, return_dict=False)
        return blocks, singles


def wrap_controlnet(controlnet, vae) -> PackedControlNet:
    from latentween.errors import ModelError

    if type(controlnet).__name__ != "FluxControlNetModel":
        raise ModelError(f"it is a {type(controlnet).__name__}, not a Flux ControlNet (FluxControlNetModel)")
    if controlnet.input_hint_block is not None:
        raise ModelError("it is an XLabs-style Flux ControlNet (a pixel hint block), which latentween does not run; "
                         "InstantX and Shakker-Labs ones work")
    return PackedControlNet(controlnet, vae)


def _inputs(sample, timestep, encoder_hidden_states, pooled_projections, guidance) -> dict:
    """What Flux's transformer and ControlNet both take for latents `sample` (B, C, h, w) at a scheduler
    timestep (sigma * 1000): tokens, ids, sigma and the guidance embedding, as FluxPipeline passes them."""
    b, _, h, w = sample.shape
    t = torch.as_tensor(timestep, device=sample.device).to(sample.dtype).reshape(-1).expand(b) / 1000
    if guidance is not None:
        guidance = guidance.to(sample.device, torch.float32).reshape(-1).expand(b)
    return dict(hidden_states=pack(sample), encoder_hidden_states=encoder_hidden_states,
                pooled_projections=pooled_projections, timestep=t, guidance=guidance,
                img_ids=image_ids(h, w, sample.device, sample.dtype),
                txt_ids=torch.zeros(encoder_hidden_states.shape[1], 3, device=sample.device, dtype=sample.dtype))


def load_flux(location: str, dtype, common: dict) -> dict:
    """The components of a diffusers FluxPipeline folder (transformer, VAE, CLIP and T5 encoders)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import AutoTokenizer, CLIPTextModel, T5EncoderModel

    transformer = FluxTransformer2DModel.from_pretrained(location, subfolder="transformer", torch_dtype=dtype, **common)
    return {
        "unet": PackedTransformer(transformer),
        "vae": AutoencoderKL.from_pretrained(location, subfolder="vae", torch_dtype=dtype, **common),
        "text_encoder": CLIPTextModel.from_pretrained(location, subfolder="text_encoder", dtype=dtype, **common),
        "tokenizer": AutoTokenizer.from_pretrained(location, subfolder="tokenizer", **common),
        "text_encoder_2": T5EncoderModel.from_pretrained(location, subfolder="text_encoder_2", dtype=dtype, **common),
        "tokenizer_2": AutoTokenizer.from_pretrained(location, subfolder="tokenizer_2", **common),
        "scheduler_config": FlowMatchEulerDiscreteScheduler.load_config(location, subfolder="scheduler", **common),
    }
