"""Textual inversion, the pose ControlNet and CLIP ranking on the tiny models (METHOD.md 3-5)."""
import json

import numpy as np
import pytest
import torch

from latentween.cli import main
from latentween.inversion import EmbeddingCache, augmented_views, invert_prompts
from latentween.pipeline import InterpolationPipeline, InterpolationRequest

FRACTIONS = [0, 0.25, 0.5, 0.75, 1]


def morph(tiny_model, keyframes, out, *extra):
    return main(["morph", *map(str, keyframes), "--out", str(out), "--model", str(tiny_model), "--steps", "6",
                 "--seed", "2", "--quiet", *map(str, extra)])


def manifest(out):
    return json.loads((out / "manifest.json").read_text())


# -- textual inversion ----------------------------------------------------------------------------

def test_inversion_lowers_the_loss_on_a_fixed_set_of_draws(pipe, keyframe_arrays):
    cond, negative = pipe.encode_pair("a red disk", "")
    views = [pipe.encode_images(augmented_views(im, 4, seed=i)) for i, im in enumerate(keyframe_arrays)]
    result = invert_prompts(pipe.unet, pipe.scheduler, views, cond, negative, steps=30, guidance=7.5, lr=1e-2,
                            condition=pipe.family.unet_kwargs)
    assert result.loss_after < result.loss_before - 1e-3
    assert not torch.equal(result.first.hidden, result.second.hidden), "each keyframe gets its own embedding"


def test_augmented_views_start_with_the_image_and_are_seeded(keyframe_arrays):
    a = augmented_views(keyframe_arrays[0], 3, seed=1)
    b = augmented_views(keyframe_arrays[0], 3, seed=1)
    assert np.array_equal(a[0], keyframe_arrays[0])
    assert all(np.array_equal(x, y) for x, y in zip(a, b)) and not np.array_equal(a[1], a[0])


