"""Scenarios of re-rolling frames of a morph strip (issue 20). Run by tests/blender/driver.py."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path
from types import SimpleNamespace

import bpy

from blender_support import addon, draw_panel, editor, morph, results, settings, strips, two_images_with_gap


def hashes(strip) -> dict:
    folder = Path(bpy.path.abspath(strip.directory))
    return {e.filename: hashlib.sha256((folder / e.filename).read_bytes()).hexdigest() for e in strip.elements}


def reroll(**options) -> dict:
    try:
        return {"outcome": sorted(bpy.ops.sequencer.latentween_reroll(**options)), "error": None}
    except RuntimeError as exc:
        return {"outcome": ["CANCELLED"], "error": str(exc)}


class ModalReroll:
    """The re-roll operator's modal path on a stand-in `self`, sent the TIMER events Blender would send."""

    def __init__(self, use_range: bool):
        op = addon().operators.SEQUENCER_OT_latentween_reroll
        self.use_range, self.bl_label, self.reports, self._timer = use_range, op.bl_label, [], None
        self.modal, self._end, self._stop_timer, self._start = (
            f.__get__(self) for f in (op.modal, op._end, op._stop_timer, op._start))
        self.task = self._start(bpy.context)

    def report(self, level, message) -> None:
        self.reports.append([sorted(level)[0], message])

    def run(self, timeout: float = 120) -> dict:
        deadline, outcome = time.monotonic() + timeout, {"PASS_THROUGH"}
        while outcome == {"PASS_THROUGH"} and time.monotonic() < deadline:
            outcome = self.modal(bpy.context, SimpleNamespace(type="TIMER", value="PRESS", timer=None))
            time.sleep(0.05)
        return {"outcome": sorted(outcome), "reports": self.reports}


def scenario_reroll_frames(args) -> dict:
    """Morph a 3-frame gap, then re-roll the frame under the playhead, then a range, from the panel's buttons."""
    two_images_with_gap(args, gap=3)  # the strip shows job frames 1, 2, 3 at timeline frames 11, 12, 13
    settings(mode="GAP")
    made = morph()
    strip = [s for s in strips() if s.name.startswith("latentween")][0]
    first_job = strip["latentween_job"]
    untouched = reroll()  # nothing active yet: the operator's poll refuses
    editor().active_strip = strip
    panel = draw_panel()
    before = hashes(strip)
    bpy.context.scene.frame_current = 12
    frame = reroll()
    after_frame = hashes(strip)
    frame_job = strip["latentween_job"]
    props = bpy.context.scene.latentween
    props.reroll_start, props.reroll_end = 9, 13  # runs over the keyframe A: only generated frames are re-rolled
    ranged = ModalReroll(use_range=True).run()  # as the panel's button runs it in the interface
    return {"made": made, "untouched": untouched, "panel": panel, "before": before, "frame": frame,
            "after_frame": after_frame, "ranged": ranged, "after_range": hashes(strip), "jobs": [first_job, frame_job],
            "strips": results()}
