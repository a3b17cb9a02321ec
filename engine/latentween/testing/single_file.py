"""Save diffusers SD components as one checkpoint in the original LDM key layout (A1111/ComfyUI files).

Only tests need this: it lets them exercise `StableDiffusionPipeline.from_single_file`, the loader
users' .safetensors files go through. The key layout is that of CompVis' latent-diffusion code,
which diffusers' single-file converter reads; the mapping here is the inverse, for any block counts.
`write_sdxl_single_file` writes the SDXL layout of Stability's generative-models code (sd_xl_base_1.0
.safetensors): the same UNet and VAE keys, CLIP-L under conditioner.embedders.0.transformer.* and the
second encoder in open_clip's layout under conditioner.embedders.1.model.*.
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
           "conv_in": "input_blocks.0.0", "conv_norm_out": "out.0", "conv_out": "out.2",
           # SDXL's pooled-text + size/crop conditioning ("text_time")
           "add_embedding.linear_1": "label_emb.0.0", "add_embedding.linear_2": "label_emb.0.2"}
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
    state.update({"cond_stage_model.transformer." + k: v for k, v in _clip_l(text_encoder).items()})
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return Path(path)


def _clip_l(text_encoder) -> dict:
    """CLIP text-encoder keys as the original files name them (text_model.*); transformers 5 drops
    that prefix in memory for CLIPTextModel."""
    return {("" if k.startswith("text_model.") else "text_model.") + k: v for k, v in text_encoder.state_dict().items()}


def open_clip_text_to_sgm(state: dict) -> dict:
    """A transformers CLIPTextModelWithProjection's keys -> open_clip's text-tower keys (the layout of
    SDXL's conditioner.embedders.1.model.*): q/k/v fused into in_proj, text_projection transposed."""
    import torch

    out, fused = {}, {}
    names = [("text_model.embeddings.token_embedding.weight", "token_embedding.weight"),
             ("text_model.embeddings.position_embedding.weight", "positional_embedding"),
             ("text_model.final_layer_norm.", "ln_final."), ("text_model.encoder.layers.", "transformer.resblocks."),
             ("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), (".mlp.fc1.", ".mlp.c_fc."),
             (".mlp.fc2.", ".mlp.c_proj."), (".self_attn.", ".attn.")]
    for key, value in state.items():
        key = key if key.startswith(("text_model.", "text_projection")) else "text_model." + key
        if key == "text_projection.weight":
            out["text_projection"] = value.T  # open_clip multiplies x @ text_projection
            continue
        head, _, leaf = key.rpartition(".")
        for new, old in names:
            key = key.replace(new, old)
        if head.endswith(("q_proj", "k_proj", "v_proj")):
            prefix = key.rpartition(".")[0].rpartition(".")[0]  # ...resblocks.N.attn
            fused.setdefault((prefix, leaf), {})[head[-6]] = value
            continue
        out[key] = value
    for (prefix, leaf), qkv in fused.items():
        out[f"{prefix}.in_proj_{leaf}"] = torch.cat([qkv["q"], qkv["k"], qkv["v"]])
    return out


def write_sdxl_single_file(unet, vae, text_encoder, text_encoder_2, path: str | Path) -> Path:
    """One .safetensors file with an SDXL pipeline's UNet, VAE and both text encoders in the layout of
    SDXL single files (A1111/ComfyUI)."""
    import torch
    from safetensors.torch import save_file

    state = unet_to_ldm(unet.state_dict(), unet.config.layers_per_block)
    state.update(vae_to_ldm(vae.state_dict(), len(vae.config.block_out_channels)))
    state.update({"conditioner.embedders.0.transformer." + k: v for k, v in _clip_l(text_encoder).items()})
    state.update({"conditioner.embedders.1.model." + k: v
                  for k, v in open_clip_text_to_sgm(text_encoder_2.state_dict()).items()})
    state["conditioner.embedders.1.model.logit_scale"] = torch.tensor(4.6052)  # ln(100), as open_clip stores it
    save_file({k: v.detach().contiguous() for k, v in state.items()}, str(path))
    return Path(path)
