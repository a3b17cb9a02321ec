"""The flow-matching family: the tiny Flux.1-dev-layout checkpoint (testing/tiny_flux.py, real on-disk
format) loaded through `--model DIR`, conditioned and called exactly as diffusers' FluxPipeline calls
its transformer, noised with the flow formula, and morphed end to end (CLI and daemon)."""
import json

import numpy as np
import pytest
import torch

from family_support import daemon_manifest, morph, same_pixels
from latentween.method import slerp
from latentween.models import ModelManager
from latentween.pipeline import InterpolationPipeline, InterpolationRequest
from latentween.plan import PlannedFrame, PlannedRow


@pytest.fixture(scope="module")
def flux(tiny_model):
    return tiny_model / "flux"


@pytest.fixture(scope="module")
def flux_components(flux):
    return ModelManager().get(str(flux))


@pytest.fixture(scope="module")
def diffusers_flux(flux):
    from diffusers import FluxPipeline

    return FluxPipeline.from_pretrained(str(flux), local_files_only=True)


def test_a_flux_folder_loads_as_the_flux_family_with_clip_and_t5(flux_components):
    assert flux_components.family == "flux"
    assert type(flux_components.unet.transformer).__name__ == "FluxTransformer2DModel"
    assert type(flux_components.text_encoder_2).__name__ == "T5EncoderModel"
    assert flux_components.scheduler_config["_class_name"] == "FlowMatchEulerDiscreteScheduler"


def test_prompts_are_encoded_as_diffusers_encodes_them_for_flux(flux_components, diffusers_flux):
    pipe = InterpolationPipeline.from_components(flux_components)
    cond = pipe.encode_text(["a red disk"])[0]
    embeds, pooled, _ = diffusers_flux.encode_prompt("a red disk", prompt_2=None, device="cpu", max_sequence_length=16)
    torch.testing.assert_close(cond.hidden, embeds[0])  # T5 sequence
    torch.testing.assert_close(cond.pooled, pooled[0])  # CLIP pooled


def test_the_transformer_is_called_as_fluxpipeline_calls_it_with_the_guidance_embedding(flux_components,
                                                                                        diffusers_flux):
    from diffusers.pipelines.flux.pipeline_flux import FluxPipeline

    pipe = InterpolationPipeline.from_components(flux_components)
    cond, negative = pipe.encode_pair("a red disk", "")
    z = torch.randn(2, 16, 8, 12, generator=torch.Generator().manual_seed(0))  # height != width
    t = torch.tensor(700.0)
    ours = pipe.denoiser(InterpolationRequest(fractions=[0, 1], seed=0, guidance=3.5))(
        z, t, cond.repeat(2), negative.repeat(2))
    # FluxPipeline's own packing, ids, timestep / 1000 and guidance, written out
    with torch.no_grad():
        out = diffusers_flux.transformer(
            hidden_states=FluxPipeline._pack_latents(z, 2, 16, 8, 12), timestep=t.expand(2) / 1000,
            guidance=torch.full([2], 3.5), pooled_projections=torch.stack([cond.pooled] * 2),
            encoder_hidden_states=torch.stack([cond.hidden] * 2), txt_ids=torch.zeros(16, 3),
            img_ids=FluxPipeline._prepare_latent_image_ids(2, 4, 6, "cpu", torch.float32), return_dict=False)[0]
    reference = FluxPipeline._unpack_latents(out, 64, 96, 8)
    torch.testing.assert_close(ours, reference)
    # one pass per row: no unconditional half without true CFG, whatever --guidance says
    assert pipe.counter.rows == 2
    other = pipe.denoiser(InterpolationRequest(fractions=[0, 1], seed=0, guidance=7.0))(
        z, t, cond.repeat(2), negative.repeat(2))
    assert not torch.allclose(other, ours, atol=1e-4)  # the guidance embedding is really used


def test_true_cfg_runs_the_negative_prompt_as_classifier_free_guidance(flux_components):
    pipe = InterpolationPipeline.from_components(flux_components)
    cond, negative = pipe.encode_pair("a red disk", "blurry")
    z = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor(500.0)
    single = lambda prompt: pipe.denoiser(InterpolationRequest(fractions=[0, 1], seed=0))(z, t, prompt, prompt)  # noqa: E731
    guided = pipe.denoiser(InterpolationRequest(fractions=[0, 1], seed=0, true_cfg=4.0))(z, t, cond.repeat(1),
                                                                                        negative.repeat(1))
    c, u = single(cond.repeat(1)), single(negative.repeat(1))
    torch.testing.assert_close(guided, u + 4.0 * (c - u))


