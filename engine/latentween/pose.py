"""Pose guidance (METHOD.md 4): keypoints from a detector or OpenPose JSON, linear interpolation,
the standard OpenPose rendering, and the per-frame ControlNet scale.

A person is an (18, 3) array of COCO-18 body keypoints (x, y in output pixels, confidence); a
confidence of 0 marks a missing keypoint, as OpenPose's own JSON does.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from latentween.errors import InputError, loading

KEYPOINTS = 18
# OpenPose's BODY_25 -> COCO-18 (drops MidHip and the feet)
BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@dataclass
class PoseFrame:
    """The people of one image, in pixel coordinates of a `width` x `height` canvas."""

    people: list[np.ndarray]
    width: int
    height: int

    def to_openpose_json(self) -> dict:
        """The format OpenPose writes (people[].pose_keypoints_2d), with the canvas size ControlNet tools add."""
        return {"version": 1.3, "canvas_width": self.width, "canvas_height": self.height,
                "people": [{"pose_keypoints_2d": [round(float(v), 3) for v in person.reshape(-1)]}
                           for person in self.people]}

    def transformed(self, sx: float, sy: float, ox: float, oy: float, width: int, height: int) -> "PoseFrame":
        """Keypoints moved like the image was (images.fit_transform); points pushed off the canvas go missing."""
        people = []
        for person in self.people:
            p = person.copy()
            p[:, 0] = p[:, 0] * sx + ox
            p[:, 1] = p[:, 1] * sy + oy
            outside = (p[:, 0] < 0) | (p[:, 0] >= width) | (p[:, 1] < 0) | (p[:, 1] >= height)
            p[outside | (person[:, 2] <= 0)] = 0.0
            people.append(p)
        return PoseFrame(people, width, height)


def parse_openpose_json(data: dict, source: str, default_size: tuple[int, int]) -> PoseFrame:
    """OpenPose JSON (COCO-18 or BODY_25 keypoints) -> PoseFrame."""
    try:
        people = []
        for person in data["people"]:
            flat = np.asarray(person["pose_keypoints_2d"], dtype=np.float32)
            points = flat.reshape(-1, 3)
            if len(points) == 25:
                points = points[BODY25_TO_COCO18]
            if len(points) != KEYPOINTS:
                raise ValueError(f"{len(points)} keypoints per person (expected 18 or 25)")
            people.append(points)
        width = int(data.get("canvas_width") or default_size[0])
        height = int(data.get("canvas_height") or default_size[1])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"pose file {source!r} is not OpenPose JSON: {exc}") from exc
    return PoseFrame(people, width, height)


def read_openpose_json(path: str | Path, default_size: tuple[int, int]) -> PoseFrame:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError as exc:
        raise InputError(f"pose file {str(path)!r} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"pose file {str(path)!r} is not readable JSON: {exc}") from exc
    return parse_openpose_json(data, str(path), default_size)


def person_area(person: np.ndarray) -> float:
    """Bounding-box area of a person's present keypoints (for keeping the largest)."""
    present = person[person[:, 2] > 0]
    if len(present) < 2:
        return 0.0
    span = present[:, :2].max(0) - present[:, :2].min(0)
    return float(span[0] * span[1])


