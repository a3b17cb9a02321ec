"""The fast path: samplers as components, early candidate pruning, LoRA, presets and model
recommendations, and the UNet work the manifest records."""
import json

import numpy as np
import pytest
import torch

from latentween.cli import main
from latentween.pipeline import InterpolationPipeline, InterpolationRequest
from latentween.plan import ddim_index, make_plan
from latentween.schedulers import FLOW, SCHEDULERS, make_scheduler, start_at

FRACTIONS_5 = [i / 4 for i in range(5)]


def morph(tiny_model, files, out, *extra):
    args = ["morph", *map(str, files), "--out", str(out), "--model", str(tiny_model), "--seed", "5", "--quiet"]
    assert main(args + [str(e) for e in extra]) == 0
    return json.loads((out / "manifest.json").read_text())


def frame_bytes(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))}


@pytest.mark.parametrize("name", sorted(set(SCHEDULERS) - FLOW))  # flow-euler: test_flux.py
def test_every_scheduler_runs_end_to_end_with_exact_ends_and_seed_determinism(tiny_model, keyframe_files, tmp_path, name):
    a = morph(tiny_model, keyframe_files, tmp_path / "a", "--frames", 5, "--steps", 8, "--candidates", 1,
              "--scheduler", name)
    morph(tiny_model, keyframe_files, tmp_path / "b", "--frames", 5, "--steps", 8, "--candidates", 1, "--scheduler", name)
    assert a["sampler"]["class"] == SCHEDULERS[name][0]
    assert frame_bytes(tmp_path / "a") == frame_bytes(tmp_path / "b")
    assert (tmp_path / "a" / "frame_00000.png").read_bytes() != (tmp_path / "a" / "frame_00002.png").read_bytes()
    import cv2

    for index, source in ((0, keyframe_files[0]), (4, keyframe_files[1])):
        assert np.array_equal(cv2.imread(str(tmp_path / "a" / f"frame_{index:05d}.png")), cv2.imread(str(source)))


@pytest.mark.parametrize("name", sorted(set(SCHEDULERS) - FLOW))  # flow-euler: test_flux.py
def test_noise_is_added_at_the_timestep_denoising_starts_from(components, keyframe_arrays, name):
    """Identical keyframes: the slerp of the two noised parents is the noised parent, so the UNet's first
    input must be the keyframe latent noised by the scheduler itself at the very timestep it is given."""
    pipe = InterpolationPipeline.from_components(components, scheduler=name)
    seen = []
    handle = components.unet.register_forward_pre_hook(lambda m, args, kw: seen.append((args[0].clone(), args[1])),
                                                       with_kwargs=True)
    try:
        same = [keyframe_arrays[0], keyframe_arrays[0]]
        req = InterpolationRequest(fractions=[0, 0.5, 1], seed=2, steps=10, guidance=1.0)
        pipe(same, req)
    finally:
        handle.remove()
    from latentween.method import frame_generator, randn

    k = ddim_index(make_plan([0, 0.5, 1], 0.3, 0.55)[0][0].noise, 10)
    scheduler = make_scheduler(name, components.scheduler_config)
    begin = start_at(scheduler, 10, k)
    t = scheduler.timesteps[begin:begin + 1]
    z0 = pipe.encode_images(same)[:1]
    eps = randn(z0.shape[1:], frame_generator(2, 0.5, 0))[None]
    expected = scheduler.scale_model_input(scheduler.add_noise(z0, eps, t), t[0])
    first_input, first_t = seen[0]
    assert int(first_t) == int(t[0])
    torch.testing.assert_close(first_input, expected, rtol=1e-4, atol=1e-4)


def test_ddim_keeps_the_method_example_indices(components):
    scheduler = make_scheduler("ddim", components.scheduler_config)
    assert scheduler.config.clip_sample is False and scheduler.config.thresholding is False
    scheduler.set_timesteps(200)
    begins = [start_at(scheduler, 200, k) for k in (110, 93, 76, 60)]
    assert [int(scheduler.timesteps[b]) for b in begins] == [551, 466, 381, 301]


