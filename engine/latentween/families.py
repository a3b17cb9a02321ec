"""Model families: what differs between SD 1.x/2.x and SDXL-class models, one adapter each.

The pipeline, the plan, alignment, ranking, the daemon and the clients do not know which family
runs. A family says how prompts become text conditioning (a `Prompt`), which keyword arguments the
UNet (and a ControlNet made for the same family) takes for it, and which diffusers pipeline class
holds its components (single files, LoRAs). The rest (the VAE's scaling and shift, the latent
channels, the noise schedule and its sampler) is read from the components' own configs.

- `sd` (SD 1.x/2.x): one CLIP text encoder's last hidden state.
- `sdxl`: both encoders' penultimate hidden states side by side, the second encoder's pooled
  projection, and the size/crop time ids (original size, crop top-left, target size) as diffusers'
  StableDiffusionXLPipeline conditions the UNet; with the model's `force_zeros_for_empty_prompt`,
  an empty negative prompt is zeros there, and here.

Which family a model is comes from diffusers' own names: the pipeline class and components in
model_index.json, or the key prefixes of a single-file checkpoint (`family_of_index`, `family_of_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from latentween.errors import ModelError

if TYPE_CHECKING:  # torch loads with a model, not when the model manager merely names one
    import torch

SUPPORTED = "SD 1.x/2.x and SDXL-class models (SDXL base, Turbo, Lightning and their fine-tunes)"
# Families diffusers names that latentween does not run (yet): refused with one line.
_OTHERS = {"FluxPipeline": "a Flux model", "StableDiffusion3Pipeline": "a Stable Diffusion 3 model",
           "StableDiffusionXLImg2ImgPipeline": "an SDXL refiner (it has no first text encoder)",
           "PixArtAlphaPipeline": "a PixArt model", "PixArtSigmaPipeline": "a PixArt model",
           "SanaPipeline": "a Sana model", "AuraFlowPipeline": "an AuraFlow model"}


@dataclass(frozen=True)
class Prompt:
    """Text conditioning of one prompt (hidden (L, D), pooled (P,)) or of rows of them ((N, L, D),
    (N, P)): the cross-attention context and, for SDXL, the pooled embedding. Every operation applies
    to each part, so a frame's conditioning is the slerp of the keyframes' in each part (METHOD.md 3)."""

    hidden: torch.Tensor
    pooled: Optional[torch.Tensor] = None

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> "Prompt":
        return Prompt(fn(self.hidden), None if self.pooled is None else fn(self.pooled))

    def __getitem__(self, index) -> "Prompt":
        return self.map(lambda x: x[index])

    def to(self, *args, **kwargs) -> "Prompt":
        return self.map(lambda x: x.to(*args, **kwargs))

    def repeat(self, n: int) -> "Prompt":
        """One prompt as `n` rows (views, not copies)."""
        return self.map(lambda x: x.expand(n, *x.shape))

    def parts(self) -> dict[str, torch.Tensor]:
        return {"hidden": self.hidden} if self.pooled is None else {"hidden": self.hidden, "pooled": self.pooled}

    @staticmethod
    def from_parts(parts: dict) -> "Prompt":
        return Prompt(parts["hidden"], parts.get("pooled"))

    @staticmethod
    def cat(prompts: Sequence["Prompt"]) -> "Prompt":
        import torch

        pooled = [p.pooled for p in prompts]
        return Prompt(torch.cat([p.hidden for p in prompts]), None if pooled[0] is None else torch.cat(pooled))

    @staticmethod
    def stack(prompts: Sequence["Prompt"]) -> "Prompt":
        return Prompt.cat([p.repeat(1) for p in prompts])


def slerp_prompts(a: Prompt, b: Prompt, t) -> Prompt:
    """Rows of `a` and `b` slerped part by part at `t` (scalar or (N,)) (METHOD.md 3)."""
    from latentween.method import slerp

    return Prompt(slerp(a.hidden, b.hidden, t), None if a.pooled is None else slerp(a.pooled, b.pooled, t))


class SD:
    """SD 1.x/2.x: one CLIP text encoder, its last hidden state."""

    name = "sd"
    pipeline_class = "StableDiffusionPipeline"
    default_controlnet = "lllyasviel/control_v11p_sd15_openpose"

    def __init__(self, components):
        self.encoders = [(components.tokenizer, components.text_encoder)]
        self.vae_scale_factor = components.vae_scale_factor
        self.zero_empty_negative = False

    def encode(self, texts: Sequence[str]) -> Prompt:
        """Prompt embeddings, padded to the tokenizer's length as the model was trained."""
        import torch

        tokenizer, encoder = self.encoders[0]
        with torch.inference_mode():
            return Prompt(encoder(_tokens(tokenizer, texts, encoder.device), return_dict=False)[0].float())

    def encode_pair(self, prompt: str, negative: str) -> tuple[Prompt, Prompt]:
        """(prompt, negative), one prompt each."""
        both = self.encode([prompt, negative])
        cond, uncond = both[0], both[1]
        if self.zero_empty_negative and not negative:
            import torch

            uncond = uncond.map(torch.zeros_like)
        return cond, uncond

    def unet_kwargs(self, context: Prompt, sample: torch.Tensor) -> dict:
        """Keyword arguments of the UNet (and its ControlNet) for latents `sample` (B, C, h, w)."""
        return {"encoder_hidden_states": context.hidden}


