"""Alignment before interpolation (issue 9): transforms, fields, warping, sources, fallback."""
import json
import math

import numpy as np
import pytest
import torch

from latentween.align import (Alignment, Matches, displacement_field, estimate_alignment, fit_transform,
                              mutual_matches, similarity_parameters, warp)
from latentween.cli import main


def similarity(scale, degrees, tx, ty):
    c, s = scale * math.cos(math.radians(degrees)), scale * math.sin(math.radians(degrees))
    return np.array([[c, -s, tx], [s, c, ty]])


def matches_under(A, n=60, outliers=10, seed=0):
    rng = np.random.default_rng(seed)
    src = rng.uniform(0, 16, (n, 2))
    dst = src @ A[:, :2].T + A[:, 2]
    dst[:outliers] = rng.uniform(0, 16, (outliers, 2))
    return Matches.of(src, dst)


def test_warp_by_zero_is_the_identity():
    z = torch.randn(2, 4, 16, 16)
    assert torch.equal(warp(z, torch.zeros(2, 16, 16)), z)


def test_warp_moves_content_by_whole_pixels_exactly():
    z = torch.randn(1, 4, 16, 16)
    d = torch.zeros(2, 16, 16)
    d[0] = 3  # x + 3
    moved = warp(z, d)
    torch.testing.assert_close(moved[..., 3:], z[..., :-3])


def test_warp_repeats_the_border_instead_of_black():
    z = torch.ones(1, 1, 8, 8)
    d = torch.zeros(2, 8, 8)
    d[0] = 4
    assert torch.equal(warp(z, d), z)


def test_parents_at_f_0_keep_the_first_parent_and_move_the_second_all_the_way():
    z = torch.randn(1, 4, 16, 16)
    d = torch.zeros(2, 16, 16)
    d[1] = 2
    left, right = Alignment(d, [1, 0, 0, 0, 1, 2], "translation", 10, 10, "test").warp_parents(z, z, 0.0, 1.0, 0.0)
    assert torch.equal(left, z)
    torch.testing.assert_close(right[..., :-2, :], z[..., 2:, :])


def test_ransac_recovers_a_similarity_despite_outliers():
    A = similarity(1.1, 8.0, 2.0, -1.5)
    est, inliers = fit_transform(matches_under(A), "similarity", threshold=0.5)
    np.testing.assert_allclose(est, A, atol=1e-3)
    assert inliers.sum() >= 50


def test_ransac_recovers_a_translation():
    A = similarity(1.0, 0.0, 4.0, 1.0)
    est, _ = fit_transform(matches_under(A), "translation", threshold=0.5)
    np.testing.assert_allclose(est[:, 2], [4.0, 1.0], atol=1e-6)


def test_the_field_is_the_transforms_motion_when_matches_agree():
    A = similarity(1.0, 0.0, 3.0, 0.0)
    field, _, _, _ = displacement_field(matches_under(A, outliers=0), (16, 16), "similarity", threshold=0.5)
    np.testing.assert_allclose(field[0], 3.0, atol=1e-3)
    np.testing.assert_allclose(field[1], 0.0, atol=1e-3)


def test_too_few_consistent_matches_give_no_alignment_and_say_why():
    rng = np.random.default_rng(1)
    noise = Matches.of(rng.uniform(0, 16, (20, 2)), rng.uniform(0, 16, (20, 2)))
    alignment, report = estimate_alignment(noise, (16, 16), "features", threshold=0.5)
    assert alignment is None and report["used"] is False and "consistent matches" in report["warning"]


def test_mutual_matches_find_a_shifted_copy():
    torch.manual_seed(0)
    feat = torch.randn(16, 12, 12)
    shifted = torch.roll(feat, shifts=2, dims=2)  # x + 2
    m = mutual_matches(feat, shifted)
    inside = m.src[:, 0] < 10
    assert inside.sum() > 50
    np.testing.assert_allclose(m.dst[inside] - m.src[inside], [[2, 0]] * int(inside.sum()), atol=1e-3)


def test_similarity_parameters_read_back_scale_and_rotation():
    p = similarity_parameters(similarity(1.2, 10.0, 1.0, 2.0).reshape(-1))
    assert p["scale"] == pytest.approx(1.2) and p["rotation"] == pytest.approx(10.0)


def test_user_point_pairs_drive_the_alignment(tiny_model, keyframe_files, tmp_path):
    pairs = [[[x, y], [x + 16, y]] for x, y in ((10, 10), (20, 40), (30, 20), (12, 50))]
    points = tmp_path / "points.json"
    points.write_text(json.dumps(pairs))
    out = tmp_path / "out"
    assert main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--steps", "6",
                 "--frames", "3", "--candidates", "1", "--seed", "1", "--quiet", "--align", "points",
                 "--points", str(points)]) == 0
    report = json.loads((out / "manifest.json").read_text())["conditioning"]["alignment"]
    assert report["used"] and report["source"] == "points"
    assert report["transform"][2] == pytest.approx(16 / 8, abs=1e-3)  # 16 px at the tiny VAE's 8x


def test_feature_alignment_is_deterministic(tiny_model, keyframe_files, tmp_path):
    reports = []
    for name in ("a", "b"):
        out = tmp_path / name
        main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--steps", "6",
              "--frames", "3", "--candidates", "1", "--seed", "1", "--quiet", "--align", "features"])
        reports.append(json.loads((out / "manifest.json").read_text())["conditioning"]["alignment"])
    assert reports[0] == reports[1] and reports[0]["matches"] > 0


def test_pose_keypoints_drive_the_alignment(tiny_model, keyframe_files, tmp_path):
    def pose(path, dx):
        points = [(10 + dx, 10), (10 + dx, 30), (20 + dx, 30), (22 + dx, 44)]
        flat = [v for x, y in points for v in (x, y, 1.0)] + [0.0] * 3 * (18 - len(points))
        path.write_text(json.dumps({"people": [{"pose_keypoints_2d": flat}], "canvas_width": 64, "canvas_height": 64}))
        return path

    a, b = pose(tmp_path / "a.json", 0), pose(tmp_path / "b.json", 24)
    out = tmp_path / "out"
    assert main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--steps", "6",
                 "--frames", "3", "--candidates", "1", "--seed", "1", "--quiet", "--pose", f"{a},{b}",
                 "--controlnet", str(tiny_model / "controlnet"), "--align", "auto"]) == 0
    report = json.loads((out / "manifest.json").read_text())["conditioning"]["alignment"]
    assert report["used"] and report["source"] == "pose"
    assert report["transform"][2] == pytest.approx(24 / 8, abs=1e-3) and report["inliers"] == 4