def test_latent_models_never_clip_whatever_their_config_says(components):
    config = {**components.scheduler_config, "clip_sample": True, "thresholding": True}
    scheduler = make_scheduler("ddim", config)
    assert scheduler.config.clip_sample is False and scheduler.config.thresholding is False


def test_auto_takes_the_sampler_a_distilled_model_names(components):
    assert type(make_scheduler("auto", {**components.scheduler_config, "_class_name": "LCMScheduler"})).__name__ == "LCMScheduler"
    assert type(make_scheduler("auto", {**components.scheduler_config, "_class_name": "PNDMScheduler"})).__name__ == \
        "DPMSolverMultistepScheduler"


# -- early candidate pruning -----------------------------------------------------------------------

def brightness_chooser(frame, images):
    """A deterministic automatic ranking: the brightest candidate wins."""
    scores = [float(im.mean()) for im in images]
    return int(np.argmax(scores)), scores


def test_pruning_finishes_only_the_kept_candidates_and_counts_their_work(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, scheduler="ddim", max_batch=16)
    req = InterpolationRequest(fractions=[0, 0.5, 1], seed=4, steps=20, candidates=lambda level: 4,
                               prune_at=0.5, keep=1, rank_early=True)
    [result] = pipe(keyframe_arrays, req, chooser=brightness_chooser)
    n = ddim_index(0.55, 20) + 1  # a one-level plan uses the max noise
    cut = round(0.5 * n)
    early = result.info["early_ranking"]
    assert early["after_steps"] == cut and len(early["scores"]) == 4
    assert early["kept"] == [int(np.argmax(early["scores"]))] == [result.info["chosen"]]
    assert result.info["unet"]["evaluations"] == 2 * (4 * cut + 1 * (n - cut))


def test_a_pruned_candidate_finishes_as_it_would_have_without_pruning(components, keyframe_arrays):
    # DDIM keeps no state between steps, so restarting the sampler at the cut changes nothing but the
    # batch shape (hence a tolerance, docs/determinism.md)
    full = InterpolationPipeline.from_components(components, scheduler="ddim", max_batch=16)
    req = dict(fractions=[0, 0.5, 1], seed=4, steps=20, candidates=lambda level: 4)
    everything = {}

    def keep_all(frame, images):
        everything.update(enumerate(images))
        return 0, [0.0] * len(images)

    full(keyframe_arrays, InterpolationRequest(**req), chooser=keep_all)
    [pruned] = full(keyframe_arrays, InterpolationRequest(**req, prune_at=0.5, rank_early=True), chooser=brightness_chooser)
    np.testing.assert_allclose(pruned.image, everything[pruned.info["chosen"]], atol=1e-3)


def test_a_person_choosing_is_never_pruned_for(components, keyframe_arrays):
    pipe = InterpolationPipeline.from_components(components, scheduler="ddim", max_batch=16)
    req = InterpolationRequest(fractions=[0, 0.5, 1], seed=4, steps=20, candidates=lambda level: 3,
                               prune_at=0.5, rank_early=False)
    [result] = pipe(keyframe_arrays, req, chooser=brightness_chooser)
    assert "early_ranking" not in result.info and len(result.info["scores"]) == 3


def test_the_preview_vae_decodes_the_early_previews(tiny_model, keyframe_files, tmp_path):
    manifest = morph(tiny_model, keyframe_files, tmp_path / "out", "--frames", 3, "--steps", 20, "--candidates", 3,
                     "--clip-model", tiny_model / "clip", "--preview-vae", tiny_model / "preview_vae", "--align", "none")
    frame = manifest["frames"][1]
    assert manifest["settings"]["preview_vae"] and len(frame["early_ranking"]["scores"]) == 3


# -- LoRA ------------------------------------------------------------------------------------------