class SDXL(SD):
    """SDXL: two CLIP text encoders, the pooled embedding and the size/crop time ids (module docstring)."""

    name = "sdxl"
    pipeline_class = "StableDiffusionXLPipeline"
    default_controlnet = "thibaud/controlnet-openpose-sdxl-1.0"

    def __init__(self, components):
        super().__init__(components)
        self.encoders.append((components.tokenizer_2, components.text_encoder_2))
        self.zero_empty_negative = bool(components.extras.get("force_zeros_for_empty_prompt", True))

    def encode(self, texts: Sequence[str]) -> Prompt:
        import torch

        hidden, pooled = [], None
        with torch.inference_mode():
            for tokenizer, encoder in self.encoders:
                out = encoder(_tokens(tokenizer, texts, encoder.device), output_hidden_states=True)
                hidden.append(out.hidden_states[-2].float())
                pooled = out[0].float()  # the last encoder's projected pooled output (text_embeds)
        return Prompt(torch.cat(hidden, dim=-1), pooled)

    def unet_kwargs(self, context: Prompt, sample: torch.Tensor) -> dict:
        import torch

        h, w = (int(n) * self.vae_scale_factor for n in sample.shape[-2:])
        # original size, crop top-left, target size: the whole image at the size it is made
        time_ids = torch.tensor([h, w, 0, 0, h, w], dtype=context.hidden.dtype, device=context.hidden.device)
        return {"encoder_hidden_states": context.hidden,
                "added_cond_kwargs": {"text_embeds": context.pooled, "time_ids": time_ids.expand(sample.shape[0], 6)}}


FAMILIES = {"sd": SD, "sdxl": SDXL}


def family_of_index(index: dict, spec: str) -> str:
    """The family of a diffusers folder from its model_index.json; one line naming what runs if none."""
    name = index.get("_class_name", "")
    if name in _OTHERS:
        raise ModelError(f"model {spec!r} is {_OTHERS[name]} ({name}); latentween runs {SUPPORTED}")
    if "unet" in index and "text_encoder" in index and "text_encoder_2" in index:
        return "sdxl"
    if "unet" in index and "text_encoder" in index:
        return "sd"
    raise ModelError(f"model {spec!r} ({name or 'no pipeline class'}) is not a family latentween runs: {SUPPORTED}")


def family_of_keys(keys: Sequence[str], spec: str) -> str:
    """The family of a single-file checkpoint from its tensor names (the original layouts' prefixes)."""
    if any(k.startswith(("double_blocks.", "model.diffusion_model.double_blocks.")) for k in keys):
        raise ModelError(f"model {spec!r} is a Flux checkpoint; latentween runs {SUPPORTED}")
    if any(k.startswith(("joint_blocks.", "model.diffusion_model.joint_blocks.")) for k in keys):
        raise ModelError(f"model {spec!r} is a Stable Diffusion 3 checkpoint; latentween runs {SUPPORTED}")
    if any(k.startswith("conditioner.embedders.") for k in keys):
        if not any(k.startswith("conditioner.embedders.0.transformer.") for k in keys):
            raise ModelError(f"model {spec!r} is an SDXL refiner (it has no first text encoder); latentween runs {SUPPORTED}")
        return "sdxl"
    return "sd"


def _tokens(tokenizer, texts: Sequence[str], device) -> torch.Tensor:
    return tokenizer(list(texts), padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids.to(device)
