"""GPU memory each model family's weights take, computed from the architectures' configs (not a
test; numbers for the README's family table):

    python benchmarks/family_memory.py [MODEL_FOLDER ...]

The components are built on PyTorch's meta device (no memory, no download) from the published
configs of SD 1.5, SDXL base and Flux.1 dev, written out below, and counted; the known parameter
counts (SD 1.5 UNet 859.5M, SDXL UNet 2567.5M, Flux.1 transformer 11.9B, T5-XXL encoder 4.76B)
check that the configs are the real ones. A diffusers
folder given on the command line is counted from its own config files the same way.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))

CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
              max_position_embeddings=77, projection_dim=768)
OPENCLIP_BIGG = dict(hidden_size=1280, intermediate_size=5120, num_attention_heads=20, num_hidden_layers=32,
                     max_position_embeddings=77, projection_dim=1280, hidden_act="gelu")
VAE = dict(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
           up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, layers_per_block=2)
T5_XXL = dict(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
              feed_forward_proj="gated-gelu", is_encoder_decoder=False)
FAMILIES = {
    "sd (SD 1.5)": dict(unet=dict(sample_size=64, cross_attention_dim=768, attention_head_dim=8), text=[CLIP_L]),
    "sdxl (SDXL base)": dict(
        unet=dict(sample_size=128, block_out_channels=(320, 640, 1280), layers_per_block=2,
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                  transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), cross_attention_dim=2048,
                  use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
                  projection_class_embeddings_input_dim=2816),
        text=[CLIP_L, OPENCLIP_BIGG]),
    # FluxTransformer2DModel's defaults are Flux.1's (19 double, 38 single blocks, 24 heads of 128); dev
    # adds the guidance embedding. The encoders: CLIP-L (pooled) and T5 v1.1 XXL's encoder.
    "flux (Flux.1 dev)": dict(transformer=dict(guidance_embeds=True), text=[CLIP_L], t5=T5_XXL,
                              vae=dict(VAE, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)),
}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def family_counts(spec: dict) -> dict[str, int]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        if "transformer" in spec:
            from diffusers import FluxTransformer2DModel

            counts = {"transformer": count(FluxTransformer2DModel(**spec["transformer"]))}
        else:
            counts = {"unet": count(UNet2DConditionModel(**spec["unet"]))}
        counts["vae"] = count(AutoencoderKL(**spec.get("vae", VAE)))
        for i, text in enumerate(spec["text"]):
            model = (CLIPTextModel if i == 0 else CLIPTextModelWithProjection)(CLIPTextConfig(**text))
            counts[f"text encoder {i + 1}"] = count(model)
        if "t5" in spec:
            from transformers import T5Config, T5EncoderModel

            counts["T5 encoder"] = count(T5EncoderModel(T5Config(**spec["t5"])))
    return counts


def folder_counts(folder: Path) -> dict[str, int]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import AutoConfig, CLIPTextModel, CLIPTextModelWithProjection

    counts = {}
    with torch.device("meta"):
        counts["unet"] = count(UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(folder / "unet")))
        counts["vae"] = count(AutoencoderKL.from_config(AutoencoderKL.load_config(folder / "vae")))
        for i, (name, cls) in enumerate((("text_encoder", CLIPTextModel),
                                         ("text_encoder_2", CLIPTextModelWithProjection))):
            if (folder / name).is_dir():
                counts[f"text encoder {i + 1}"] = count(cls(AutoConfig.from_pretrained(folder / name)))
    return counts


def show(name: str, counts: dict[str, int]) -> None:
    total = sum(counts.values())
    parts = ", ".join(f"{k} {v / 1e6:.1f}M" for k, v in counts.items())
    print(f"| {name} | {parts} | {total / 1e6:.1f}M | {total * 2 / 2**30:.2f} GiB | {total * 4 / 2**30:.2f} GiB |")


def main() -> None:
    print("| family | parameters | total | weights fp16/bf16 | weights fp32 |")
    print("|---|---|---|---|---|")
    for name, spec in FAMILIES.items():
        show(name, family_counts(spec))
    for folder in sys.argv[1:]:
        show(folder, folder_counts(Path(folder)))


if __name__ == "__main__":
    main()
