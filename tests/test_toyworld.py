"""The toy world: generator, analytic scorer, sequence metrics and the shipped tiny model."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from latentween.toyworld import MODEL_DIR, metrics, scorer, world
from latentween.toyworld.world import DiskParams

REPO = Path(__file__).resolve().parents[1]
RED = DiskParams(x=20.0, y=30.0, radius=10.0, hue=0.0)
BLUE = DiskParams(x=44.0, y=34.0, radius=12.0, hue=240.0)


def lerp_params(a: DiskParams, b: DiskParams, f: float) -> DiskParams:
    """Linear in x, y, radius; hue along the shorter arc."""
    dh = (b.hue - a.hue + 180.0) % 360.0 - 180.0
    return DiskParams(a.x + f * (b.x - a.x), a.y + f * (b.y - a.y), a.radius + f * (b.radius - a.radius),
                      (a.hue + f * dh) % 360.0)


# --- world ---------------------------------------------------------------------------------

def test_same_seed_gives_same_disks_and_pixels():
    a = world.sample_params(np.random.default_rng(7), 20)
    b = world.sample_params(np.random.default_rng(7), 20)
    assert a == b
    assert np.array_equal(world.render_many(a), world.render_many(b))


def test_different_seeds_give_different_disks():
    assert world.sample_params(np.random.default_rng(1), 5) != world.sample_params(np.random.default_rng(2), 5)


def test_render_is_64x64_uint8_with_plain_background_outside_the_disk():
    img = world.render(RED)
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert np.array_equal(img[0, 63], world.to_uint8(world.BACKGROUND))
    assert np.array_equal(img[30, 20], world.to_uint8(world.hue_to_rgb(0.0)))


def test_sampled_disks_lie_inside_the_frame():
    for p in world.sample_params(np.random.default_rng(3), 500):
        assert world.RADIUS_RANGE[0] <= p.radius <= world.RADIUS_RANGE[1]
        assert p.radius + world.MARGIN <= p.x <= world.SIZE - p.radius - world.MARGIN
        assert p.radius + world.MARGIN <= p.y <= world.SIZE - p.radius - world.MARGIN


def test_caption_names_the_colour_of_the_hue():
    assert world.caption(RED) == "a red disk"
    assert world.caption(BLUE) == "a blue disk"
    assert world.caption(DiskParams(30, 30, 10, 355.0)) == "a red disk"
    for p in world.sample_params(np.random.default_rng(4), 200):
        name = world.caption(p).split()[1]
        assert world.hue_distance(p.hue, world.PALETTE[name]) <= world.HUE_JITTER + 1e-9


# --- scorer --------------------------------------------------------------------------------

def test_scorer_passes_at_least_99_percent_of_real_samples():
    params = world.sample_params(np.random.default_rng(10), 500)
    assert np.mean([scorer.fit(world.render(p)).on_manifold for p in params]) >= 0.99


def test_scorer_passes_real_samples_with_soft_edges_and_pixel_noise():
    import cv2

    rng = np.random.default_rng(11)
    passed = []
    for p in world.sample_params(rng, 300):
        soft = cv2.GaussianBlur(world.render_float(p), (0, 0), 0.75) + rng.normal(0.0, 0.03, (64, 64, 3))
        passed.append(scorer.fit(np.clip(soft, 0.0, 1.0)).on_manifold)
    assert np.mean(passed) >= 0.99


def test_scorer_fails_at_least_95_percent_of_blends_of_different_disks():
    pairs = scorer.blend_pairs(np.random.default_rng(12), 500)
    assert np.mean([not scorer.fit(scorer.blend(a, b)).on_manifold for a, b in pairs]) >= 0.95


def test_scorer_passes_a_blend_of_a_disk_with_itself():
    assert scorer.fit(scorer.blend(RED, RED)).on_manifold


def test_scorer_fails_two_opaque_disks():
    two = world.render_float(RED)
    alpha = world.coverage(BLUE)[..., None]
    two = (1 - alpha) * two + alpha * BLUE.rgb()
    assert not scorer.fit(two).on_manifold


def test_scorer_fails_a_disk_of_a_colour_outside_the_world():
    grey = np.where(world.coverage(RED)[..., None] > 0.5, 0.4, world.BACKGROUND)
    assert not scorer.fit(grey).on_manifold


def test_scorer_finds_no_object_in_a_blank_image():
    result = scorer.fit(world.to_uint8(np.broadcast_to(world.BACKGROUND, (64, 64, 3))))
    assert result.params is None and not result.on_manifold


def test_fit_recovers_centre_radius_and_hue():
    for p in world.sample_params(np.random.default_rng(13), 100):
        q = scorer.fit(world.render(p)).params
        assert math.hypot(q.x - p.x, q.y - p.y) < 0.1
        assert abs(q.radius - p.radius) < 0.1
        assert world.hue_distance(q.hue, p.hue) < 1.0


# --- metrics -------------------------------------------------------------------------------

@pytest.mark.parametrize("f", [0.25, 0.5, 0.75])
def test_lambda_of_a_frame_rendered_between_the_keyframes_is_its_fraction(f):
    a, b = (scorer.fit(world.render(p)).params for p in (RED, BLUE))
    mid = scorer.fit(world.render(lerp_params(RED, BLUE, f))).params
    assert metrics.lambda_error(mid, a, b, f) < 0.03


def test_lambda_is_0_and_1_at_the_keyframes_and_outside_beyond_them():
    assert metrics.inbetweenness(RED, RED, BLUE) == pytest.approx(0.0)
    assert metrics.inbetweenness(BLUE, RED, BLUE) == pytest.approx(1.0)
    beyond = DiskParams(RED.x - 24.0, RED.y - 4.0, RED.radius - 2.0, 120.0)
    assert metrics.inbetweenness(beyond, RED, BLUE) < 0.0


def test_lambda_of_identical_keyframes_is_an_error():
    with pytest.raises(ValueError, match="same parameters"):
        metrics.inbetweenness(BLUE, RED, RED)


def test_share_between_counts_lambdas_in_the_unit_interval():
    assert metrics.share_between([-0.1, 0.0, 0.4, 1.0, 1.2]) == pytest.approx(0.6)


def test_a_copy_of_a_keyframe_has_distance_0_to_it():
    copy = scorer.fit(world.render(RED)).params
    assert metrics.keyframe_distance(copy, RED, BLUE) < 0.05
    assert metrics.keyframe_distance(copy, RED, BLUE, centre_only=True) < 0.05
    assert metrics.keyframe_distance(lerp_params(RED, BLUE, 0.5), RED, BLUE) > 5.0


def test_ppl_and_pdv_of_a_known_sequence():
    xs = [10.0, 20.0, 30.0, 40.0, 50.0]
    even = [DiskParams(x, 32.0, 8.0, 0.0) for x in xs]
    assert metrics.path_length(even) == pytest.approx(40.0)
    assert metrics.path_deviation(even) == pytest.approx(0.0)
    uneven = [DiskParams(x, 32.0, 8.0, 0.0) for x in (10.0, 12.0, 30.0, 40.0, 50.0)]
    assert metrics.path_length(uneven) == pytest.approx(40.0)
    assert metrics.path_deviation(uneven) == pytest.approx(np.std([2.0, 18.0, 10.0, 10.0]))


def test_hue_distance_counts_in_the_path_length():
    seq = [DiskParams(32.0, 32.0, 8.0, h) for h in (0.0, 90.0)]
    assert metrics.path_length(seq) == pytest.approx(metrics.COLOUR_SCALE * math.sqrt(2.0))


def test_monotonicity_is_1_for_a_monotone_sequence_and_drops_when_a_frame_backtracks():
    monotone = [lerp_params(RED, BLUE, f) for f in np.linspace(0, 1, 9)]
    assert metrics.monotonicity(monotone) == 1.0
    backtrack = list(monotone)
    backtrack[5] = lerp_params(RED, BLUE, 0.2)
    assert metrics.monotonicity(backtrack) == pytest.approx(7 / 8)  # only the step back, 4 -> 5


# --- demo keyframes and the shipped model --------------------------------------------------

@pytest.mark.parametrize("name, colour", [("toy_a.png", "red"), ("toy_b.png", "blue")])
def test_demo_keyframes_are_on_manifold_disks_of_their_colour(name, colour):
    import cv2

    img = cv2.cvtColor(cv2.imread(str(REPO / "samples" / name)), cv2.COLOR_BGR2RGB)
    result = scorer.fit(img)
    assert img.shape == (64, 64, 3) and result.on_manifold and result.params.colour == colour


def test_shipped_model_is_a_small_stable_diffusion_folder():
    index = json.loads((MODEL_DIR / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert index["safety_checker"] == [None, None] and index["requires_safety_checker"] is False
    size = sum(f.stat().st_size for f in MODEL_DIR.rglob("*") if f.is_file())
    assert size < 20e6


def test_shipped_model_loads_offline_and_samples_on_manifold_disks(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from latentween.toyworld import sample_check

    pipe = sample_check.load_pipeline(MODEL_DIR)
    assert pipe.scheduler.__class__.__name__ == "DDIMScheduler"
    prompts = sample_check.prompts_for(8)
    images = sample_check.sample(pipe, prompts, guidance=2.0, steps=50, seed=0)
    result = sample_check.score(images, prompts)
    assert images.shape == (8, 64, 64, 3)
    assert result["on_manifold"] >= 0.75 and result["colour_accuracy"] >= 0.75