def test_a_lora_changes_the_frames_is_recorded_and_is_taken_out_after_the_job(tiny_model, keyframe_files, tmp_path):
    common = ("--frames", 3, "--steps", 8, "--candidates", 1, "--align", "none")
    morph(tiny_model, keyframe_files, tmp_path / "before", *common)
    manifest = morph(tiny_model, keyframe_files, tmp_path / "lora", *common, "--lora", f"{tiny_model / 'lora'}:0.9")
    morph(tiny_model, keyframe_files, tmp_path / "after", *common)
    [lora] = manifest["loras"]
    assert lora["scale"] == 0.9 and len(lora["sha256"]) == 64
    assert frame_bytes(tmp_path / "lora") != frame_bytes(tmp_path / "before")
    assert frame_bytes(tmp_path / "after") == frame_bytes(tmp_path / "before")


def test_a_lora_at_scale_zero_changes_nothing(tiny_model, keyframe_files, tmp_path):
    common = ("--frames", 3, "--steps", 8, "--candidates", 1, "--align", "none")
    morph(tiny_model, keyframe_files, tmp_path / "plain", *common)
    morph(tiny_model, keyframe_files, tmp_path / "zero", *common, "--lora", f"{tiny_model / 'lora'}:0")
    assert frame_bytes(tmp_path / "zero") == frame_bytes(tmp_path / "plain")


def test_a_missing_lora_is_one_line(tiny_model, keyframe_files, tmp_path, capsys):
    code = main(["morph", *map(str, keyframe_files), "--out", str(tmp_path / "o"), "--model", str(tiny_model),
                 "--frames", "3", "--steps", "4", "--candidates", "1", "--lora", str(tmp_path / "nope"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "LoRA" in err[0]


# -- defaults, presets, recommendations, and what they cost -------------------------------------------

def test_default_settings_cost_at_most_a_tenth_of_the_papers_evaluations(tiny_model, keyframe_files, tmp_path):
    # defaults: 8..3 CLIP-ranked candidates (pruned early), guidance on, 17 frames; the paper: 865.6
    manifest = morph(tiny_model, keyframe_files, tmp_path / "out", "--frames", 17, "--clip-model", tiny_model / "clip",
                     "--align", "none")
    assert manifest["unet"]["evaluations_per_frame"] <= 86.5
    assert manifest["frames"][8]["candidates"] == 8 and "early_ranking" in manifest["frames"][8]


def test_the_draft_preset_costs_at_most_a_hundredth(tiny_model, keyframe_files, tmp_path):
    manifest = morph(tiny_model, keyframe_files, tmp_path / "out", "--frames", 17, "--preset", "draft", "--align", "none")
    assert manifest["settings"]["steps"] == 8 and manifest["settings"]["candidates"] == 1
    assert manifest["unet"]["evaluations_per_frame"] <= 8.7


def test_the_toy_model_runs_offline_on_its_own_recommendations(keyframe_files, tmp_path):
    manifest = morph("toy", keyframe_files, tmp_path / "out", "--frames", 17)
    assert manifest["recommended"] == {"guidance": 1.0, "candidates": 1}
    assert manifest["settings"]["guidance"] == 1.0 and manifest["settings"]["candidates"] == 1
    assert manifest["unet"]["evaluations_per_frame"] <= 86.5


def test_what_the_user_sets_wins_over_recommendations(keyframe_files, tmp_path):
    manifest = morph("toy", keyframe_files, tmp_path / "out", "--frames", 3, "--guidance", 2)
    assert manifest["settings"]["guidance"] == 2.0 and manifest["settings"]["candidates"] == 1


def test_consistency_samplers_default_to_no_guidance_unless_asked():
    from latentween.settings import MorphSettings

    assert MorphSettings(scheduler="lcm").with_defaults().guidance == 1.0
    assert MorphSettings(scheduler="lcm", guidance=3).with_defaults().guidance == 3.0
    assert MorphSettings().with_defaults({"scheduler": "tcd"}).guidance == 1.0
    assert MorphSettings(scheduler="ddim").with_defaults().guidance == 7.5


def test_eta_with_a_sampler_that_has_none_is_one_line(tiny_model, keyframe_files, tmp_path, capsys):
    code = main(["morph", *map(str, keyframe_files), "--out", str(tmp_path / "o"), "--model", str(tiny_model),
                 "--eta", "0.5", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--scheduler ddim or tcd" in err[0]
