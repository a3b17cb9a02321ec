"""Scenarios of the editor's loop (issue 20): cancelling, recovering, the daemon's state in the panel,
choosing candidates, URLs and online access, fitting and meta strips. Run by tests/blender/driver.py."""
from __future__ import annotations

import os
import time
from pathlib import Path
from types import SimpleNamespace

import bpy

from blender_support import (ModalStandIn, addon, draw_panel, editor, image, morph, preferences, results,
                             running_long_job, select, settings, strips, two_images_with_gap)


def scenario_cancel_nothing(args) -> dict:
    """A Cancel that names no morph cancels none, however many run."""
    run = running_long_job(args)
    nothing = sorted(bpy.ops.sequencer.latentween_cancel())
    running = [t.job.id for t in addon().task.ACTIVE]
    everything = sorted(bpy.ops.sequencer.latentween_cancel(all=True))
    return {"nothing": nothing, "running": running, "everything": everything, "job": run.task.job.id,
            "active": len(addon().task.ACTIVE)}


def scenario_abandon(args) -> dict:
    """A morph that cannot finish (here its poll fails) stops its daemon job too."""
    run = running_long_job(args)

    def broken():
        raise addon().timeline.MorphError("the output folder went away")

    run.task.job.poll = broken
    outcome = sorted(run.send("TIMER"))
    return {"outcome": outcome, "job": run.task.job.id, "reports": run.reports, "strips": results()}


def scenario_load(args) -> dict:
    """Opening another file ends the running morphs there and then, without touching the new file."""
    other = os.path.join(args.work, "other.blend")
    image("latentween A-B", f"{args.samples}/toy_a.png", 5, 1, 10)  # named as the result would be
    bpy.ops.wm.save_as_mainfile(filepath=other, copy=True)
    strips().remove(strips()["latentween A-B"])
    run = running_long_job(args)
    run.task.strip_name = "latentween A-B"  # as if its first frames were on the timeline
    bpy.ops.wm.open_mainfile(filepath=other)
    active = len(addon().task.ACTIVE)
    run.cancel(bpy.context)  # what Blender calls on a modal operator whose file went away
    bpy.ops.sequencer.latentween_cancel(all=True) if addon().task.ACTIVE else None
    return {"active_after_load": active, "job": run.task.job.id, "strips": [s.name for s in strips()],
            "message": run.task.message}


def scenario_choose(args) -> dict:
    """choose=manual: the panel shows each new frame's candidates and a Keep button under each."""
    two_images_with_gap(args, gap=2)
    settings(mode="GAP", candidates=2, choose=True)
    run = ModalStandIn()
    panels, kept, outcome = [], [], None
    deadline = time.monotonic() + 120
    while outcome is None and time.monotonic() < deadline:
        result = run.send("TIMER")
        if result != {"PASS_THROUGH"}:
            outcome = sorted(result)
        elif run.task.choice is not None:
            frame, files = run.task.choice
            panels.append(draw_panel())
            pick = len(kept) % len(files)
            kept.append([frame, pick, Path(files[pick]).read_bytes().hex()])
            assert bpy.ops.sequencer.latentween_choose(task=run.task.key, candidate=pick) == {"FINISHED"}
        time.sleep(0.05)
    background = morph()  # no interface to choose in
    return {"outcome": outcome, "panels": panels, "kept": kept, "job": run.task.job.id, "strips": results(),
            "background": background}


def scenario_url(args) -> dict:
    """A URL as people type it (no scheme) works; one Blender cannot use is one line."""
    two_images_with_gap(args)
    settings(mode="GAP")
    preferences(url=args.url.split("://", 1)[1])
    plain = morph()
    preferences(url="http://127.0.0.1:notaport")
    bad = morph()
    return {"plain": plain, "bad": bad, "strips": results()}


def scenario_online(args) -> dict:
    """Blender's online access is off in the module: a daemon elsewhere is not asked at all."""
    asked = []

    def record(self, method, path, *rest, **kw):
        asked.append(self.url)
        raise addon().client.Unreachable(f"cannot reach the latentween daemon at {self.url}: refused by the test")

    addon().client.Client._json = record
    two_images_with_gap(args)
    settings(mode="GAP")
    preferences(url="http://192.0.2.7:8642")  # TEST-NET-1, and never contacted: _json is replaced
    return {**morph(), "asked": asked, "online": bpy.app.online_access}


def scenario_scene(args) -> dict:
    """Which scene the add-on edits when a 5.0 workspace shows no sequencer scene."""
    compat = addon().compat
    context = SimpleNamespace(sequencer_scene=None, scene=bpy.context.scene)
    background = compat.scene(context) is not None
    compat.is_background = lambda: False  # as in the interface
    interface = compat.scene(context)
    return {"background": background, "interface": None if interface is None else interface.name}


def scenario_fit(args) -> dict:
    """The result sits where its neighbours do, however they were fitted and moved."""
    a, b = two_images_with_gap(args)
    for strip in (a, b):
        strip.transform.scale_x = strip.transform.scale_y = 2.5
        strip.transform.offset_x, strip.transform.rotation = 40.0, 0.25
        strip.crop.min_x = 3
    settings(mode="GAP")
    outcome = morph()
    made = [s for s in strips() if s.name.startswith("latentween")][0]
    t = made.transform
    return {**outcome, "made": [t.scale_x, t.scale_y, t.offset_x, round(t.rotation, 4), made.crop.min_x]}


def scenario_meta(args) -> dict:
    """Selected strips inside a closed meta strip are not the editor's selection."""
    a, b = two_images_with_gap(args)
    inner = image("Inner", f"{args.samples}/toy_a.png", 3, 1, 30)
    meta = strips().new_meta("Meta", 4, 1)
    meta_strips = meta.strips if hasattr(meta, "strips") else meta.sequences
    inner.move_to_meta(meta) if hasattr(inner, "move_to_meta") else None
    for strip in meta_strips:
        strip.select = True
    select(a, b)
    for strip in meta_strips:
        strip.select = True
    settings(mode="GAP")
    return {**morph(), "strips": results(), "inside": [s.name for s in meta_strips]}


def scenario_health(args) -> dict:
    """The panel asks for a health check when it first draws, through a timer, not in draw()."""
    editor()
    asked = []
    original = addon().client.Client.health

    def counting(self):
        asked.append(self.url)
        return original(self)

    addon().client.Client.health = counting
    first = draw_panel()
    pending, during_draw = addon().health.pending(), list(asked)
    up = addon().health.check()
    return {"first": first, "pending": pending, "asked_in_draw": during_draw, "up": up, "after": draw_panel()}


def scenario_start_stop(args) -> dict:
    """A local daemon that is down: the panel offers Start; Start runs it, Stop ends it."""
    editor()
    preferences(serve_command=args.serve_command, serve_model=args.serve_model)
    health = addon().health
    health.check()
    down = draw_panel()
    started = sorted(bpy.ops.sequencer.latentween_daemon_start())
    deadline = time.monotonic() + 120
    while not health.check() and time.monotonic() < deadline:
        time.sleep(0.5)
    running = draw_panel()
    pid = addon().job.spawned().pid
    stopped = sorted(bpy.ops.sequencer.latentween_daemon_stop())
    return {"down": down, "started": started, "running": running, "stopped": stopped, "pid": pid,
            "exit": addon().job._spawned.returncode, "up_after_stop": health.check()}