def test_inverted_embeddings_are_cached_and_reused_by_a_reroll(tiny_model, keyframe_files, tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTWEEN_CACHE_DIR", str(tmp_path / "cache"))
    args = ("--frames", 3, "--candidates", 1, "--invert-steps", 3, "--prompt", "a disk")
    morph(tiny_model, keyframe_files, tmp_path / "first", *args)
    morph(tiny_model, keyframe_files, tmp_path / "reroll", *args, "--seed", 9)
    first = manifest(tmp_path / "first")["conditioning"]["inversion"]
    again = manifest(tmp_path / "reroll")["conditioning"]["inversion"]
    assert first["cached"] is False and again["cached"] is True and again["cache_key"] == first["cache_key"]


def test_a_changed_image_or_prompt_misses_the_cache(keyframe_arrays):
    key = EmbeddingCache.key("m", keyframe_arrays, "a disk", "", 10, 7.5)
    changed = [keyframe_arrays[0].copy(), keyframe_arrays[1]]
    changed[0][0, 0, 0] += 0.01
    assert EmbeddingCache.key("m", changed, "a disk", "", 10, 7.5) != key
    assert EmbeddingCache.key("m", keyframe_arrays, "a square", "", 10, 7.5) != key
    assert EmbeddingCache.key("m", keyframe_arrays, "a disk", "", 10, 7.5) == key


def test_frames_get_the_slerp_of_the_keyframes_embeddings(pipe):
    from latentween.method import slerp
    from latentween.plan import PlannedRow
    from latentween.plan import make_plan

    from latentween.families import Prompt

    # every part of a prompt: the context and (SDXL) the pooled embedding
    a, b, neg = (Prompt(torch.randn(16, 32), torch.randn(8)) for _ in range(3))
    frame = make_plan(FRACTIONS, 0.3, 0.55)[1][0]  # fraction 0.25
    cond = pipe.frame_conditioning([PlannedRow(frame, 0, 3)], FRACTIONS, (a, b, neg), InterpolationRequest(FRACTIONS, 0))
    torch.testing.assert_close(cond["cond"].hidden[0], slerp(a.hidden[None], b.hidden[None], 0.25)[0])
    torch.testing.assert_close(cond["cond"].pooled[0], slerp(a.pooled[None], b.pooled[None], 0.25)[0])
    torch.testing.assert_close(cond["uncond"].hidden[0], neg.hidden)
    torch.testing.assert_close(cond["uncond"].pooled[0], neg.pooled)


# -- pose and ControlNet ---------------------------------------------------------------------------

def write_pose(path, points, size=64):
    flat = [v for p in points for v in ((p[0], p[1], 1.0) if p else (0.0, 0.0, 0.0))]
    people = [{"pose_keypoints_2d": flat + [0.0] * 3 * (18 - len(points))}]
    path.write_text(json.dumps({"people": people, "canvas_width": size, "canvas_height": size}))
    return path


def test_the_controlnet_changes_the_frames_and_scale_0_does_not(manager, tiny_model, components, keyframe_arrays):
    controlnet = manager.controlnet(str(tiny_model / "controlnet"))
    skeleton = np.zeros((64, 64, 3), np.float32)
    skeleton[20:44, 30:34] = 1.0
    req = dict(fractions=FRACTIONS, seed=4, steps=8)
    plain = InterpolationPipeline.from_components(components)(keyframe_arrays, InterpolationRequest(**req))
    posed = InterpolationPipeline.from_components(components, controlnet=controlnet)(
        keyframe_arrays, InterpolationRequest(**req, control=lambda f: (skeleton, 1.5)))
    off = InterpolationPipeline.from_components(components, controlnet=controlnet)(
        keyframe_arrays, InterpolationRequest(**req, control=lambda f: (skeleton, 0.0)))
    assert (posed[1].latent - plain[1].latent).abs().max() > 1e-3
    torch.testing.assert_close(off[1].latent, plain[1].latent)


def test_pose_files_are_written_beside_the_frames_and_interpolated(tiny_model, keyframe_files, tmp_path):
    a = write_pose(tmp_path / "a.json", [(10, 10), (10, 30), (20, 30)])
    b = write_pose(tmp_path / "b.json", [(50, 10), (50, 30), None])  # third keypoint missing in b
    out = tmp_path / "out"
    assert morph(tiny_model, keyframe_files, out, "--frames", 5, "--candidates", 1, "--pose", f"{a},{b}",
                 "--controlnet", tiny_model / "controlnet") == 0
    assert sorted(p.name for p in out.glob("pose_*.png")) == [f"pose_{i:05d}.png" for i in range(5)]
    mid = json.loads((out / "pose_00002.json").read_text())["people"][0]["pose_keypoints_2d"]
    assert mid[0:2] == [30, 10] and mid[3:5] == [30, 30] and mid[6:9] == [0, 0, 0]
    report = manifest(out)["conditioning"]["pose"]
    assert report["used"] is True and report["people"] == [1, 1]


def test_the_pose_detector_loads_and_no_person_means_a_warning_and_no_pose(tiny_model, keyframe_files, tmp_path, capsys):
    out = tmp_path / "out"
    assert morph(tiny_model, keyframe_files, out, "--frames", 3, "--candidates", 1, "--pose", "auto",
                 "--pose-model", tiny_model / "openpose", "--controlnet", tiny_model / "controlnet") == 0
    report = manifest(out)["conditioning"]["pose"]
    assert report["used"] is False and "no person" in report["warning"]
    assert capsys.readouterr().err.count("warning: no person") == 1
    assert not list(out.glob("pose_*"))


# -- CLIP ranking -----------------------------------------------------------------------------------

def test_the_best_scoring_candidate_is_kept_and_all_scores_are_recorded(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    assert morph(tiny_model, keyframe_files, out, "--frames", 3, "--candidates", 4, "--clip-model", tiny_model / "clip",
                 "--prune-at", 0) == 0
    frame = manifest(out)["frames"][1]
    assert len(frame["scores"]) == 4 and frame["chosen"] == int(np.argmax(frame["scores"]))


def test_ranking_keeps_the_argmax_candidate_image(manager, tiny_model, pipe, keyframe_arrays):
    from latentween.ranking import clip_chooser

    ranker = manager.clip(str(tiny_model / "clip"))
    seen = {}

    def spy(frame, images):
        index, scores = clip_chooser(ranker, "a disk", "noise")(frame, images)
        seen[frame.index] = (images[index], scores)
        return index, scores

    results = pipe(keyframe_arrays, InterpolationRequest(FRACTIONS, 1, steps=6, candidates=lambda level: 3), chooser=spy)
    for r in results:
        image, scores = seen[r.index]
        assert np.array_equal(r.image, image) and r.info["chosen"] == int(np.argmax(scores))


def test_a_fixed_seed_gives_the_same_choice(tiny_model, keyframe_files, tmp_path):
    runs = []
    for name in ("one", "two"):
        morph(tiny_model, keyframe_files, tmp_path / name, "--frames", 3, "--candidates", 3, "--clip-model", tiny_model / "clip")
        runs.append([(f.get("chosen"), f.get("scores")) for f in manifest(tmp_path / name)["frames"]])
    assert runs[0] == runs[1]


def test_clip_images_are_normalised_the_way_the_model_expects(manager, tiny_model):
    ranker = manager.clip(str(tiny_model / "clip"))
    norm = [t for t in ranker.preprocess.transforms if type(t).__name__ == "Normalize"][0]
    assert list(norm.mean) == pytest.approx([0.48145466, 0.4578275, 0.40821073])


def test_manual_choice_in_the_cli_is_refused_with_the_way_out(tiny_model, keyframe_files, tmp_path, capsys):
    assert morph(tiny_model, keyframe_files, tmp_path / "o", "--candidates", 3, "--choose", "manual") == 2
    assert "latentween submit" in capsys.readouterr().err


def test_missing_clip_weights_offline_name_the_flags_to_use(tiny_model, keyframe_files, tmp_path, capsys):
    assert morph(tiny_model, keyframe_files, tmp_path / "o", "--frames", 3) == 2
    err = capsys.readouterr().err
    assert "--clip-model" in err and "--candidates 1" in err
