"""Toy world 2, "shapes": generator, interpolation of scenes, and the analytic scorer."""
from __future__ import annotations

import math

import numpy as np
import pytest

from latentween.toyworld import shapes, shapes_scorer
from latentween.toyworld.shapes import Scene, Shape
from latentween.toyworld.world import BACKGROUND, hue_distance, hue_to_rgb, to_uint8

RED_SQUARE = Shape("square", 20.0, 30.0, 9.0, 10.0, 0.0)
BLUE_DISK = Shape("disk", 44.0, 34.0, 10.0, 0.0, 240.0)


def scenes_of_kind(kind: str, n: int, seed: int) -> list[Scene]:
    found = [s for s in shapes.sample_scenes(40 * n, seed, n_objects=1) if s.kinds == (kind,)]
    return found[:n]


def separate_pairs_of_objects(n: int, seed: int) -> list[Scene]:
    """Two-object scenes whose circumcircles are >= 2 px apart (no overlap at any rotation)."""
    out = []
    for s in shapes.sample_scenes(10 * n, seed, n_objects=2):
        a, b = s.objects
        if math.hypot(a.x - b.x, a.y - b.y) >= a.circumradius + b.circumradius + 2.0:
            out.append(s)
    return out[:n]


def assert_recovered(fitted: Shape, true: Shape) -> None:
    assert math.hypot(fitted.x - true.x, fitted.y - true.y) <= 1.0
    assert abs(fitted.size / true.size - 1.0) <= 0.05
    assert abs(shapes.angle_delta(true.kind, true.angle, fitted.angle)) <= 3.0
    assert hue_distance(fitted.hue, true.hue) <= 5.0


# --- world ---------------------------------------------------------------------------------

def test_same_seed_gives_same_scenes_and_pixels():
    a, b = shapes.sample_scenes(20, seed=7), shapes.sample_scenes(20, seed=7)
    assert a == b
    assert all(np.array_equal(shapes.render(x), shapes.render(y)) for x, y in zip(a, b))


def test_different_seeds_give_different_scenes():
    assert shapes.sample_scenes(5, seed=1) != shapes.sample_scenes(5, seed=2)


def test_render_is_64x64_uint8_with_background_corners_and_solid_centres():
    img = shapes.render(Scene((RED_SQUARE, BLUE_DISK)))
    assert img.shape == (64, 64, 3) and img.dtype == np.uint8
    assert np.array_equal(img[0, 0], to_uint8(BACKGROUND))
    assert np.array_equal(img[30, 20], to_uint8(hue_to_rgb(0.0)))
    assert np.array_equal(img[34, 44], to_uint8(hue_to_rgb(240.0)))


@pytest.mark.parametrize("kind", shapes.KINDS)
def test_size_is_the_equal_area_radius_at_any_angle(kind):
    for angle in (0.0, 17.0, 45.0):
        area = shapes.coverage(Shape(kind, 32.0, 32.0, 10.0, angle, 0.0)).sum()
        assert area == pytest.approx(math.pi * 100.0, rel=0.01)


def test_later_object_is_drawn_on_top():
    under, over = Shape("disk", 32.0, 32.0, 10.0, 0.0, 0.0), Shape("square", 32.0, 32.0, 6.0, 0.0, 240.0)
    img = shapes.render(Scene((under, over)))
    assert np.array_equal(img[31, 31], to_uint8(hue_to_rgb(240.0)))


def test_caption_names_colours_and_kinds_in_drawing_order():
    assert shapes.caption(Scene((RED_SQUARE, BLUE_DISK))) == "a red square and a blue disk"
    assert shapes.caption(Scene((BLUE_DISK,))) == "a blue disk"


def test_sampled_scenes_have_one_or_two_objects_inside_the_frame_and_apart():
    scenes = shapes.sample_scenes(300, seed=3)
    assert {len(s.objects) for s in scenes} == {1, 2}
    for s in scenes:
        assert all(shapes.inside_frame(o) for o in s.objects)
        assert shapes.apart(s)


