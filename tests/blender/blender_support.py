"""What tests/blender/driver.py and its scenarios share: the installed add-on, a scene of strips, the
operator called as a script would, the modal operator and the panel on stand-ins. Runs in the bpy venv."""
from __future__ import annotations

import sys
import time
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
            "directory": strip.directory, "files": [e.filename for e in strip.elements],
            "recorded": {k: strip.get(k) for k in ("latentween_job", "latentween_settings", "latentween_takes")}}


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
    so the test sends the TIMER and key events the window manager would."""

    def __init__(self):
        op = addon().operators.SEQUENCER_OT_latentween_morph
        self.modal, self._end, self._stop_timer, self.cancel = (
            f.__get__(self) for f in (op.modal, op._end, op._stop_timer, op.cancel))
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
    methods = {name: panel_class.__dict__[name] for name in ("draw", "_daemon", "_candidates", "_reroll")}
    stand_in = type("PanelStandIn", (), methods)()
    stand_in.layout = Recorder(log)
    stand_in.draw(bpy.context)
    return log


def two_images_with_gap(args, gap: int = 5):
    a = image("A", f"{args.samples}/toy_a.png", 1, 1, 10)
    b = image("B", f"{args.samples}/toy_b.png", 1, 11 + gap, 10)
    select(a, b)
    return a, b


def running_long_job(args) -> ModalStandIn:
    two_images_with_gap(args, gap=15)
    settings(mode="GAP", steps=400)  # seconds of work: time to act while it runs
    run = ModalStandIn()
    deadline = time.monotonic() + 120
    while (run.task.job.job or {}).get("state") != "running" and time.monotonic() < deadline:
        run.send("TIMER")
        time.sleep(0.05)
    return run