def test_the_flow_family_noises_each_level_as_one_minus_sigma_x0_plus_sigma_eps(flux_components, keyframe_arrays):
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift, retrieve_timesteps

    pipe = InterpolationPipeline.from_components(flux_components)
    request = InterpolationRequest(fractions=[0, 0.5, 1], seed=4, steps=20)
    pipe._start(keyframe_arrays, request, {})
    # the sampler's schedule is FluxPipeline's for this image size (shift mu from 4x4 tokens)
    reference = type(pipe.scheduler).from_config(pipe.scheduler.config)
    retrieve_timesteps(reference, 20, "cpu", sigmas=np.linspace(1.0, 1 / 20, 20), mu=calculate_shift(16))
    torch.testing.assert_close(pipe.scheduler.sigmas, reference.sigmas)
    begin, a, s = pipe.noise_level(8, 20)
    sigma = float(pipe.scheduler.sigmas[begin])
    assert s == pytest.approx(sigma, abs=1e-7) and a == pytest.approx(1 - sigma, abs=1e-7)
    assert a**2 + s**2 < 0.95  # the DDPM formula keeps a^2 + s^2 = 1
    latents = {0: pipe.encode_images(keyframe_arrays[:1])[0], 2: pipe.encode_images(keyframe_arrays[1:])[0]}
    row = PlannedRow(PlannedFrame(index=1, left=0, right=2, level=1, local_fraction=0.5, parent_distance=1.0, noise=0.45), 0, 8)
    z_t = pipe.prepare_latents([row], latents, {}, [0, 0.5, 1], request, (a, s))
    from latentween.method import frame_generator, randn

    eps = randn(latents[0].shape, frame_generator(4, 0.5, 0))
    expected = slerp((1 - sigma) * latents[0][None] + sigma * eps[None],
                     (1 - sigma) * latents[2][None] + sigma * eps[None], 0.5)
    torch.testing.assert_close(z_t, expected, rtol=1e-5, atol=1e-5)


def test_a_flux_morph_has_exact_ends_a_seeded_middle_alignment_and_ranking(flux, tiny_model, keyframe_files,
                                                                           tmp_path):
    ranked = ["--candidates", "2", "--clip-model", tiny_model / "clip", "--seed", "3"]
    assert morph(flux, keyframe_files, tmp_path / "a", *ranked) == 0
    assert morph(flux, keyframe_files, tmp_path / "b", *ranked) == 0
    frames = [[(tmp_path / run / f"frame_{i:05d}.png").read_bytes() for i in range(5)] for run in "ab"]
    assert frames[0] == frames[1]
    for index, keyframe in ((0, keyframe_files[0]), (4, keyframe_files[1])):
        assert same_pixels(tmp_path / "a" / f"frame_{index:05d}.png", keyframe)
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["model"]["family"] == "flux"
    assert manifest["sampler"]["class"] == "FlowMatchEulerDiscreteScheduler"
    assert manifest["settings"]["guidance"] == 3.5 and manifest["recommended"] == {"guidance": 3.5}
    assert manifest["conditioning"]["alignment"]["used"]
    assert manifest["conditioning"]["alignment"]["source"] == "features"
    generated = [f for f in manifest["frames"] if f.get("source") == "generated"]
    assert len(generated) == 3 and all(len(f["early_ranking"]["scores"]) == 2 for f in generated)
    assert morph(flux, keyframe_files, tmp_path / "c", *ranked[:-1], "4") == 0
    assert (tmp_path / "c" / "frame_00002.png").read_bytes() != frames[0][2]


