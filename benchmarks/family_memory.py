"""GPU memory each model family's weights take, computed from the architectures' configs (not a
test; numbers for the README's family table):

    python benchmarks/family_memory.py [MODEL_FOLDER ...]

The components are built on PyTorch's meta device (no memory, no download) from the published
configs of SD 1.5 and SDXL base, written out below, and counted; the known parameter counts
(SD 1.5 UNet 859.5M, SDXL UNet 2567.5M) check that the configs are the real ones. A diffusers
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
}


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def family_counts(spec: dict) -> dict[str, int]:
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    with torch.device("meta"):
        counts = {"unet": count(UNet2DConditionModel(**spec["unet"])), "vae": count(AutoencoderKL(**VAE))}
        for i, text in enumerate(spec["text"]):
            model = (CLIPTextModel if i == 0 else CLIPTextModelWithProjection)(CLIPTextConfig(**text))
            counts[f"text encoder {i + 1}"] = count(model)
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
