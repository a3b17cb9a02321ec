"""Issue 17: the eval's failure kinds, its pop-at-the-ends measures and worst.png, on analytic scenes."""
import numpy as np
import pytest

from latentween.toyworld import edges, failures, scorer, world
from latentween.toyworld.world import DiskParams

# Keyframes as the eval draws them: centres ~20 px apart, different colours (red -> yellow).
A = DiskParams(22.0, 30.0, 10.0, 2.0)
B = DiskParams(40.0, 36.0, 12.0, 58.0)


def middle(f: float = 0.5) -> DiskParams:
    return DiskParams(A.x + f * (B.x - A.x), A.y + f * (B.y - A.y), A.radius + f * (B.radius - A.radius),
                      A.hue + f * (B.hue - A.hue))


def paint(*disks: tuple[DiskParams, np.ndarray]) -> np.ndarray:
    """float RGB: disks painted over the background in order, each in the given colour."""
    img = np.ones((64, 64, 3)) * world.BACKGROUND
    for p, colour in disks:
        alpha = world.coverage(p)[..., None]
        img = (1 - alpha) * img + alpha * colour
    return img


def test_a_true_inbetween_has_no_failure():
    assert failures.classify(world.render(middle()), 0.5, A, B) is None


def test_a_50_50_blend_of_the_keyframes_is_a_blend():
    assert failures.classify(scorer.blend(A, B), 0.5, A, B) == "blend"


def test_an_uneven_mix_with_one_parent_nearly_opaque_is_a_blend():
    # what decoding an interpolated latent makes: weights that need not sum to 1
    mix = world.BACKGROUND + 0.9 * (world.render_float(A) - world.BACKGROUND) + 0.45 * (world.render_float(B) - world.BACKGROUND)
    assert failures.classify(world.to_uint8(np.clip(mix, 0, 1)), 0.5, A, B) == "blend"


def test_a_keyframe_at_the_middle_fraction_is_a_copy_of_a_parent():
    assert failures.classify(world.render(A), 0.5, A, B) == "copy of a parent"


def test_a_keyframe_at_a_fraction_near_it_is_not_a_copy():
    assert failures.classify(world.render(A), 0.05, A, B) is None


def test_a_greyish_disk_is_a_wrong_colour():
    grey = 0.4 * middle().rgb() + 0.6 * np.full(3, 0.5)
    assert failures.classify(world.to_uint8(paint((middle(), grey))), 0.5, A, B) == "wrong colour"


def test_a_world_hue_off_the_short_arc_is_a_wrong_colour():
    blue = DiskParams(*list(vars(middle()).values())[:3], 240.0)
    assert failures.classify(world.render(blue), 0.5, A, B) == "wrong colour"


def test_two_opaque_disks_are_a_wrong_count():
    assert failures.classify(world.to_uint8(paint((A, A.rgb()), (B, B.rgb()))), 0.5, A, B) == "wrong count"


def test_an_empty_frame_is_a_wrong_count():
    assert failures.classify(world.to_uint8(paint()), 0.5, A, B) == "wrong count"


def test_a_valid_disk_at_the_wrong_fraction_is_off_path():
    assert failures.classify(world.render(middle(0.5)), 0.2, A, B) == "off-path"


def test_the_breakdown_counts_each_kind_per_position():
    kinds = [[None, "blend"], ["off-path", "blend"]]
    b = failures.breakdown(kinds, [1 / 3, 2 / 3])
    assert b["frames"] == 4 and b["counts"]["blend"] == 2 and b["counts"]["off-path"] == 1
    assert b["shares"]["blend"] == 0.5
    assert b["per_position"]["0.667"]["blend"] == 1.0 and b["per_position"]["0.333"]["off-path"] == 0.5


def test_a_blurred_disk_has_a_wider_edge_than_a_sharp_one():
    import cv2

    p = middle()
    sharp = edges.edge_width(world.render(p), p)
    blurred = edges.edge_width(cv2.GaussianBlur(world.render_float(p), (0, 0), 1.2), p)
    assert sharp == pytest.approx(0.8, abs=0.25)
    assert blurred > sharp + 1.0


def test_a_bright_ring_outside_the_disk_is_a_larger_halo():
    p = middle()
    plain = world.render_float(p)
    d = np.hypot(np.arange(64)[None, :] + 0.5 - p.x, np.arange(64)[:, None] + 0.5 - p.y) - p.radius
    ringed = plain.copy()
    ringed[(d > 1.0) & (d < 3.0)] = 1.0
    assert edges.halo(plain, p) < 0.005
    assert edges.halo(ringed, p) > edges.halo(plain, p) + 0.03


def test_a_darker_core_is_a_larger_dark_centre():
    p = middle()
    plain = world.render_float(p)
    core = DiskParams(p.x, p.y, 0.25 * p.radius, p.hue)
    dark = paint((p, p.rgb()), (core, 0.6 * p.rgb()))
    assert abs(edges.dark_centre(plain, p)) < 0.005
    assert edges.dark_centre(dark, p) > 0.05


def test_a_large_first_step_has_a_first_step_ratio_above_one():
    seq = [middle(f) for f in (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)]
    first, last, median = edges.end_steps(seq)
    look = edges.summarise([], [], [(first, last, median)])["end_steps"]
    assert look["first_over_median"] > 3.0
    assert look["last_over_median"] == pytest.approx(1.0, rel=0.05)


def test_the_worst_pairs_are_those_with_fewest_true_inbetweens():
    from latentween.toyworld.breakdown_report import worst_pairs

    kinds = [[None, None], ["blend", "blend"], [None, "off-path"]]
    assert worst_pairs(kinds, 2) == [1, 2]


def test_worst_png_has_a_row_per_worst_pair(tmp_path):
    from PIL import Image

    from latentween.toyworld.breakdown_report import write_worst
    from latentween.toyworld.evaluate import _write_rgb

    for pair in range(3):
        folder = tmp_path / "runs" / "ours-aligned" / f"{pair:03d}"
        folder.mkdir(parents=True)
        for i, f in enumerate((0.0, 0.5, 1.0)):
            _write_rgb(folder / f"frame_{i:05d}.png", world.render(middle(f)))
    kinds = [[None], ["blend"], ["off-path"]]
    chosen = write_worst(tmp_path / "worst.png", tmp_path, "ours-aligned", kinds, 2, 3)
    assert chosen == [1, 2]
    with Image.open(tmp_path / "worst.png") as im:
        assert im.size[0] == 110 + 3 * 64
        assert im.size[1] == 28 + 2 * (64 + 14 + 4)


def test_an_evaluation_splits_exactly_its_non_true_frames_into_kinds(manager, tmp_path):
    from latentween.toyworld.evaluate import EvalConfig, evaluate

    config = EvalConfig(pairs=2, frames=5, steps=10, schemes=("interpolate-only", "ours-aligned"), worst_pairs=1)
    report = evaluate(config, tmp_path, manager=manager)
    for s in report["schemes"].values():
        b = s["failures"]
        assert b["frames"] == 2 * 3
        assert sum(b["counts"].values()) == round(b["frames"] * (1 - s["true_inbetween"]))
        assert s["pop"]["edge_width"]["keyframes"] == pytest.approx(0.8, abs=0.25)
    assert report["worst"]["scheme"] == "ours-aligned" and len(report["worst"]["pairs"]) == 1
    md = (tmp_path / "report.md").read_text()
    assert "## Failures" in md and "## Pop at the ends" in md and "| interpolate-only | 6 |" in md
    assert (tmp_path / "worst.png").is_file()
