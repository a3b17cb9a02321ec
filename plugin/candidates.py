"""Candidate thumbnails for the panel while a job waits for the editor's choice (`choose=manual`):
Blender's preview collection over the candidate files the task fetched. Loaded from a tick, never from
draw(), which only shows the icons."""
from __future__ import annotations

import bpy
import bpy.utils.previews

_previews = None


def icons(paths) -> list[int]:
    global _previews
    if _previews is None:
        _previews = bpy.utils.previews.new()
    ids = []
    for path in paths:
        key = str(path)
        if key not in _previews:
            _previews.load(key, key, "IMAGE")
        ids.append(_previews[key].icon_id)
    return ids


def clear() -> None:
    global _previews
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None
