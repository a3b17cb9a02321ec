"""A tiny Flux-layout checkpoint: `write_tiny_flux(DIR)`.

DIR is a diffusers FluxPipeline folder (model_index.json, transformer/, vae/, text_encoder/ (CLIP),
tokenizer/, text_encoder_2/ (T5), tokenizer_2/, scheduler/) with seeded random weights and Flux.1
dev's structure: a 16-channel VAE with Flux's scaling and shift, a transformer with double- and
single-stream blocks over 2x2 latent patches, the guidance embedding (dev; `guidance_embeds=False`
makes a schnell-like one), and dev's flow-matching scheduler config (resolution-dependent shift).
The T5 tokenizer is a small Unigram model built here with the tokenizers library, saved as the
tokenizer.json a T5TokenizerFast reads. A 64x64 image makes an 8x8x16 latent: 16 tokens.
DIR/controlnet is a tiny union Flux ControlNet (FluxControlNetModel) for --pose.
"""
from __future__ import annotations

import string
import tempfile
from pathlib import Path

TEXT_WIDTH, T5_WIDTH = 32, 32
T5_LENGTH = 16  # the tokenizer's model_max_length; real Flux T5 tokenizers say 512


def build_t5_tokenizer(max_length: int = T5_LENGTH):
    """A T5TokenizerFast over a Unigram vocabulary: specials, letters, digits and a few whole words."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    words = ["▁a", "▁disk", "▁red", "▁blue", "▁the", "▁square", "▁photo", "▁of"]
    chars = ["▁"] + list(string.ascii_lowercase + string.digits + ".,!-'") + ["▁" + c for c in string.ascii_lowercase]
    # whole words score higher than their letters, so the Unigram model really picks them
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)] + [(w, -1.0) for w in words] + [
        (c, -5.0) for c in dict.fromkeys(chars) if c not in words]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Replace(" +", " "), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    return T5TokenizerFast(tokenizer_object=tok, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=0,
                           model_max_length=max_length), len(vocab)


def build_flux_components(seed: int = 0, guidance_embeds: bool = True) -> dict:
    """The tiny Flux components, each built right after torch.manual_seed(seed)."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from latentween.testing.tiny import _build_tokenizer

    torch.manual_seed(seed)
    # 16 latent channels in 2x2 patches = 64 inputs per token, as Flux.1; rotary axes sum to the head width
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=64, num_layers=1, num_single_layers=2, attention_head_dim=16, num_attention_heads=2,
        joint_attention_dim=T5_WIDTH, pooled_projection_dim=TEXT_WIDTH, guidance_embeds=guidance_embeds,
        axes_dims_rope=(4, 6, 6))
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, latent_channels=16, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=64, scaling_factor=0.3611, shift_factor=0.1159,
        use_quant_conv=False, use_post_quant_conv=False)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, vocab_size = _build_tokenizer(Path(tmp))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=TEXT_WIDTH, intermediate_size=37, num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=TEXT_WIDTH))
    tokenizer_2, t5_vocab = build_t5_tokenizer()
    torch.manual_seed(seed)
    text_encoder_2 = T5EncoderModel(T5Config(
        vocab_size=t5_vocab, d_model=T5_WIDTH, d_kv=8, d_ff=37, num_layers=2, num_heads=4, relative_attention_num_buckets=8,
        feed_forward_proj="gated-gelu", is_encoder_decoder=False, use_cache=False, pad_token_id=0, eos_token_id=1))
    # Flux.1 dev's scheduler_config.json
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096)
    return dict(transformer=transformer, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, scheduler=scheduler)


def build_flux_controlnet(transformer, seed: int = 0):
    """A union Flux ControlNet (InstantX/Shakker-Labs layout: VAE-encoded control image, a mode per
    control type) for the tiny transformer. Its output projections start at zero, a no-op; small
    random ones make its effect testable."""
    import torch
    from diffusers import FluxControlNetModel

    config = transformer.config
    torch.manual_seed(seed)
    controlnet = FluxControlNetModel(
        in_channels=config.in_channels, num_layers=1, num_single_layers=1, attention_head_dim=config.attention_head_dim,
        num_attention_heads=config.num_attention_heads, joint_attention_dim=config.joint_attention_dim,
        pooled_projection_dim=config.pooled_projection_dim, guidance_embeds=config.guidance_embeds,
        axes_dims_rope=list(config.axes_dims_rope), num_mode=10)
    for layer in [*controlnet.controlnet_blocks, *controlnet.controlnet_single_blocks]:
        torch.nn.init.normal_(layer.weight, std=0.05)
    return controlnet


def write_tiny_flux(folder: str | Path, seed: int = 0, guidance_embeds: bool = True) -> Path:
    """Write the tiny Flux model to `folder` in the diffusers layout, and a Flux ControlNet to folder/controlnet."""
    from diffusers import FluxPipeline

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = build_flux_components(seed, guidance_embeds)
    FluxPipeline(**parts).save_pretrained(folder, safe_serialization=True)
    build_flux_controlnet(parts["transformer"], seed).save_pretrained(folder / "controlnet", safe_serialization=True)
    return folder
