"""Pose guidance (METHOD.md 4): keypoint maths, OpenPose JSON, rendering, scale schedule."""
import json

import numpy as np
import pytest

from latentween.errors import InputError
from latentween.pose import (PoseFrame, control_scale, interpolate_person, make_track, pair_people,
                             parse_openpose_json, render_pose)


def person(points: dict) -> np.ndarray:
    p = np.zeros((18, 3), np.float32)
    for k, (x, y) in points.items():
        p[k] = (x, y, 0.9)
    return p


def test_keypoints_are_interpolated_linearly():
    a, b = person({0: (10, 20), 1: (30, 40)}), person({0: (50, 60), 1: (70, 80)})
    mid = interpolate_person(a, b, 0.25)
    np.testing.assert_allclose(mid[0, :2], [20, 30])
    np.testing.assert_allclose(mid[1, :2], [40, 50])


def test_a_keypoint_missing_in_either_image_is_dropped_from_every_frame():
    a, b = person({0: (10, 20), 2: (5, 5)}), person({0: (50, 60), 3: (9, 9)})
    for f in (0.0, 0.5, 1.0):
        out = interpolate_person(a, b, f)
        assert out[0, 2] > 0 and out[2, 2] == 0 and out[3, 2] == 0


def test_people_are_paired_by_order_or_only_the_largest_is_kept():
    small, big = person({0: (0, 0), 1: (10, 10)}), person({0: (0, 0), 1: (100, 100)})
    other_a, other_b = person({0: (5, 5), 1: (6, 6)}), person({0: (1, 1), 1: (200, 300)})
    pairs = pair_people([small, big], [other_a, other_b])
    assert [(a is small, b is other_a) for a, b in pairs][0] == (True, True) and len(pairs) == 2
    (largest,) = pair_people([small, big], [other_a, other_b], largest=True)
    assert largest[0] is big and largest[1] is other_b


def test_control_scale_is_1_at_the_keyframes_and_scale_midway():
    assert control_scale(0.0, 1.5) == pytest.approx(1.0)
    assert control_scale(1.0, 1.5) == pytest.approx(1.0)
    assert control_scale(0.5, 1.5) == pytest.approx(1.5)
    assert control_scale(0.25, 1.5) == pytest.approx(1.25)


def test_openpose_json_round_trips():
    frame = PoseFrame([person({0: (10.5, 20.25), 5: (3, 4)})], 64, 48)
    data = json.loads(json.dumps(frame.to_openpose_json()))
    back = parse_openpose_json(data, "x.json", (1, 1))
    assert (back.width, back.height) == (64, 48)
    np.testing.assert_allclose(back.people[0], frame.people[0], atol=1e-3)


def test_body_25_json_is_mapped_to_coco_18():
    flat = np.zeros((25, 3), np.float32)
    flat[9] = (11, 12, 1)   # BODY_25 RHip
    flat[8] = (99, 99, 1)   # BODY_25 MidHip has no COCO-18 counterpart
    frame = parse_openpose_json({"people": [{"pose_keypoints_2d": flat.reshape(-1).tolist()}]}, "b25", (64, 64))
    np.testing.assert_allclose(frame.people[0][8], [11, 12, 1])  # COCO-18 RHip
    assert not (frame.people[0][:, :2] == 99).any()


def test_json_that_is_not_openpose_is_one_clear_error():
    with pytest.raises(InputError, match="not OpenPose JSON"):
        parse_openpose_json({"people": [{"pose_keypoints_2d": [1, 2]}]}, "bad.json", (64, 64))


def test_render_draws_limbs_in_the_openpose_colours():
    frame = PoseFrame([person({1: (32, 10), 2: (32, 50)})], 64, 64)  # neck -> right shoulder: limb 0
    canvas = render_pose(frame, (64, 64))
    assert tuple(canvas[30, 32]) == (153, 0, 0)  # red at 60% along the limb
    assert canvas[5, 5].sum() == 0


def test_track_reports_why_there_is_no_pose():
    empty, one = PoseFrame([], 64, 64), PoseFrame([person({0: (1, 1)})], 64, 64)
    track, why = make_track(empty, one, 1.5)
    assert track is None and "first" in why
    track, why = make_track(one, one, 1.5)
    assert track is not None and why is None


def test_moving_a_pose_like_its_image_drops_points_pushed_off_the_canvas():
    frame = PoseFrame([person({0: (10, 10), 1: (60, 10)})], 64, 64)
    moved = frame.transformed(0.5, 0.5, -10, 0, 32, 32)
    assert moved.people[0][0, 2] == 0  # (10, 10) -> (-5, 5): outside
    np.testing.assert_allclose(moved.people[0][1, :2], [20, 5])
