"""A tiny SDXL-layout checkpoint beside the SD one: `write_tiny_sdxl(DIR)`.

DIR is a diffusers StableDiffusionXLPipeline folder (model_index.json, unet/, vae/, text_encoder/,
text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/) with seeded random weights and SDXL's
conditioning: the UNet's "text_time" embedding takes the second encoder's pooled projection plus the
six size/crop ids, and cross-attends to both encoders' hidden states side by side. Beside it,
DIR/single_file.safetensors holds the same weights in the layout of SDXL single files
(sd_xl_base_1.0.safetensors and its A1111/ComfyUI fine-tunes), and DIR/controlnet/ a tiny SDXL
ControlNet. A 64x64 image makes an 8x8x4 latent, so a morph takes seconds on a CPU.

The two encoders have different widths (32 and 64) on purpose: diffusers' single-file loader tells
CLIP-L from the open_clip encoder by the width of the position embedding, as the real 768 and 1280 do.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

# Widths of the two text encoders; the UNet cross-attends to both side by side.
TEXT_WIDTH, TEXT_WIDTH_2, PROJECTION = 32, 64, 32
TIME_EMBED = 8  # addition_time_embed_dim: each of the 6 size/crop ids gets a sinusoid this wide


def build_sdxl_components(seed: int = 0) -> dict:
    """The tiny SDXL components, each built right after torch.manual_seed(seed)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    from latentween.testing.tiny import _build_tokenizer

    torch.manual_seed(seed)
    # Narrower than the SD UNet (16, 32 channels) to stay small with SDXL's extras: two transformer
    # layers in the attention block and the middle (layer indices must survive the LDM round trip),
    # linear proj_in/proj_out, and the "text_time" embedding of pooled text plus size/crop ids.
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2), attention_head_dim=(2, 4), use_linear_projection=True,
        cross_attention_dim=TEXT_WIDTH + TEXT_WIDTH_2, addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED, projection_class_embeddings_input_dim=PROJECTION + 6 * TIME_EMBED,
        norm_num_groups=8)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=64, scaling_factor=0.13025, force_upcast=True)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, vocab_size = _build_tokenizer(Path(tmp))
        # SDXL's second tokenizer pads with "!" rather than the end-of-text token
        tokenizer_2 = CLIPTokenizer.from_pretrained(tmp, model_max_length=16, pad_token="!")
    common = dict(vocab_size=vocab_size, max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1)
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_attention_heads=4, num_hidden_layers=5,
        projection_dim=PROJECTION, **common))
    torch.manual_seed(seed)
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
        hidden_size=TEXT_WIDTH_2, intermediate_size=37, num_attention_heads=4, num_hidden_layers=3,
        hidden_act="gelu", projection_dim=PROJECTION, **common))
    # SDXL base's scheduler_config.json, less the keys EulerDiscreteScheduler does not take
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        prediction_type="epsilon", interpolation_type="linear", use_karras_sigmas=False, steps_offset=1,
        timestep_spacing="leading")
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2, tokenizer=tokenizer,
                tokenizer_2=tokenizer_2, scheduler=scheduler)


def write_tiny_sdxl(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny SDXL model to `folder` (diffusers layout, single_file.safetensors, controlnet/)."""
    from diffusers import StableDiffusionXLPipeline

    from latentween.testing.single_file import write_sdxl_single_file
    from latentween.testing.tiny import build_controlnet

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = build_sdxl_components(seed)
    StableDiffusionXLPipeline(**parts, force_zeros_for_empty_prompt=True).save_pretrained(
        folder, safe_serialization=True)
    write_sdxl_single_file(parts["unet"], parts["vae"], parts["text_encoder"], parts["text_encoder_2"],
                           folder / "single_file.safetensors")
    build_controlnet(parts["unet"], seed).save_pretrained(folder / "controlnet", safe_serialization=True)
    return folder
