"""Reading keyframes from strips and putting the result on the timeline: the `bpy` side of timeline.py."""
from __future__ import annotations

import os
import re
from pathlib import Path

import bpy

from . import compat
from .timeline import MorphError, Span, movie_frame

KINDS = ("IMAGE", "MOVIE")


def span(strip) -> Span:
    return Span(strip.name, strip.channel, int(strip.frame_final_start), int(strip.frame_final_end))


def pair(context) -> tuple:
    """The two selected image or movie strips, the earlier first."""
    chosen = compat.selected(context)
    if len(chosen) != 2:
        raise MorphError(f"select two image or movie strips ({len(chosen)} selected)")
    for strip in chosen:
        if strip.type not in KINDS:
            raise MorphError(f"'{strip.name}' is a {strip.type.lower()} strip; keyframes come from image or movie strips")
    return tuple(sorted(chosen, key=lambda s: (s.frame_final_start, s.channel)))


def occupied(ed) -> list[Span]:
    return [span(s) for s in compat.strips(ed)]


def source_file(strip) -> str:
    return os.path.normpath(bpy.path.abspath(strip.filepath if strip.type == "MOVIE" else strip.directory))


def keyframe_path(strip, at: int) -> str:
    """The daemon's name for what the strip shows at frame `at`: a file, or `movie@index`."""
    if strip.type == "IMAGE":
        element = strip.strip_elem_from_frame(at)
        if element is None:
            raise MorphError(f"'{strip.name}' shows nothing at frame {at}")
        return os.path.join(source_file(strip), element.filename)
    _check_plain(strip)
    return f"{source_file(strip)}@{movie_frame(at, int(strip.frame_start), strip.animation_offset_start)}"


def keyframe_file(strip, at: int, folder: str) -> str:
    """A file holding what the strip shows at `at`, for an upload: an image strip's own file, or
    the movie's frame rendered by Blender (so any format Blender plays works)."""
    if strip.type == "IMAGE":
        return keyframe_path(strip, at)
    _check_plain(strip)
    index = movie_frame(at, int(strip.frame_start), strip.animation_offset_start)
    target = os.path.join(folder, f"{_safe(strip.name)}-{index}.png")
    _render_movie_frame(strip, index, target)
    return target


def _check_plain(strip) -> None:
    # the frame index arithmetic (and the daemon's path@frame) knows offsets, not speed changes
    if len(getattr(strip, "retiming_keys", ())) > 2 or strip.use_reverse_frames or strip.strobe > 1.0:
        raise MorphError(f"'{strip.name}' is retimed, reversed or strobed; latentween reads plain movie strips")


def _render_movie_frame(strip, index: int, target: str) -> None:
    """Render frame `index` of the strip's movie alone, in a scratch scene with a neutral view."""
    element = strip.elements[0] if len(strip.elements) else None
    width, height = (element.orig_width, element.orig_height) if element else (0, 0)
    if not (width and height):
        raise MorphError(f"Blender cannot read the movie of '{strip.name}' ({source_file(strip)})")
    scratch = bpy.data.scenes.new("latentween keyframe")
    try:
        render = scratch.render
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.image_settings.file_format = "PNG"
        render.image_settings.color_mode = "RGB"
        render.filepath = target
        # Standard view: the PNG holds the movie's own pixel values, not a graded look
        scratch.view_settings.view_transform = "Standard"
        scratch.view_settings.look = "None"
        scratch.view_settings.exposure, scratch.view_settings.gamma = 0.0, 1.0
        scratch.frame_start = scratch.frame_end = scratch.frame_current = 1
        ed = scratch.sequence_editor_create()
        copy = compat.strips(ed).new_movie("keyframe", source_file(strip), 1, 1 - index, fit_method="ORIGINAL")
        copy.colorspace_settings.name = strip.colorspace_settings.name
        copy.stream_index = strip.stream_index
        result = bpy.ops.render.render(write_still=True, scene=scratch.name)
    finally:
        bpy.data.scenes.remove(scratch)
    if "FINISHED" not in result or not os.path.isfile(target):
        raise MorphError(f"Blender could not render frame {index} of '{strip.name}'")


def output_root(folder: str) -> Path:
    if folder.startswith("//") and not bpy.data.filepath:
        raise MorphError("save the blend file first, or set an absolute output folder in the panel")
    return Path(bpy.path.abspath(folder)).resolve()


def job_name(a, b) -> str:
    return f"{_safe(a.name)}-{_safe(b.name)}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")[:40] or "strip"


def find_strip(scene_name: str, strip_name: str):
    scene = bpy.data.scenes.get(scene_name)
    if scene is None or scene.sequence_editor is None or not strip_name:
        return None
    return compat.strips(scene.sequence_editor).get(strip_name)


def add_frames(scene_name: str, name: str, folder: Path, files: list[str], channel: int, start: int):
    """An image-sequence strip of `files`; the folder is kept relative to the blend file when it can be."""
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        raise MorphError(f"the scene '{scene_name}' is gone")
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    strip = compat.strips(scene.sequence_editor).new_image(
        name, str(folder / files[0]), channel, start, fit_method="ORIGINAL")
    for file in files[1:]:
        strip.elements.append(file)
    strip.select = False  # the two source strips stay the selection, so Re-roll works on them again
    if bpy.data.filepath:
        try:
            strip.directory = bpy.path.relpath(str(folder)) + "/"
        except ValueError:  # another drive on Windows: keep it absolute
            pass
    if strip.channel != channel or int(strip.frame_final_start) != start:
        moved = (strip.channel, int(strip.frame_final_start))
        compat.strips(scene.sequence_editor).remove(strip)
        raise MorphError(f"Blender put the new strip on channel {moved[0]} at frame {moved[1]}, "
                         f"not on channel {channel} at frame {start}")
    return strip


def refresh(strip) -> None:
    """The files changed on disk: drop the cached images so the preview shows the new ones."""
    strip.invalidate_cache("RAW")


def remove(scene_name: str, strip_name: str) -> None:
    strip = find_strip(scene_name, strip_name)
    if strip is not None:
        compat.strips(bpy.data.scenes[scene_name].sequence_editor).remove(strip)