def test_pairs_keep_kinds_and_move_every_object_at_least_10_px():
    for a, b in shapes.make_pairs(100, seed=4):
        assert a.kinds == b.kinds
        for oa, ob in zip(a.objects, b.objects):
            assert 10.0 <= math.hypot(oa.x - ob.x, oa.y - ob.y) <= 20.0
            assert shapes.inside_frame(ob)


def test_same_seed_gives_same_pairs():
    assert shapes.make_pairs(10, seed=6) == shapes.make_pairs(10, seed=6)
    assert shapes.make_pairs(10, seed=6) != shapes.make_pairs(10, seed=7)


def test_lerp_scene_returns_the_keyframes_at_0_and_1():
    a, b = shapes.make_pairs(1, seed=5)[0]
    for oa, ob, o0, o1 in zip(a.objects, b.objects, shapes.lerp_scene(a, b, 0.0).objects, shapes.lerp_scene(a, b, 1.0).objects):
        assert o0 == oa
        assert (o1.x, o1.y, o1.size) == pytest.approx((ob.x, ob.y, ob.size))
        assert shapes.angle_delta(ob.kind, ob.angle, o1.angle) == pytest.approx(0.0, abs=1e-9)
        assert hue_distance(o1.hue, ob.hue) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("kind, start, end, mid", [("square", 80.0, 10.0, 90.0), ("triangle", 110.0, 0.0, 115.0),
                                                   ("square", 10.0, 30.0, 20.0)])
def test_lerp_rotates_on_the_shortest_arc_modulo_the_symmetry(kind, start, end, mid):
    a, b = Shape(kind, 30, 30, 8, start, 0.0), Shape(kind, 30, 30, 8, end, 0.0)
    assert shapes.lerp_shape(a, b, 0.5).angle == pytest.approx(mid)


def test_lerp_moves_hue_on_the_short_arc():
    a, b = Shape("disk", 30, 30, 8, 0.0, 350.0), Shape("disk", 30, 30, 8, 0.0, 10.0)
    assert hue_distance(shapes.lerp_shape(a, b, 0.5).hue, 0.0) == pytest.approx(0.0, abs=1e-9)


def test_lerp_of_scenes_with_different_kinds_is_an_error():
    with pytest.raises(ValueError):
        shapes.lerp_scene(Scene((RED_SQUARE,)), Scene((BLUE_DISK,)), 0.5)


# --- scorer --------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", shapes.KINDS)
def test_fit_recovers_single_objects_of_each_kind(kind):
    scenes = scenes_of_kind(kind, 20, seed=11)
    assert len(scenes) == 20
    for s in scenes:
        result = shapes_scorer.fit(shapes.render(s), (s, s))
        assert result.valid
        assert_recovered(result.objects[0], s.objects[0])


def test_fit_recovers_both_objects_of_separate_two_object_scenes():
    scenes = separate_pairs_of_objects(20, seed=12)
    assert len(scenes) == 20
    for s in scenes:
        result = shapes_scorer.fit(shapes.render(s), (s, s))
        assert result.valid
        for fitted, true in zip(result.objects, s.objects):
            assert_recovered(fitted, true)


def test_fit_accepts_scenes_after_a_small_blur_and_noise():
    rng = np.random.default_rng(13)
    for s in shapes.sample_scenes(60, seed=13):
        soft = shapes_scorer.soften(shapes.render_float(s), sigma=0.75, noise=0.03, rng=rng)
        assert shapes_scorer.fit(soft, (s, s)).valid


def test_fit_accepts_partly_overlapping_scenes():
    overlapping = [s for s in shapes.sample_scenes(300, seed=14, n_objects=2)
                   if math.hypot(s.objects[0].x - s.objects[1].x, s.objects[0].y - s.objects[1].y)
                   < s.objects[0].circumradius + s.objects[1].circumradius - 2.0][:20]
    assert len(overlapping) == 20
    assert all(shapes_scorer.fit(shapes.render(s), (s, s)).valid for s in overlapping)


def test_scorer_rejects_50_50_blends_of_pairs():
    for a, b in shapes.make_pairs(40, seed=15):
        result = shapes_scorer.score(shapes.blend(a, b), a, b, 0.5)
        assert not result.fit.valid and not result.true_inbetween


