"""Model families: the tiny SDXL checkpoint (folder and single file, real on-disk formats, tiny.py)
through the loaders users take, conditioned exactly as diffusers' StableDiffusionXLPipeline conditions
its UNet (both encoders, the pooled embedding, the size/crop time ids), and morphed end to end."""
import json

import numpy as np
import pytest
import torch

from family_support import daemon_manifest, morph, same_pixels
from latentween.errors import ModelError
from latentween.families import Prompt, family_of_index, family_of_keys
from latentween.models import ModelManager
from latentween.pipeline import InterpolationPipeline, InterpolationRequest
from latentween.settings import RuntimeSettings


@pytest.fixture(scope="module")
def sdxl(tiny_model):
    return tiny_model / "sdxl"


@pytest.fixture(scope="module")
def sdxl_components(sdxl):
    return ModelManager().get(str(sdxl))


@pytest.fixture(scope="module")
def diffusers_sdxl(sdxl):
    from diffusers import StableDiffusionXLPipeline

    return StableDiffusionXLPipeline.from_pretrained(str(sdxl), local_files_only=True)


def test_an_sdxl_folder_loads_as_the_sdxl_family_with_both_encoders(sdxl_components):
    assert sdxl_components.family == "sdxl"
    assert type(sdxl_components.text_encoder_2).__name__ == "CLIPTextModelWithProjection"
    assert sdxl_components.extras["force_zeros_for_empty_prompt"] is True


def test_prompts_are_encoded_as_diffusers_encodes_them_for_sdxl(sdxl_components, diffusers_sdxl):
    pipe = InterpolationPipeline.from_components(sdxl_components)
    cond, negative = pipe.encode_pair("a red disk", "")
    ref = diffusers_sdxl.encode_prompt("a red disk", device="cpu", do_classifier_free_guidance=True)
    embeds, negative_embeds, pooled, negative_pooled = ref
    torch.testing.assert_close(cond.hidden, embeds[0])
    torch.testing.assert_close(cond.pooled, pooled[0])
    # force_zeros_for_empty_prompt: an empty negative is zeros, in both parts
    assert not negative.hidden.any() and not negative.pooled.any()
    torch.testing.assert_close(negative.hidden, negative_embeds[0])
    torch.testing.assert_close(negative.pooled, negative_pooled[0])


def test_a_guided_sdxl_evaluation_takes_the_pooled_embedding_and_the_time_ids_of_the_image(
        sdxl_components, diffusers_sdxl):
    pipe = InterpolationPipeline.from_components(sdxl_components)
    cond, negative = pipe.encode_pair("a red disk", "blurry")
    z = torch.randn(2, 4, 8, 16, generator=torch.Generator().manual_seed(0))  # 64 x 128 px: height != width
    t = torch.tensor(500)
    request = InterpolationRequest(fractions=[0, 1], seed=0, guidance=3.0)
    ours = pipe.denoiser(request)(z, t, cond.repeat(2), negative.repeat(2))
    # diffusers' own conditioning of the same rows, written out: [uncond; cond], time ids (H, W, 0, 0, H, W)
    time_ids = diffusers_sdxl._get_add_time_ids((64, 128), (0, 0), (64, 128), dtype=torch.float32,
                                                text_encoder_projection_dim=32)
    assert time_ids.tolist() == [[64.0, 128.0, 0.0, 0.0, 64.0, 128.0]]
    with torch.no_grad():
        out = sdxl_components.unet(
            torch.cat([z, z]), t, encoder_hidden_states=torch.stack([negative.hidden] * 2 + [cond.hidden] * 2),
            added_cond_kwargs={"text_embeds": torch.stack([negative.pooled] * 2 + [cond.pooled] * 2),
                               "time_ids": time_ids.repeat(4, 1)}).sample
    reference = out[:2] + 3.0 * (out[2:] - out[:2])
    torch.testing.assert_close(ours, reference)
    # and both parts matter: without the pooled embedding, or with the other size, the output moves
    for changed in ({"text_embeds": torch.zeros(4, 32), "time_ids": time_ids.repeat(4, 1)},
                    {"text_embeds": torch.stack([negative.pooled] * 2 + [cond.pooled] * 2),
                     "time_ids": time_ids[:, [1, 0, 2, 3, 5, 4]].repeat(4, 1)}):
        with torch.no_grad():
            other = sdxl_components.unet(torch.cat([z, z]), t, added_cond_kwargs=changed,
                                         encoder_hidden_states=torch.stack([negative.hidden] * 2 + [cond.hidden] * 2)).sample
        assert not torch.allclose(other[:2] + 3.0 * (other[2:] - other[:2]), ours, atol=1e-4)


