"""Model families: what differs between SD 1.x/2.x, SDXL-class and Flux-class models, one adapter each.

The pipeline, the plan, alignment, ranking, the daemon and the clients do not know which family
runs. A family says how prompts become text conditioning (a `Prompt`), which keyword arguments the
UNet (and a ControlNet made for the same family) takes for it, and which diffusers pipeline class
holds its components (single files, LoRAs). The rest (the VAE's scaling and shift, the latent
channels, the noise schedule, how noise is added at a level and its sampler) is read from the
components' own configs (latentween.schedulers).

- `sd` (SD 1.x/2.x): one CLIP text encoder's last hidden state.
- `sdxl`: both encoders' penultimate hidden states side by side, the second encoder's pooled
  projection, and the size/crop time ids (original size, crop top-left, target size) as diffusers'
  StableDiffusionXLPipeline conditions the UNet; with the model's `force_zeros_for_empty_prompt`,
  an empty negative prompt is zeros there, and here.
- `flux` (flow matching, FluxPipeline's components): the T5 encoder's last hidden state as context,
  CLIP's pooled output as the pooled embedding; a guidance-distilled model (dev) takes `--guidance`
  as its guidance embedding and runs one forward per step; true classifier-free guidance with the
  negative prompt only when asked (`--true-cfg` > 1). The transformer runs behind latentween.flux's
  PackedTransformer, so latents stay (B, C, h, w) everywhere else.

Which family a model is comes from diffusers' own names: the pipeline class and components in
model_index.json, or the key prefixes of a single-file checkpoint (`family_of_index`, `family_of_keys`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, Sequence

from latentween.errors import ModelError

if TYPE_CHECKING:  # torch loads with a model, not when the model manager merely names one
    import torch

SUPPORTED = ("SD 1.x/2.x, SDXL-class models (SDXL base, Turbo, Lightning and their fine-tunes) and Flux.1 "
             "(dev, schnell) as diffusers folders")
# Families diffusers names that latentween does not run (yet): refused with one line.
_OTHERS = {"StableDiffusion3Pipeline": "a Stable Diffusion 3 model",
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
    default_controlnet: Optional[str] = "lllyasviel/control_v11p_sd15_openpose"
    flow = False  # noise prediction; flow-matching families predict a velocity (latentween.schedulers)
    patch = 1  # latent pixels per token side: images are multiples of vae_scale_factor * patch

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

    def guidance(self, scale: float, true_cfg: float = 1.0) -> tuple[float, Callable[[Prompt, "torch.Tensor"], dict]]:
        """(classifier-free guidance scale, the denoiser's conditioning) for --guidance and --true-cfg."""
        return scale, self.unet_kwargs

    def fit_controlnet(self, controlnet, components):
        """The ControlNet as the denoiser calls it, if it was made for this model; ModelError otherwise."""
        ours, theirs = components.unet.config.cross_attention_dim, controlnet.config.get("cross_attention_dim")
        if theirs != ours:
            raise ModelError(f"it belongs to another base model (cross-attention width {theirs}, the model has {ours})")
        return controlnet

    def pipeline_parts(self, components) -> dict:
        """The loaded components as `pipeline_class` takes them (LoRA loading borrows that pipeline)."""
        return dict(vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
                    unet=components.unet, scheduler=None, safety_checker=None, feature_extractor=None,
                    requires_safety_checker=False)


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

    def pipeline_parts(self, components) -> dict:
        return dict(vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
                    unet=components.unet, scheduler=None, text_encoder_2=components.text_encoder_2,
                    tokenizer_2=components.tokenizer_2)


class Flux(SD):
    """Flux.1: T5 context and CLIP pooled embedding, guidance embedding when distilled (module docstring)."""

    name = "flux"
    pipeline_class = "FluxPipeline"
    # a union ControlNet (openpose is its mode 4; latentween.flux.PackedControlNet)
    default_controlnet = "Shakker-Labs/FLUX.1-dev-ControlNet-Union-Pro"
    flow = True
    patch = 2  # the transformer reads 2x2 latent patches (latentween.flux.pack)
    MAX_SEQUENCE = 512  # FluxPipeline's max_sequence_length

    def __init__(self, components):
        super().__init__(components)
        self.encoders.append((components.tokenizer_2, components.text_encoder_2))
        self.distilled = bool(components.unet.config.get("guidance_embeds", False))

    def encode(self, texts: Sequence[str]) -> Prompt:
        import torch

        (clip_tokenizer, clip), (t5_tokenizer, t5) = self.encoders
        with torch.inference_mode():
            pooled = clip(_tokens(clip_tokenizer, texts, clip.device), output_hidden_states=False).pooler_output
            length = min(self.MAX_SEQUENCE, t5_tokenizer.model_max_length)
            hidden = t5(_tokens(t5_tokenizer, texts, t5.device, length), output_hidden_states=False)[0]
        return Prompt(hidden.float(), pooled.float())

    def unet_kwargs(self, context: Prompt, sample: torch.Tensor) -> dict:
        return {"encoder_hidden_states": context.hidden, "pooled_projections": context.pooled}

    def guidance(self, scale: float, true_cfg: float = 1.0):
        """True CFG only when asked (FluxPipeline's true_cfg_scale); --guidance is a distilled model's
        guidance embedding (dev), and means nothing to a model without one (schnell)."""
        if not self.distilled:
            return true_cfg, self.unet_kwargs
        import torch

        embedded = torch.tensor([float(scale)])
        return true_cfg, lambda context, sample: {**self.unet_kwargs(context, sample), "guidance": embedded}

    def fit_controlnet(self, controlnet, components):
        from latentween.flux import wrap_controlnet

        ours, theirs = components.unet.config.joint_attention_dim, controlnet.config.get("joint_attention_dim")
        if theirs != ours:
            raise ModelError(f"it belongs to another base model (text width {theirs}, the model has {ours})")
        return wrap_controlnet(controlnet, components.vae)

    def pipeline_parts(self, components) -> dict:
        return dict(vae=components.vae, text_encoder=components.text_encoder, tokenizer=components.tokenizer,
                    text_encoder_2=components.text_encoder_2, tokenizer_2=components.tokenizer_2,
                    transformer=components.unet.transformer, scheduler=None)


FAMILIES = {"sd": SD, "sdxl": SDXL, "flux": Flux}


def recommended_settings(folder: Path) -> dict:
    """Settings a family wants where neither the user nor the model folder says (MorphSettings.with_defaults):
    FluxPipeline's own defaults, guidance 3.5 for a guidance-distilled Flux (dev), 4 steps for one
    without guidance (schnell). Read from the folder's configs, nothing loaded."""
    import json

    try:
        index = json.loads((folder / "model_index.json").read_text())
        if index.get("_class_name") != "FluxPipeline":
            return {}
        transformer = json.loads((folder / "transformer" / "config.json").read_text())
    except (OSError, ValueError, AttributeError):
        return {}  # loading the model reports a broken folder in its own words
    return {"guidance": 3.5} if transformer.get("guidance_embeds") else {"steps": 4}


def family_of_index(index: dict, spec: str) -> str:
    """The family of a diffusers folder from its model_index.json; one line naming what runs if none."""
    name = index.get("_class_name", "")
    if name in _OTHERS:
        raise ModelError(f"model {spec!r} is {_OTHERS[name]} ({name}); latentween runs {SUPPORTED}")
    if name == "FluxPipeline" and "transformer" in index and "text_encoder_2" in index:
        return "flux"
    if "unet" in index and "text_encoder" in index and "text_encoder_2" in index:
        return "sdxl"
    if "unet" in index and "text_encoder" in index:
        return "sd"
    raise ModelError(f"model {spec!r} ({name or 'no pipeline class'}) is not a family latentween runs: {SUPPORTED}")


def family_of_keys(keys: Sequence[str], spec: str) -> str:
    """The family of a single-file checkpoint from its tensor names (the original layouts' prefixes)."""
    if any(k.startswith(("double_blocks.", "model.diffusion_model.double_blocks.")) for k in keys):
        raise ModelError(f"model {spec!r} is a Flux transformer alone (a single file); latentween runs {SUPPORTED}")
    if any(k.startswith(("joint_blocks.", "model.diffusion_model.joint_blocks.")) for k in keys):
        raise ModelError(f"model {spec!r} is a Stable Diffusion 3 checkpoint; latentween runs {SUPPORTED}")
    if any(k.startswith("conditioner.embedders.") for k in keys):
        if not any(k.startswith("conditioner.embedders.0.transformer.") for k in keys):
            raise ModelError(f"model {spec!r} is an SDXL refiner (it has no first text encoder); latentween runs {SUPPORTED}")
        return "sdxl"
    return "sd"


def _tokens(tokenizer, texts: Sequence[str], device, length: Optional[int] = None) -> torch.Tensor:
    return tokenizer(list(texts), padding="max_length", max_length=length or tokenizer.model_max_length,
                     truncation=True, return_tensors="pt").input_ids.to(device)
