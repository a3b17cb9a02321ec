"""Reading keyframes from strips and putting the result on the timeline: the `bpy` side of timeline.py."""
from __future__ import annotations

import json
import math
import os
import re
import struct
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


def occupied(level) -> list[Span]:
    """Spans of the strips at one level: the top level or a meta strip's own strips."""
    return [span(s) for s in level]


def level_name(ed) -> str:
    """The meta strip the editor is inside, "" at the top level."""
    stack = getattr(ed, "meta_stack", None)
    return stack[-1].name if stack else ""


def _level(ed, meta: str):
    if not meta:
        return compat.strips(ed)
    strip = compat.all_strips(ed).get(meta)
    if strip is None:
        raise MorphError(f"the meta strip '{meta}' is gone")
    return strip.strips if hasattr(strip, "strips") else strip.sequences


def source_file(strip) -> str:
    return os.path.normpath(bpy.path.abspath(strip.filepath if strip.type == "MOVIE" else strip.directory))


def keyframe_path(strip, at: int) -> str:
    """The daemon's name for what the strip shows at frame `at`: a file, or `movie@index`."""
    if strip.type == "IMAGE":
        element = strip.strip_elem_from_frame(at)
        if element is None:
            raise MorphError(f"'{strip.name}' shows nothing at frame {at}")
        return os.path.join(source_file(strip), element.filename)
    return f"{source_file(strip)}@{_movie_frame(strip, at)}"


def keyframe_file(strip, at: int, folder: str) -> str:
    """A file holding what the strip shows at `at`, for an upload: an image strip's own file, or
    the movie's frame rendered by Blender (so any format Blender plays works)."""
    if strip.type == "IMAGE":
        return keyframe_path(strip, at)
    index = _movie_frame(strip, at)
    target = os.path.join(folder, f"{_safe(strip.name)}-{index}.png")
    _render_movie_frame(strip, index, target)
    return target


def _movie_frame(strip, at: int) -> int:
    _check_plain(strip)
    rate, held = _playback(strip)
    return movie_frame(at, strip.frame_start, strip.animation_offset_start, rate, held)


def _playback(strip) -> tuple[float, int]:
    """Movie frames per timeline frame, and how many movie frames the strip holds (0: not needed).

    Add > Movie plays a movie at its own speed in a scene of another rate (Blender steps the movie
    by its fps over the scene's), `new_movie` from a script one movie frame per timeline frame; the
    flag that tells them apart is not in the Python API, but the strip's length on the timeline is."""
    render = strip.id_data.render
    scene_fps, media_fps = render.fps / render.fps_base, strip.fps
    if not media_fps or math.isclose(media_fps, scene_fps, rel_tol=1e-6):
        return 1.0, 0
    held = _movie_length(strip) - strip.animation_offset_start - strip.animation_offset_end
    if held < 1:
        raise MorphError(f"Blender cannot read the movie of '{strip.name}' ({source_file(strip)})")
    on_timeline = round(strip.frame_final_end + strip.frame_offset_end - strip.frame_start)
    return (1.0 if on_timeline == held else media_fps / scene_fps), held


def _movie_length(strip) -> int:
    """Frames in the strip's whole movie, counted as the sequencer counts them.

    The strip's own frame_duration cannot say (4.2 counts it in movie frames, 4.4 and later in
    timeline frames); a scratch `new_movie` strip plays one movie frame per timeline frame, so its
    length is the count in every version."""
    scratch = bpy.data.scenes.new("latentween probe")
    try:
        probe = compat.strips(scratch.sequence_editor_create()).new_movie("probe", source_file(strip), 1, 1)
        return int(probe.frame_duration)
    finally:
        bpy.data.scenes.remove(scratch)


def _check_plain(strip) -> None:
    # the frame index arithmetic (and the daemon's path@frame) knows offsets and rates, not retiming
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
        # render.render(scene=...) alone renders at the frame of the context's scene, wherever the
        # editor's playhead is: with the scratch scene as the context it renders the scratch's frame 1
        with bpy.context.temp_override(scene=scratch):
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
    return compat.all_strips(scene.sequence_editor).get(strip_name)  # names are unique across metas


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's header; (0, 0) when it is no PNG."""
    with open(path, "rb") as file:
        head = file.read(24)
    return struct.unpack(">II", head[16:24]) if head[:8] == b"\x89PNG\r\n\x1a\n" else (0, 0)