def test_an_sdxl_single_file_loads_the_folders_weights_and_makes_its_frames(sdxl, sdxl_components, keyframe_arrays):
    single = ModelManager(RuntimeSettings(checkpoint_config=str(sdxl))).get(str(sdxl / "single_file.safetensors"))
    assert single.family == "sdxl" and single.source.kind == "single-file"
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = getattr(single, name).state_dict(), getattr(sdxl_components, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    request = InterpolationRequest(fractions=[0, 0.5, 1], seed=1, steps=6)
    a = InterpolationPipeline.from_components(single)(keyframe_arrays, request)
    b = InterpolationPipeline.from_components(sdxl_components)(keyframe_arrays, request)
    assert np.abs(a[0].image - b[0].image).max() < 1e-4


def test_an_sdxl_morph_has_exact_ends_a_seeded_middle_alignment_and_ranking(sdxl, tiny_model, keyframe_files,
                                                                             tmp_path):
    ranked = ["--candidates", "2", "--clip-model", tiny_model / "clip", "--seed", "3"]
    assert morph(sdxl, keyframe_files, tmp_path / "a", *ranked) == 0
    assert morph(sdxl, keyframe_files, tmp_path / "b", *ranked) == 0
    frames = [[(tmp_path / run / f"frame_{i:05d}.png").read_bytes() for i in range(5)] for run in "ab"]
    assert frames[0] == frames[1]
    assert frames[0][0] == keyframe_files[0].read_bytes() or same_pixels(tmp_path / "a" / "frame_00000.png",
                                                                          keyframe_files[0])
    assert same_pixels(tmp_path / "a" / "frame_00004.png", keyframe_files[1])
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["model"]["family"] == "sdxl"
    assert manifest["conditioning"]["alignment"]["used"] and manifest["conditioning"]["ranking"]["clip_model"]
    generated = [f for f in manifest["frames"] if f.get("source") == "generated"]
    assert len(generated) == 3 and all(len(f["early_ranking"]["scores"]) == 2 for f in generated)
    assert morph(sdxl, keyframe_files, tmp_path / "c", "--candidates", "2", "--clip-model", tiny_model / "clip",
                 "--seed", "4") == 0
    assert (tmp_path / "c" / "frame_00002.png").read_bytes() != frames[0][2]


def test_an_sdxl_morph_inverts_both_encoders_prompts_and_follows_a_pose_through_an_sdxl_controlnet(
        sdxl, keyframe_files, tmp_path, monkeypatch):
    from test_conditioning import write_pose

    monkeypatch.setenv("LATENTWEEN_CACHE_DIR", str(tmp_path / "cache"))
    a = write_pose(tmp_path / "a.json", [(10, 10), (10, 30), (20, 30)])
    b = write_pose(tmp_path / "b.json", [(50, 10), (50, 30), (40, 30)])
    common = ["--candidates", "1", "--seed", "2", "--invert-steps", "2", "--prompt", "a disk"]
    assert morph(sdxl, keyframe_files, tmp_path / "posed", *common, "--pose", f"{a},{b}",
                 "--controlnet", sdxl / "controlnet") == 0
    assert morph(sdxl, keyframe_files, tmp_path / "plain", *common) == 0
    report = json.loads((tmp_path / "posed" / "manifest.json").read_text())["conditioning"]
    assert report["pose"]["used"] and report["pose"]["controlnet"] == str(sdxl / "controlnet")
    assert report["inversion"]["steps"] == 2 and not report["inversion"]["cached"]
    from safetensors.torch import load_file

    [entry] = (tmp_path / "cache" / "inversion").glob("*.safetensors")
    tensors = load_file(str(entry))
    assert tensors["first"].shape[-1] == 96 and tensors["first_pooled"].shape == (32,)  # 32 + 64 wide; pooled
    assert (tmp_path / "posed" / "frame_00002.png").read_bytes() != (tmp_path / "plain" / "frame_00002.png").read_bytes()


@pytest.mark.parametrize("index, words", [
    ({"_class_name": "StableDiffusion3Pipeline", "transformer": [], "text_encoder": []}, "Stable Diffusion 3"),
    ({"_class_name": "StableDiffusionXLImg2ImgPipeline", "unet": [], "text_encoder_2": []}, "refiner"),
    ({"_class_name": "SomethingElsePipeline", "transformer": []}, "not a family latentween runs"),
])
def test_a_family_latentween_does_not_run_is_refused_naming_the_ones_it_does(index, words):
    with pytest.raises(ModelError, match=words) as info:
        family_of_index(index, "some/model")
    assert "SDXL" in str(info.value) and "\n" not in str(info.value)


def test_single_files_are_told_apart_by_their_original_key_prefixes():
    assert family_of_keys(["model.diffusion_model.input_blocks.0.0.weight", "cond_stage_model.x"], "a") == "sd"
    assert family_of_keys(["conditioner.embedders.0.transformer.x", "conditioner.embedders.1.model.y"], "b") == "sdxl"
    with pytest.raises(ModelError, match="Flux"):
        family_of_keys(["double_blocks.0.img_attn.qkv.weight"], "c")
    with pytest.raises(ModelError, match="refiner"):
        family_of_keys(["conditioner.embedders.0.model.y"], "d")


def test_prompt_rows_stack_slice_and_cat_every_part():
    a = Prompt(torch.zeros(3, 4), torch.zeros(2))
    rows = Prompt.cat([a.repeat(2), Prompt.stack([a])])
    assert rows.hidden.shape == (3, 3, 4) and rows.pooled.shape == (3, 2)
    assert rows[torch.tensor([0, 2])].pooled.shape == (2, 2)


def test_a_daemon_serving_an_sdxl_model_runs_its_jobs_unchanged(sdxl, keyframe_files, tmp_path):
    manifest = daemon_manifest(sdxl, keyframe_files, tmp_path / "state")
    assert manifest["model"]["family"] == "sdxl" and manifest["frames"][1]["source"] == "generated"


def test_a_lora_on_an_sdxl_model_changes_its_frames_and_is_recorded(sdxl, sdxl_components, keyframe_files, tmp_path):
    from latentween.testing.tiny import write_lora

    lora = write_lora(tmp_path / "lora", sdxl_components.unet)
    common = ["--candidates", "1", "--seed", "6", "--frames", "3"]
    assert morph(sdxl, keyframe_files, tmp_path / "plain", *common) == 0
    assert morph(sdxl, keyframe_files, tmp_path / "lora-run", *common, "--lora", f"{lora}:0.8") == 0
    middle = [(tmp_path / run / "frame_00001.png").read_bytes() for run in ("plain", "lora-run")]
    assert middle[0] != middle[1]
    [applied] = json.loads((tmp_path / "lora-run" / "manifest.json").read_text())["loras"]
    assert applied["scale"] == 0.8 and len(applied["sha256"]) == 64
