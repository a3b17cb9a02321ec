"""`latentween eval --world shapes`: failure kinds of shapes-world frames, and the evaluation end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest

from latentween.toyworld import shapes, shapes_failures, shapes_scorer
from latentween.toyworld.shapes import Scene, Shape
from latentween.toyworld.world import BACKGROUND, to_uint8

PAIRS = shapes.make_pairs(12, seed=5)


def with_objects(scene: Scene, **changes) -> Scene:
    return Scene(tuple(Shape(**{**o.__dict__, **changes}) for o in scene.objects))


@pytest.mark.parametrize("k", range(4))
def test_a_rendered_midpoint_has_no_failure(k):
    a, b = PAIRS[k]
    assert shapes_failures.classify(shapes.render(shapes.lerp_scene(a, b, 0.5)), 0.5, a, b) is None


@pytest.mark.parametrize("k", range(4))
def test_a_50_50_blend_of_the_keyframes_is_a_blend(k):
    a, b = PAIRS[k]
    assert shapes_failures.classify(shapes.blend(a, b), 0.5, a, b) == "blend"


@pytest.mark.parametrize("k", range(4))
def test_a_keyframe_at_the_middle_fraction_is_a_copy_of_a_parent(k):
    a, b = PAIRS[k]
    assert shapes_failures.classify(shapes.render(b), 0.5, a, b) == "copy of a parent"


def test_a_keyframe_at_a_fraction_near_it_is_not_a_failure():
    a, b = PAIRS[0]
    assert shapes_failures.classify(shapes.render(a), 0.05, a, b) is None


def test_a_valid_scene_at_the_wrong_fraction_is_off_path():
    a, b = PAIRS[1]
    assert shapes_failures.classify(shapes.render(shapes.lerp_scene(a, b, 0.8)), 0.5, a, b) == "off-path"


def test_a_scene_missing_an_object_is_a_wrong_count():
    a, b = next((a, b) for a, b in PAIRS if len(a.objects) == 2)
    mid = shapes.lerp_scene(a, b, 0.5)
    assert shapes_failures.classify(shapes.render(Scene(mid.objects[:1])), 0.5, a, b) == "wrong count"


def test_an_object_of_another_kind_is_a_wrong_shape():
    a, b = PAIRS[2]
    swapped = shapes_scorer.swap_kind(shapes.lerp_scene(a, b, 0.5), np.random.default_rng(0))
    assert shapes_failures.classify(shapes.render(swapped), 0.5, a, b) == "wrong shape"


def test_a_world_hue_off_the_short_arc_is_a_wrong_colour():
    a = Scene((Shape("square", 24.0, 30.0, 9.0, 5.0, 0.0),))
    b = Scene((Shape("square", 38.0, 32.0, 9.0, 15.0, 20.0),))
    mid = shapes.lerp_scene(a, b, 0.5)
    assert shapes_failures.classify(shapes.render(with_objects(mid, hue=190.0)), 0.5, a, b) == "wrong colour"


def test_a_greyish_object_is_a_wrong_colour():
    a = Scene((Shape("disk", 24.0, 30.0, 10.0, 0.0, 0.0),))
    b = Scene((Shape("disk", 38.0, 32.0, 10.0, 0.0, 20.0),))
    mid = shapes.lerp_scene(a, b, 0.5)
    washed = to_uint8(0.5 * shapes.render_float(mid) + 0.5 * BACKGROUND)
    assert shapes_failures.classify(washed, 0.5, a, b) == "wrong colour"


def test_the_cli_names_the_same_worlds_as_the_evaluation():
    from latentween.toyworld.defaults import WORLD_NAMES
    from latentween.toyworld.worlds import WORLDS

    assert tuple(WORLDS) == WORLD_NAMES


def test_the_shapes_worlds_model_is_shipped_and_resolves_by_name():
    from latentween.models import resolve_model, toy_model_dir

    source = resolve_model("toy-shapes")
    assert source.kind == "folder" and source.location == str(toy_model_dir("toy-shapes"))
    assert (toy_model_dir("toy-shapes") / "unet" / "diffusion_pytorch_model.safetensors").is_file()


def test_the_shapes_model_is_a_stable_diffusion_folder_under_10_mb_that_knows_its_words():
    from latentween.toyworld import SHAPES_MODEL_DIR

    index = json.loads((SHAPES_MODEL_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert sum(f.stat().st_size for f in SHAPES_MODEL_DIR.rglob("*") if f.is_file()) <= 10e6
    log = json.loads((SHAPES_MODEL_DIR / "train_log.json").read_text())
    assert log["world"] == "shapes" and log["wall_minutes"] <= 40
    vocab = json.loads((SHAPES_MODEL_DIR / "tokenizer" / "tokenizer.json").read_text())["model"]["vocab"]
    assert {"square", "triangle", "and", "disk"} <= set(vocab)


def test_a_shapes_evaluation_scores_every_object_and_splits_its_failures(manager, tmp_path):
    from latentween.toyworld.evaluate import EvalConfig, evaluate

    config = EvalConfig(world="shapes", pairs=2, frames=5, steps=10, schemes=("interpolate-only", "ours-aligned"),
                        worst_pairs=1)
    report = evaluate(config, tmp_path, manager=manager)
    assert report["config"]["model"] == "toy-shapes" and report["config"]["world"] == "shapes"
    pairs = shapes.make_pairs(2, 0, min_shift=10.0, max_shift=20.0)
    assert (tmp_path / "keyframes" / "001_b.png").is_file()
    from latentween.toyworld.evaluate import _read_rgb

    assert np.array_equal(_read_rgb(tmp_path / "keyframes" / "001_b.png"), shapes.render(pairs[1][1]))
    for s in report["schemes"].values():
        b = s["failures"]
        assert b["frames"] == 2 * 3
        assert sum(b["counts"].values()) == round(b["frames"] * (1 - s["true_inbetween"]))
        assert s["endpoint_max_error"] == 0
    # pixel blends of two scenes are not scenes: the scorer must see that in the shapes world too
    assert report["schemes"]["interpolate-only"]["on_manifold"] <= 0.5
    md = (tmp_path / "report.md").read_text()
    assert "# Toy-world evaluation: shapes" in md and "`wrong shape`" in md
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["schemes"]["ours-aligned"]["per_position"].keys() == {"0.250", "0.500", "0.750"}