def test_a_flux_morph_inverts_the_t5_and_clip_embeddings(flux, keyframe_files, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    monkeypatch.setenv("LATENTWEEN_CACHE_DIR", str(tmp_path / "cache"))
    assert morph(flux, keyframe_files, tmp_path / "out", "--candidates", "1", "--seed", "2", "--invert-steps", "2",
                 "--prompt", "a disk") == 0
    report = json.loads((tmp_path / "out" / "manifest.json").read_text())["conditioning"]
    assert report["inversion"]["steps"] == 2 and np.isfinite(report["inversion"]["loss_after"])
    [entry] = (tmp_path / "cache" / "inversion").glob("*.safetensors")
    tensors = load_file(str(entry))
    assert tensors["first"].shape == (16, 32) and tensors["first_pooled"].shape == (32,)


def test_a_flux_morph_follows_a_pose_through_a_union_flux_controlnet(flux, tiny_model, keyframe_files, tmp_path):
    from test_conditioning import write_pose

    a = write_pose(tmp_path / "a.json", [(10, 10), (10, 30), (20, 30)])
    b = write_pose(tmp_path / "b.json", [(50, 10), (50, 30), (40, 30)])
    common = ["--candidates", "1", "--seed", "2"]
    assert morph(flux, keyframe_files, tmp_path / "posed", *common, "--pose", f"{a},{b}",
                 "--controlnet", flux / "controlnet") == 0
    assert morph(flux, keyframe_files, tmp_path / "plain", *common) == 0
    report = json.loads((tmp_path / "posed" / "manifest.json").read_text())["conditioning"]
    assert report["pose"]["used"] and report["pose"]["controlnet"] == str(flux / "controlnet")
    assert (tmp_path / "posed" / "frame_00002.png").read_bytes() != (tmp_path / "plain" / "frame_00002.png").read_bytes()


def test_the_flux_controlnet_sees_the_vae_encoded_pose_and_the_openpose_mode(flux_components, flux):
    from diffusers.pipelines.flux.pipeline_flux import FluxPipeline

    from latentween.flux import OPENPOSE_MODE

    manager = ModelManager()
    pipe = InterpolationPipeline.from_components(flux_components)
    packed = pipe.family.fit_controlnet(manager.controlnet(str(flux / "controlnet")), flux_components)
    cond = pipe.encode_text(["a disk"])
    z = torch.randn(1, 16, 8, 8, generator=torch.Generator().manual_seed(3))
    pose = torch.zeros(1, 3, 64, 64)
    pose[:, :, 20:44, 30:34] = 1.0
    kwargs = dict(encoder_hidden_states=cond.hidden, pooled_projections=cond.pooled, guidance=torch.tensor([3.5]))
    with torch.no_grad():
        ours = packed(z, torch.tensor(600.0), pose, 1.0, **kwargs)
        vae = flux_components.vae
        control = (vae.encode(pose * 2 - 1).latent_dist.mean - vae.config.shift_factor) * vae.config.scaling_factor
        reference = packed.controlnet(
            hidden_states=FluxPipeline._pack_latents(z, 1, 16, 8, 8), timestep=torch.tensor([0.6]),
            controlnet_cond=FluxPipeline._pack_latents(control, 1, 16, 8, 8),
            controlnet_mode=torch.tensor([[OPENPOSE_MODE]]), conditioning_scale=1.0, guidance=torch.tensor([3.5]),
            encoder_hidden_states=cond.hidden, pooled_projections=cond.pooled, txt_ids=torch.zeros(16, 3),
            img_ids=FluxPipeline._prepare_latent_image_ids(1, 4, 4, "cpu", torch.float32), return_dict=False)
    for mine, theirs in zip(ours[0] + ours[1], reference[0] + reference[1]):
        torch.testing.assert_close(mine, theirs)
    assert OPENPOSE_MODE == 4  # the union ControlNets' pose mode (InstantX, Shakker-Labs model cards)


def test_an_sd_controlnet_is_refused_for_flux_in_one_line(flux, tiny_model, keyframe_files, tmp_path, capsys):
    from test_conditioning import write_pose

    a = write_pose(tmp_path / "a.json", [(10, 10), (10, 30), (20, 30)])
    b = write_pose(tmp_path / "b.json", [(50, 10), (50, 30), (40, 30)])
    assert morph(flux, keyframe_files, tmp_path / "out", "--candidates", "1", "--pose", f"{a},{b}",
                 "--controlnet", tiny_model / "controlnet") != 0
    err = capsys.readouterr().err.strip()
    assert "belongs to another base model" in err and len(err.splitlines()) == 1


def test_an_sd_sampler_is_refused_for_flux_in_one_line(flux, keyframe_files, tmp_path, capsys):
    assert morph(flux, keyframe_files, tmp_path / "out", "--candidates", "1", "--scheduler", "ddim") != 0
    err = capsys.readouterr().err.strip()
    assert "does not fit a flow-matching model" in err and len(err.splitlines()) == 1


def test_flow_only_settings_are_refused_for_a_noise_prediction_model(tiny_model, keyframe_files, tmp_path, capsys):
    assert morph(tiny_model, keyframe_files, tmp_path / "a", "--candidates", "1", "--true-cfg", "2") != 0
    assert "--true-cfg is for flow models" in capsys.readouterr().err
    assert morph(tiny_model, keyframe_files, tmp_path / "b", "--candidates", "1", "--scheduler", "flow-euler") != 0
    assert "does not fit a noise-prediction model" in capsys.readouterr().err


def test_a_flux_without_guidance_embedding_gets_none_and_schnells_step_count(tmp_path):
    from latentween.families import recommended_settings
    from latentween.testing.tiny_flux import write_tiny_flux

    folder = write_tiny_flux(tmp_path / "schnell", guidance_embeds=False)
    assert recommended_settings(folder) == {"steps": 4}
    components = ModelManager().get(str(folder))
    scale, condition = InterpolationPipeline.from_components(components).family.guidance(3.5, 1.0)
    assert scale == 1.0 and "guidance" not in condition(_prompt(), torch.zeros(1, 16, 8, 8))


def test_packing_round_trips_and_matches_diffusers(flux_components):
    from diffusers.pipelines.flux.pipeline_flux import FluxPipeline

    from latentween.flux import pack, unpack

    z = torch.randn(3, 16, 6, 10, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(pack(z), FluxPipeline._pack_latents(z, 3, 16, 6, 10), rtol=0, atol=0)
    torch.testing.assert_close(unpack(pack(z), 6, 10), z, rtol=0, atol=0)


def test_a_daemon_serving_a_flux_model_runs_its_jobs_unchanged(flux, keyframe_files, tmp_path):
    manifest = daemon_manifest(flux, keyframe_files, tmp_path / "state")
    assert manifest["model"]["family"] == "flux" and manifest["frames"][1]["source"] == "generated"


def _prompt():
    from latentween.families import Prompt

    return Prompt(torch.zeros(1, 16, 32), torch.zeros(1, 32))
