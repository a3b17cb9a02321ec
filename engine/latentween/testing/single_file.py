"""Save diffusers SD components as one checkpoint in the original LDM key layout (A1111/ComfyUI files).

Only tests need this: it lets them exercise `StableDiffusionPipeline.from_single_file`, the loader
users' .safetensors files go through. The key layout is that of CompVis' latent-diffusion code,
which diffusers' single-file converter reads; the mapping here is the inverse, for any block counts.
"""
from __future__ import annotations

from pathlib import Path

_RESNET = [("norm1", "in_layers.0"), ("conv1", "in_layers.2"), ("norm2", "out_layers.0"),
           ("conv2", "out_layers.3"), ("time_emb_proj", "emb_layers.1"), ("conv_shortcut", "skip_connection")]
_VAE_ATTN = [("group_norm", "norm"), ("to_q", "q"), ("to_k", "k"), ("to_v", "v"), ("to_out.0", "proj_out")]


def _rename(key: str, pairs) -> str:
    head, _, leaf = key.rpartition(".")  # leaf is weight/bias
    for new, old in pairs:
        if head.endswith(new):
            return head[: -len(new)] + old + "." + leaf
    return key


def unet_to_ldm(state: dict, layers: int) -> dict:
    """diffusers UNet2DConditionModel keys -> `model.diffusion_model.*` keys."""
    out = {}
    top = {"time_embedding.linear_1": "time_embed.0", "time_embedding.linear_2": "time_embed.2",
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2"}
    for key, value in state.items():
        parts = key.split(".")
        head = next((h for h in (".".join(parts[:2]), parts[0]) if h in top), None)
        if head is not None:
            new = top[head] + key[len(head):]
        elif parts[0] == "down_blocks":
            b = int(parts[1])
            if parts[2] == "downsamplers":
                new = f"input_blocks.{(b + 1) * (layers + 1)}.0.op." + ".".join(parts[5:])
            else:
                j = int(parts[3])
                slot = 0 if parts[2] == "resnets" else 1
                new = f"input_blocks.{1 + b * (layers + 1) + j}.{slot}." + ".".join(parts[4:])
                new = _rename(new, _RESNET) if slot == 0 else new
        elif parts[0] == "mid_block":
            slot = {("resnets", "0"): 0, ("attentions", "0"): 1, ("resnets", "1"): 2}[(parts[1], parts[2])]
            new = f"middle_block.{slot}." + ".".join(parts[3:])
            new = _rename(new, _RESNET) if parts[1] == "resnets" else new
        elif parts[0] == "up_blocks":
            b = int(parts[1])
            if parts[2] == "upsamplers":
                has_attention = any(k.startswith(f"up_blocks.{b}.attentions.") for k in state)
                new = f"output_blocks.{b * (layers + 1) + layers}.{2 if has_attention else 1}.conv." + ".".join(parts[5:])
            else:
                j = int(parts[3])
                slot = 0 if parts[2] == "resnets" else 1
                new = f"output_blocks.{b * (layers + 1) + j}.{slot}." + ".".join(parts[4:])
                new = _rename(new, _RESNET) if slot == 0 else new
        else:
            raise KeyError(f"unexpected UNet key {key}")
        out["model.diffusion_model." + new] = value
    return out


def vae_to_ldm(state: dict, blocks: int) -> dict:
    """diffusers AutoencoderKL keys -> `first_stage_model.*` keys (attention as 1x1 convs)."""
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        new = key
        if parts[1] == "down_blocks":
            if parts[3] == "downsamplers":
                new = f"{parts[0]}.down.{parts[2]}.downsample." + ".".join(parts[5:])
            else:
                new = f"{parts[0]}.down.{parts[2]}.block." + ".".join(parts[4:])
        elif parts[1] == "up_blocks":
            b = blocks - 1 - int(parts[2])
            if parts[3] == "upsamplers":
                new = f"{parts[0]}.up.{b}.upsample." + ".".join(parts[5:])
            else:
                new = f"{parts[0]}.up.{b}.block." + ".".join(parts[4:])
        elif parts[1] == "mid_block":
            if parts[2] == "resnets":
                new = f"{parts[0]}.mid.block_{int(parts[3]) + 1}." + ".".join(parts[4:])
            else:
                new = _rename(f"{parts[0]}.mid.attn_1." + ".".join(parts[4:]), _VAE_ATTN)
                value = value[:, :, None, None] if value.ndim == 2 else value
        elif parts[1] in ("conv_norm_out",):
            new = f"{parts[0]}.norm_out." + ".".join(parts[2:])
        new = new.replace("conv_shortcut", "nin_shortcut")
        out["first_stage_model." + new] = value
    return out


def write_single_file(unet, vae, text_encoder, path: str | Path) -> Path:
    """One .safetensors file with UNet, VAE and CLIP text encoder in the LDM layout."""
    from safetensors.torch import save_file

    state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block)
    state.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    # The original files name CLIP's weights text_model.*; transformers 5 drops that prefix in memory.
    state.update({"cond_stage_model.transformer." + ("" if k.startswith("text_model.") else "text_model.") + k: v
                  for k, v in text_encoder.state_dict().items()})
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return Path(path)
