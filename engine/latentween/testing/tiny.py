"""Write a complete tiny Stable-Diffusion-layout checkpoint: `python -m latentween.testing.tiny DIR`.

The folder has the standard diffusers layout (model_index.json, unet/, vae/, text_encoder/,
tokenizer/, scheduler/) with seeded random weights, so tests load it through exactly the code path
users take with `--model DIR`. DIR/single_file.safetensors holds the same weights in the original
LDM layout A1111 and ComfyUI users have, for the single-file loader. A 64x64 image makes an 8x8x4
latent, as SD's 8x VAE does; a 17-frame morph takes seconds on a CPU. Beside the model: a tiny
OpenPose ControlNet (controlnet/), a tiny open_clip model (clip/) and a randomly initialised
OpenPose body network (openpose/body_pose_model.pth), a LoRA (lora/) and a tiny AutoencoderTiny
(preview_vae/), each in its real on-disk format. DIR/sdxl/ holds a tiny SDXL model the same way
(diffusers folder, single file in the SDXL layout, ControlNet; latentween.testing.tiny_sdxl), DIR/flux/
a tiny Flux.1-dev-layout model (latentween.testing.tiny_flux).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# A byte-level BPE vocabulary like CLIP's, built here: every byte as a symbol, with and without the
# end-of-word mark, plus a few merges so the tokenizer really merges.
_MERGES = ["d i", "di s", "dis k</w>", "r e", "re d</w>", "b l", "bl u", "blu e</w>", "t h", "th e</w>"]


def _byte_symbols() -> list[str]:
    """GPT-2/CLIP's printable stand-ins for the 256 byte values."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    extra = iter(range(256, 512))
    return [chr(b) if b in keep else chr(next(extra)) for b in range(256)]


def _build_tokenizer(folder: Path):
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    symbols = _byte_symbols()
    vocab_list = ["<|startoftext|>", "<|endoftext|>"] + symbols + [s + "</w>" for s in symbols]
    vocab_list += ["".join(m.split()) for m in _MERGES]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_MERGES) + "\n")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder), model_max_length=16)
    return tokenizer, len(vocab)


def build_components(seed: int = 0) -> dict:
    """The tiny components, each built right after torch.manual_seed(seed) so the files are reproducible."""
    import tempfile

    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=8)
    torch.manual_seed(seed)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=8, sample_size=64)
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, vocab_size = _build_tokenizer(Path(tmp))
    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=5, vocab_size=vocab_size,
        max_position_embeddings=16, bos_token_id=0, eos_token_id=1, pad_token_id=1, projection_dim=32))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, skip_prk_steps=True, steps_offset=1, set_alpha_to_one=False)
    return dict(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def build_controlnet(unet, seed: int = 0):
    """An OpenPose-style ControlNet for the tiny UNet. from_unet zero-initialises the residual
    convolutions, which would make it a no-op; small random ones make its effect testable."""
    import torch
    from diffusers import ControlNetModel

    controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(8, 16, 16, 16))
    torch.manual_seed(seed)
    for conv in [*controlnet.controlnet_down_blocks, controlnet.controlnet_mid_block,
                 controlnet.controlnet_cond_embedding.conv_out]:
        torch.nn.init.normal_(conv.weight, std=0.05)
        torch.nn.init.zeros_(conv.bias)
    return controlnet


CLIP_CONFIG = {
    "model_cfg": {
        "embed_dim": 32,
        "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "head_width": 32, "patch_size": 8},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    },
    "preprocess_cfg": {"mean": [0.48145466, 0.4578275, 0.40821073], "std": [0.26862954, 0.26130258, 0.27577711]},
}


def write_clip(folder: Path, seed: int = 0) -> Path:
    """A tiny open_clip model in open_clip's folder layout (open_clip_config.json + safetensors)."""
    import torch
    from open_clip.model import CLIP
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    cfg = CLIP_CONFIG["model_cfg"]
    model = CLIP(cfg["embed_dim"], cfg["vision_cfg"], cfg["text_cfg"])
    (folder / "open_clip_config.json").write_text(json.dumps(CLIP_CONFIG, indent=2))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "open_clip_model.safetensors"))
    return folder


def write_openpose(folder: Path, seed: int = 0) -> Path:
    """controlnet_aux's OpenPose body network with random weights, saved as body_pose_model.pth the way
    the original file stores it (keys without the sub-model prefix; fp16 to halve the 200 MB)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.model import bodypose_model
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    state = bodypose_model().state_dict()
    torch.save({k.split(".", 1)[1]: v.half() for k, v in state.items()}, folder / "body_pose_model.pth")
    return folder


def write_lora(folder: Path, unet, seed: int = 0) -> Path:
    """A LoRA on the tiny UNet's attention, saved the way diffusers' training scripts save one
    (pytorch_lora_weights.safetensors). Both LoRA matrices are random: peft starts B at zero, which
    would make a LoRA that changes nothing."""
    import copy

    import torch
    from diffusers import StableDiffusionPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = copy.deepcopy(unet)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in unet.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.3)
    StableDiffusionPipeline.save_lora_weights(folder, unet_lora_layers=get_peft_model_state_dict(unet),
                                              safe_serialization=True)
    return folder


def write_preview_vae(folder: Path, seed: int = 0) -> Path:
    """A tiny diffusers AutoencoderTiny (the TAESD layout) with the model's 8x scale, for --preview-vae."""
    import torch
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                    num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
                    latent_channels=4).save_pretrained(folder, safe_serialization=True)
    return folder


def write_tiny_checkpoint(folder: str | Path, seed: int = 0) -> Path:
    """Write the tiny model to `folder` (diffusers layout plus single_file.safetensors), and beside it
    controlnet/, clip/ and openpose/ for --controlnet, --clip-model and --pose-model, sdxl/ and flux/."""
    from diffusers import StableDiffusionPipeline

    from latentween.testing.single_file import write_single_file
    from latentween.testing.tiny_flux import write_tiny_flux
    from latentween.testing.tiny_sdxl import write_tiny_sdxl

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    parts = build_components(seed)
    pipe = StableDiffusionPipeline(**parts, safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(folder, safe_serialization=True)
    write_single_file(parts["unet"], parts["vae"], parts["text_encoder"], folder / "single_file.safetensors")
    build_controlnet(parts["unet"], seed).save_pretrained(folder / "controlnet", safe_serialization=True)
    write_clip(folder / "clip", seed)
    write_openpose(folder / "openpose", seed)
    write_lora(folder / "lora", parts["unet"], seed)
    write_preview_vae(folder / "preview_vae", seed)
    write_tiny_sdxl(folder / "sdxl", seed)
    write_tiny_flux(folder / "flux", seed)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m latentween.testing.tiny", description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="where to write the checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    path = write_tiny_checkpoint(args.folder, args.seed)
    print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