def _fit_like(strip, neighbour, folder: Path, first: str) -> None:
    """Frames the size of the neighbour's media get its transform and crop, so the in-betweens sit
    exactly where the keyframes do, however the neighbour was fitted or moved."""
    elements = getattr(neighbour, "elements", None)
    element = elements[0] if elements is not None and len(elements) else None
    if element is None or (element.orig_width, element.orig_height) != png_size(folder / first):
        return
    for name in ("offset_x", "offset_y", "scale_x", "scale_y", "rotation", "origin", "filter"):
        if hasattr(neighbour.transform, name):
            setattr(strip.transform, name, getattr(neighbour.transform, name))
    for name in ("min_x", "max_x", "min_y", "max_y"):
        setattr(strip.crop, name, getattr(neighbour.crop, name))
    for name in ("use_flip_x", "use_flip_y"):
        setattr(strip, name, getattr(neighbour, name))


def add_frames(scene_name: str, meta: str, name: str, folder: Path, files: list[str], channel: int, start: int,
               like: str = ""):
    """An image-sequence strip of `files` at the level `meta` ("" the top level), fitted as the strip
    named `like`; the folder is kept relative to the blend file when it can be."""
    scene = bpy.data.scenes.get(scene_name)
    if scene is None:
        raise MorphError(f"the scene '{scene_name}' is gone")
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    level = _level(scene.sequence_editor, meta)
    # Blender's own choice for new strips (Scale to Fit unless the editor changed it), not ORIGINAL
    tool = getattr(scene.tool_settings, "sequencer_tool_settings", None)
    strip = level.new_image(name, str(folder / files[0]), channel, start,
                            fit_method=getattr(tool, "fit_method", "FIT"))
    for file in files[1:]:
        strip.elements.append(file)
    strip.select = False  # the two source strips stay the selection, so Re-roll works on them again
    neighbour = compat.all_strips(scene.sequence_editor).get(like) if like else None
    if neighbour is not None:
        _fit_like(strip, neighbour, folder, files[0])
    if bpy.data.filepath:
        try:
            strip.directory = bpy.path.relpath(str(folder)) + "/"
        except ValueError:  # another drive on Windows: keep it absolute
            pass
    if strip.channel != channel or int(strip.frame_final_start) != start:
        moved = (strip.channel, int(strip.frame_final_start))
        level.remove(strip)
        raise MorphError(f"Blender put the new strip on channel {moved[0]} at frame {moved[1]}, "
                         f"not on channel {channel} at frame {start}")
    return strip


def record(strip, job_id: str, settings: dict) -> None:
    """The job's id and its settings as the daemon ran them (the seed fixed), saved with the strip,
    so a result can be made again or traced to its job later."""
    strip["latentween_job"] = job_id
    strip["latentween_settings"] = json.dumps(settings, sort_keys=True)
    # frame -> take its file holds (re-roll); frames not named hold take 0
    strip["latentween_takes"] = json.dumps(settings.get("takes") or {}, sort_keys=True)


def recorded_settings(strip) -> dict:
    try:
        return json.loads(strip.get("latentween_settings") or "{}")
    except ValueError:
        return {}


def strip_folder(strip) -> Path:
    return Path(bpy.path.abspath(strip.directory)).resolve()


def refresh(strip) -> None:
    """The files changed on disk: drop the cached images so the preview shows the new ones."""
    strip.invalidate_cache("RAW")


def remove(scene_name: str, meta: str, strip_name: str) -> None:
    strip = find_strip(scene_name, strip_name)
    if strip is not None:
        try:
            _level(bpy.data.scenes[scene_name].sequence_editor, meta).remove(strip)
        except MorphError:
            pass  # its meta strip went away, and the strip with it
