"""Runs inside the bpy virtual environment: installs the built extension with Blender's own operator,
builds a scene, runs one scenario and writes what happened as JSON for tests/test_blender.py.

    python driver.py SCENARIO --zip Z --url U --work DIR --result FILE [--movie M] [--samples DIR]

BLENDER_USER_RESOURCES must point at a scratch folder (set before Blender starts), so nothing is
installed into the user's own Blender.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

import bpy

MODULE = "bl_ext.user_default.latentween"
FAST = {"steps": 4, "candidates": 1, "seed": 7}


def install(zip_path: str) -> None:
    result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True)
    assert result == {"FINISHED"}, result


def addon():
    return sys.modules[MODULE]


def editor():
    scene = bpy.context.scene
    return scene.sequence_editor or scene.sequence_editor_create()


def strips():
    ed = editor()
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def image(name: str, path: str, channel: int, start: int, length: int):
    strip = strips().new_image(name, path, channel, start)
    strip.frame_final_duration = length
    return strip


def select(*chosen) -> None:
    for strip in strips():
        strip.select = strip in chosen


def settings(**values) -> None:
    props = bpy.context.scene.latentween
    for key, value in {**FAST, **values}.items():
        setattr(props, key, value)


def preferences(**values) -> None:
    prefs = bpy.context.preferences.addons[MODULE].preferences
    for key, value in values.items():
        setattr(prefs, key, value)


def describe(strip) -> dict:
    folder = Path(bpy.path.abspath(strip.directory))
    return {"name": strip.name, "channel": strip.channel, "start": int(strip.frame_final_start),
            "length": int(strip.frame_final_duration), "folder": str(folder.resolve()),
            "directory": strip.directory, "files": [e.filename for e in strip.elements]}


def results() -> list[dict]:
    return [describe(s) for s in strips() if s.name.startswith("latentween")]


def morph(**options) -> dict:
    """The operator as a script on a render farm calls it; its error, if any, is what Blender raised."""
    try:
        outcome = bpy.ops.sequencer.latentween_morph(**options)
        return {"outcome": sorted(outcome), "error": None}
    except RuntimeError as exc:
        return {"outcome": ["CANCELLED"], "error": str(exc)}


class ModalStandIn:
    """The modal operator's own methods on a stand-in `self`: timers never fire in the bpy module,
    so the test sends the TIMER and ESC events the window manager would."""

    def __init__(self):
        op = addon().operators.SEQUENCER_OT_latentween_morph
        self.modal, self._show, self._end = (f.__get__(self) for f in (op.modal, op._show, op._end))
        self.task = addon().task.start(bpy.context)
        self._timer = None
        self.reports = []

    def report(self, level, message) -> None:
        self.reports.append([sorted(level)[0], message])

    def send(self, kind: str) -> set:
        return self.modal(bpy.context, SimpleNamespace(type=kind, value="PRESS", timer=None))


class Recorder:
    """A UILayout stand-in that logs every call: panels draw only with a window region."""

    def __init__(self, log: list):
        object.__setattr__(self, "log", log)

    def __getattr__(self, name):
        def call(*args, **kwargs):
            plain = [a for a in args if isinstance(a, (str, int, float))]
            self.log.append([name, plain, {k: v for k, v in kwargs.items() if isinstance(v, (str, int, float))}])
            return Recorder(self.log)
        return call

    def __setattr__(self, name, value):
        self.log.append(["set", name, value if isinstance(value, (str, int, float, bool)) else str(value)])


def draw_panel() -> list:
    panel_class = addon().panels.SEQUENCER_PT_latentween
    log = []
    stand_in = type("PanelStandIn", (), {"draw": panel_class.draw, "_daemon": panel_class.__dict__["_daemon"]})()
    stand_in.layout = Recorder(log)
    stand_in.draw(bpy.context)
    return log


# -- scenarios -------------------------------------------------------------------------------------

def scenario_install(args) -> dict:
    module = addon()
    return {"enabled": MODULE in bpy.context.preferences.addons, "default_url": args.default_url,
            "operator": hasattr(bpy.types, "SEQUENCER_OT_latentween_morph"),
            "panel": hasattr(bpy.types, "SEQUENCER_PT_latentween"),
            "client": Path(module.client.__file__).read_text(), "blender": bpy.app.version_string}


def scenario_panel(args) -> dict:
    """What the sidebar tab lays out before and after a daemon check, in both modes."""
    editor()
    before = draw_panel()
    checked = sorted(bpy.ops.sequencer.latentween_check())
    settings(mode="CUT")
    after = draw_panel()
    return {"before": before, "checked": checked, "after": after}


def two_images_with_gap(args, gap: int = 5):
    a = image("A", f"{args.samples}/toy_a.png", 1, 1, 10)
    b = image("B", f"{args.samples}/toy_b.png", 1, 11 + gap, 10)
    select(a, b)
    return a, b


def scenario_gap(args) -> dict:
    two_images_with_gap(args)
    settings(mode="GAP")
    return {**morph(), "strips": results()}


def scenario_cut(args) -> dict:
    a = image("A", f"{args.samples}/toy_a.png", 1, 1, 12)
    b = image("B", f"{args.samples}/toy_b.png", 1, 13, 12)
    image("Title", f"{args.samples}/toy_a.png", 2, 11, 4)  # channel 2 is busy over the cut
    select(a, b)
    settings(mode="CUT", frames=6)
    return {**morph(), "strips": results()}


def scenario_reroll(args) -> dict:
    two_images_with_gap(args)
    settings(mode="GAP")
    first = morph()
    seeds = [bpy.context.scene.latentween.seed]
    second = morph(reroll=True)
    seeds.append(bpy.context.scene.latentween.seed)
    return {"outcomes": [first, second], "seeds": seeds, "strips": results()}


def scenario_down(args) -> dict:
    two_images_with_gap(args)
    settings(mode="GAP")
    return {**morph(), "strips": results(), "output_exists": (Path(args.work) / "latentween").exists()}


def scenario_ticks(args) -> dict:
    """The modal path: TIMER events until done, recording what the timeline showed at each."""
    two_images_with_gap(args, gap=7)
    settings(mode="GAP", steps=int(args.steps))
    run = ModalStandIn()
    seen, outcome = [], None
    deadline = time.monotonic() + 120
    while outcome is None and time.monotonic() < deadline:
        result = run.send("TIMER")
        job = run.task.job.job or {}
        seen.append({"state": job.get("state"), "fetched": len(run.task.job.fetched),
                     "strip": bool(results()), "message": run.task.message})
        if result != {"PASS_THROUGH"}:
            outcome = sorted(result)
        time.sleep(0.05)
    return {"outcome": outcome, "seen": seen, "reports": run.reports, "strips": results(), "job": run.task.job.id}


def running_long_job(args) -> ModalStandIn:
    two_images_with_gap(args, gap=15)
    settings(mode="GAP", steps=400)  # seconds of work: time to act while it runs
    run = ModalStandIn()
    deadline = time.monotonic() + 120
    while (run.task.job.job or {}).get("state") != "running" and time.monotonic() < deadline:
        run.send("TIMER")
        time.sleep(0.05)
    return run


def scenario_escape(args) -> dict:
    run = running_long_job(args)
    before, panel = run.task.job.job["state"], draw_panel()
    outcome = sorted(run.send("ESC"))
    return {"outcome": outcome, "before": before, "panel": panel, "job": run.task.job.id, "reports": run.reports,
            "strips": results(), "folder_exists": run.task.job.folder.exists(), "after_panel": draw_panel()}


def scenario_cancel_button(args) -> dict:
    run = running_long_job(args)
    before = run.task.job.job["state"]
    pressed = sorted(bpy.ops.sequencer.latentween_cancel(job=run.task.job.id))
    outcome = sorted(run.send("TIMER"))
    return {"pressed": pressed, "outcome": outcome, "before": before, "job": run.task.job.id,
            "reports": run.reports, "strips": results()}


def movie_then_image(args):
    """A movie hard-split and moved (so its frames carry an animation offset), cut to an image."""
    movie = strips().new_movie("Movie", args.movie, 1, 1)
    right = movie.split(frame=11, split_method="HARD")
    strips().remove(movie)
    right.frame_start = 21          # shows movie frames 10..29 at timeline frames 21..40
    b = image("B", f"{args.samples}/toy_b.png", 1, 41, 10)
    select(right, b)
    settings(mode="CUT", frames=6)  # starts at 38: movie frame 38 - 21 + 10 = 27
    return right, b


def scenario_movie(args) -> dict:
    movie_then_image(args)
    preferences(send_paths=bool(args.send_paths))
    return {**morph(), "strips": results()}


def scenario_spawn(args) -> dict:
    """Nothing answers at the URL: the add-on starts `latentween serve` there and uses it."""
    two_images_with_gap(args)
    settings(mode="GAP")
    preferences(start_daemon=True, serve_command=args.serve_command, serve_model=args.serve_model)
    outcome = morph()
    process = addon().job._spawned
    return {**outcome, "strips": results(), "pid": process.pid if process else None}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    parser.add_argument("--zip", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--result", required=True)
    parser.add_argument("--samples", default=str(Path(__file__).resolve().parents[2] / "samples"))
    parser.add_argument("--movie")
    parser.add_argument("--steps", default="4")
    parser.add_argument("--send-paths", action="store_true")
    parser.add_argument("--serve-command", default="")
    parser.add_argument("--serve-model", default="")
    args = parser.parse_args()
    install(args.zip)
    args.default_url = bpy.context.preferences.addons[MODULE].preferences.url
    preferences(url=args.url)
    bpy.ops.wm.save_as_mainfile(filepath=os.path.join(args.work, "edit.blend"))
    try:
        result = globals()[f"scenario_{args.scenario}"](args)
    except Exception:
        result = {"exception": traceback.format_exc()}
    Path(args.result).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
