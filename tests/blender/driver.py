"""Runs inside the bpy virtual environment: installs the built extension with Blender's own operator,
builds a scene, runs one scenario and writes what happened as JSON for tests/test_blender.py.

    python driver.py SCENARIO --zip Z --url U --work DIR --result FILE [--movie M] [--rate-movie M] [--samples DIR]

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

import bpy

import editor_loop
import reroll_loop
from blender_support import (MODULE, ModalStandIn, addon, draw_panel, editor, image, install, morph, preferences,
                             results, running_long_job, select, settings, strips, two_images_with_gap)


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


def scenario_escape(args) -> dict:
    """Esc stops playback in Blender: the job goes on, and the panel's Cancel button stops it."""
    run = running_long_job(args)
    before, panel = run.task.job.job["state"], draw_panel()
    outcome = sorted(run.send("ESC"))
    after_escape = addon().client.Client(args.url).job(run.task.job.id)["state"]
    pressed = sorted(bpy.ops.sequencer.latentween_cancel(task=run.task.key))
    ended = sorted(run.send("TIMER"))
    return {"outcome": outcome, "before": before, "after_escape": after_escape, "pressed": pressed,
            "ended": ended, "panel": panel, "job": run.task.job.id, "key": run.task.key, "reports": run.reports,
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


def movie_added_by_hand(path: str, channel: int, start: int):
    """The strip Add > Movie makes: it plays the movie at the movie's own rate in a scene of another
    (Adjust Playback Rate, on by default), where `new_movie` plays one movie frame per timeline frame."""
    window = bpy.context.window_manager.windows[0]
    if hasattr(window.workspace, "sequencer_scene"):  # 5.0 adds to the scene the workspace's sequencer shows
        window.workspace.sequencer_scene = bpy.context.scene
    area = window.screen.areas[0]
    area.type = "SEQUENCE_EDITOR"
    # the operator's poll wants a sequencer area; a region in the override crashes bpy 5.0.1
    with bpy.context.temp_override(window=window, area=area):
        done = bpy.ops.sequencer.movie_strip_add(filepath=path, channel=channel, frame_start=start, sound=False,
                                                 use_framerate=False)  # the scene keeps its own rate
    assert done == {"FINISHED"}, done
    return next(s for s in strips() if s.type == "MOVIE" and s.channel == channel)


def rendered(frame: int, target: Path) -> str:
    """The scene at `frame` as a PNG of the movie's own pixel values: which movie frame Blender shows."""
    scene = bpy.context.scene
    render = scene.render
    render.resolution_x = render.resolution_y = 64
    render.resolution_percentage = 100
    render.image_settings.file_format, render.image_settings.color_mode = "PNG", "RGB"
    render.filepath = str(target)
    scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
    scene.frame_current = frame
    assert bpy.ops.render.render(write_still=True) == {"FINISHED"}
    return str(target)


def scenario_movie_rate(args) -> dict:
    """A 12 fps movie added by hand to a 24 fps scene shows each movie frame for two timeline frames;
    split, moved and trimmed, then cut to an image."""
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    movie = movie_added_by_hand(args.rate_movie, 1, 1)
    right = movie.split(frame=11, split_method="HARD")  # the offset counts movie frames: 10 / 2 = 5
    strips().remove(movie)
    right.frame_start = 21
    right.frame_final_end = 31      # shows movie frames 5..9 at timeline frames 21..30
    b = image("B", f"{args.samples}/toy_b.png", 1, 31, 10)
    select(right, b)
    settings(mode="CUT", frames=4)  # starts at 29: movie frame (29 - 21) / 2 + 5 = 9
    preferences(send_paths=bool(args.send_paths))
    # before the result covers frame 29; the playhead stays there, as an editor's would
    shown = rendered(29, Path(args.work) / "shown-29.png")
    return {**morph(), "strips": results(), "offset": right.animation_offset_start, "shown": shown}


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
    parser.add_argument("--rate-movie")
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
        name = f"scenario_{args.scenario}"
        result = (globals().get(name) or getattr(editor_loop, name, None) or getattr(reroll_loop, name))(args)
    except Exception:
        result = {"exception": traceback.format_exc()}
    Path(args.result).write_text(json.dumps(result, indent=1))
    # bpy 4.2.23 crashes in its exit teardown (SIGSEGV) once any add-on registered a PropertyGroup,
    # after everything here is done: leave without the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