def pair_people(a: Sequence[np.ndarray], b: Sequence[np.ndarray], largest: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pair the people of two images by order, or only the largest of each (METHOD.md 4)."""
    if largest and a and b:
        return [(max(a, key=person_area), max(b, key=person_area))]
    return list(zip(a, b))


def interpolate_person(a: np.ndarray, b: np.ndarray, f: float) -> np.ndarray:
    """Linear interpolation of the keypoints present in both; the others are dropped from every frame."""
    out = np.zeros_like(a)
    both = (a[:, 2] > 0) & (b[:, 2] > 0)
    out[both, :2] = (1 - f) * a[both, :2] + f * b[both, :2]
    out[both, 2] = (1 - f) * a[both, 2] + f * b[both, 2]
    return out


def interpolate_pose(pairs: Sequence[tuple[np.ndarray, np.ndarray]], f: float, width: int, height: int) -> PoseFrame:
    return PoseFrame([interpolate_person(a, b, f) for a, b in pairs], width, height)


def control_scale(f: float, scale: float) -> float:
    """s(f) = scale - 2|f - 0.5|(scale - 1): 1 at the keyframes, `scale` mid-way (METHOD.md 4)."""
    return scale - 2.0 * abs(f - 0.5) * (scale - 1.0)


def render_pose(pose: PoseFrame, size: tuple[int, int]) -> np.ndarray:
    """The skeleton in the standard OpenPose colours on black, uint8 (H, W, 3) at `size` = (W, H)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from controlnet_aux.open_pose.body import Keypoint
        from controlnet_aux.open_pose.util import draw_bodypose

    w, h = size
    canvas = np.zeros((h, w, 3), np.uint8)
    for person in pose.people:
        points = [Keypoint(x / pose.width, y / pose.height) if c > 0 else None for x, y, c in person]
        canvas = draw_bodypose(canvas, points)
    return canvas


class PoseDetector:
    """controlnet_aux's OpenPose body network (body_pose_model.pth); hands and face are not needed."""

    def __init__(self, body):
        self.body = body

    @classmethod
    def load(cls, spec: str, device) -> "PoseDetector":
        from latentween.hub import hub_file

        path = Path(spec).expanduser()
        weights = path / "body_pose_model.pth" if path.is_dir() else (path if path.is_file() else None)
        if weights is None:
            weights = Path(hub_file(spec, "body_pose_model.pth", what="OpenPose body model", flag="--pose-model"))
        elif not weights.is_file():
            raise InputError(f"pose model folder {spec!r} has no body_pose_model.pth")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from controlnet_aux.open_pose.body import Body
        with loading(f"the OpenPose body model {str(weights)!r}"):
            body = Body(str(weights))
        body.to(device)
        return cls(body)

    def __call__(self, rgb: np.ndarray) -> PoseFrame:
        """Detect people in a uint8 RGB image; coordinates in its pixels."""
        candidate, subset = self.body(np.ascontiguousarray(rgb[:, :, ::-1]))
        people = []
        for row in subset:
            person = np.zeros((KEYPOINTS, 3), np.float32)
            for k, index in enumerate(row[:KEYPOINTS].astype(int)):
                if index >= 0:
                    x, y, score = candidate[index][:3]
                    person[k] = (x, y, max(float(score), 1e-3))
            people.append(person)
        return PoseFrame(people, rgb.shape[1], rgb.shape[0])


@dataclass
class PoseTrack:
    """The keyframes' poses and how to make any frame's: what the pipeline and the writer need."""

    pairs: list[tuple[np.ndarray, np.ndarray]]
    width: int
    height: int
    scale: float

    def at(self, f: float) -> PoseFrame:
        return interpolate_pose(self.pairs, f, self.width, self.height)

    def control(self, f: float, size: tuple[int, int]) -> np.ndarray:
        """The ControlNet input for a frame: float32 (H, W, 3) in [0, 1]."""
        return render_pose(self.at(f), size).astype(np.float32) / 255.0


def make_track(a: PoseFrame, b: PoseFrame, scale: float, largest: bool = False) -> tuple[Optional[PoseTrack], Optional[str]]:
    """A track when both images have a person with shared keypoints, else (None, why)."""
    if not a.people or not b.people:
        missing = [name for name, p in (("first", a), ("second", b)) if not p.people]
        return None, f"no person found in the {' and '.join(missing)} keyframe"
    pairs = pair_people(a.people, b.people, largest)
    if not any(((pa[:, 2] > 0) & (pb[:, 2] > 0)).any() for pa, pb in pairs):
        return None, "the keyframes' people share no keypoint"
    return PoseTrack(pairs, a.width, a.height, scale), None