def test_a_keyframe_at_half_is_not_a_true_inbetween():
    for a, b in shapes.make_pairs(30, seed=16):
        result = shapes_scorer.score(shapes.render(a), a, b, 0.5)
        assert result.fit.valid and not result.true_inbetween
        assert all(abs(lam) <= 0.05 for lam in result.lambdas)
        assert "lambda" in result.reason


def test_rendered_lerp_midpoint_is_a_true_inbetween():
    for a, b in shapes.make_pairs(40, seed=17):
        result = shapes_scorer.score(shapes.render(shapes.lerp_scene(a, b, 0.5)), a, b, 0.5)
        assert result.true_inbetween, result.reason
        assert all(abs(lam - 0.5) <= 0.1 for lam in result.lambdas)


@pytest.mark.parametrize("f", [0.25, 0.75])
def test_lambda_of_a_rendered_lerp_is_its_fraction(f):
    for a, b in shapes.make_pairs(20, seed=18):
        result = shapes_scorer.score(shapes.render(shapes.lerp_scene(a, b, f)), a, b, f)
        assert result.true_inbetween, result.reason


def test_object_lambda_is_0_and_1_at_the_keyframes():
    a, b = RED_SQUARE, Shape("square", 30.0, 25.0, 10.0, 100.0, 20.0)  # 100 deg is 10 deg the short way
    assert shapes_scorer.object_lambda(a, a, b) == pytest.approx(0.0)
    assert shapes_scorer.object_lambda(b, a, b) == pytest.approx(1.0)


def test_object_lambda_of_identical_keyframes_is_an_error():
    with pytest.raises(ValueError):
        shapes_scorer.object_lambda(RED_SQUARE, RED_SQUARE, RED_SQUARE)


def test_scorer_finds_no_object_in_a_blank_image():
    blank = np.broadcast_to(to_uint8(BACKGROUND), (64, 64, 3)).copy()
    s = Scene((RED_SQUARE,))
    result = shapes_scorer.score(blank, s, s, 0.5)
    assert not result.fit.valid and not result.true_inbetween and "not found" in result.reason


def test_scorer_rejects_a_disk_where_the_keyframes_have_a_square():
    square = Shape("square", 32.0, 32.0, 12.0, 20.0, 0.0)
    disk = Shape("disk", 32.0, 32.0, 12.0, 0.0, 0.0)
    assert not shapes_scorer.fit(shapes.render(Scene((disk,))), (Scene((square,)), Scene((square,)))).valid


# --- training sampler (train.py --world) ---------------------------------------------------

def test_train_default_batches_are_the_disk_worlds_samples():
    from latentween.toyworld import train, world

    x, captions, params = train.image_batch(np.random.default_rng(5), 8)
    expected = world.sample_params(np.random.default_rng(5), 8)
    assert params == expected and captions == [world.caption(p) for p in expected]
    assert np.array_equal(((x.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round(), world.render_many(expected))


def test_train_shapes_batches_are_shapes_scenes_with_their_captions():
    from latentween.toyworld import train

    x, captions, scenes = train.image_batch(np.random.default_rng(6), 8, "shapes")
    assert scenes == shapes.sample_scenes(8, seed=6)
    assert captions == [shapes.caption(s) for s in scenes]
    assert np.array_equal(((x.permute(0, 2, 3, 1).numpy() + 1.0) * 127.5).round(), np.stack([shapes.render(s) for s in scenes]))


def test_shapes_tokenizer_knows_every_caption_word_and_keeps_the_disk_ids():
    from latentween.toyworld import train

    disks, extended = train.build_tokenizer(), train.build_tokenizer("shapes")
    assert extended("a red disk").input_ids == disks("a red disk").input_ids
    captions = [shapes.caption(s) for s in shapes.sample_scenes(200, seed=7)]
    assert extended.unk_token_id not in {i for c in captions for i in extended(c).input_ids}
    assert any(disks.unk_token_id in disks(c).input_ids for c in captions)
