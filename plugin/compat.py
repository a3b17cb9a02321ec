"""The VSE API differences between Blender 4.2 LTS and 5.0, in one place.

- 4.4 renamed `sequences`/`sequences_all`/`selected_sequences` to `strips`/`strips_all`/
  `selected_strips`; 4.4 has both names, 5.0 only the new ones.
- 5.0 lets a workspace's sequencer show a scene other than the active one: `context.sequencer_scene`,
  None when the workspace shows none. Only background mode (no workspace at all) falls back to
  `context.scene`; in the interface that would morph strips of a scene the editor is not looking at.
- In background mode the context has no selection members at all (they are None), so selection is
  read from the strips' own `select` flags.
- Inside a meta strip being edited (`meta_stack`), what the editor sees and where new strips go is the
  meta's own strips, not the top level; `strips_all` would mix both.
- `bpy.app.online_access` is new in 4.2; before it, extensions had no such switch.

Strip kinds are compared by `strip.type` ('IMAGE', 'MOVIE'), which never changed, rather than by the
Python type names (ImageSequence in 4.2, ImageStrip from 4.4).
"""
from __future__ import annotations

import bpy


def scene(context):
    """The scene the sequencer edits, or None where the workspace shows none (5.0)."""
    if not hasattr(context, "sequencer_scene") or is_background():
        return getattr(context, "sequencer_scene", None) or context.scene
    return context.sequencer_scene


def editor(context, create: bool = False):
    sc = scene(context)
    if sc is None:
        return None
    if sc.sequence_editor is None and create:
        sc.sequence_editor_create()
    return sc.sequence_editor


def strips(ed):
    """The top-level strips collection, which has new_image/new_movie/remove."""
    return ed.strips if hasattr(ed, "strips") else ed.sequences


def all_strips(ed):
    """Every strip, inside meta strips too."""
    return ed.strips_all if hasattr(ed, "strips_all") else ed.sequences_all


def container(ed):
    """The strips the editor sees: those of the meta strip being edited, else the top level."""
    stack = getattr(ed, "meta_stack", None)
    if stack:
        meta = stack[-1]
        return meta.strips if hasattr(meta, "strips") else meta.sequences
    return strips(ed)


def selected(context) -> list:
    """Selected strips of the level the editor sees (not those inside closed metas)."""
    ed = editor(context)
    if ed is None:
        return []
    visible = list(container(ed))
    selection = getattr(context, "selected_strips", None)
    if selection is None:
        selection = getattr(context, "selected_sequences", None)
    if selection is None:
        return [s for s in visible if s.select]
    names = {s.name for s in visible}
    return [s for s in selection if s.name in names]


def online_access() -> bool:
    return bool(getattr(bpy.app, "online_access", True))


def redraw_sequencer(context) -> None:
    """Panels and previews show new values only when their areas redraw."""
    screen = getattr(context, "screen", None)
    if screen is None:
        return
    for area in screen.areas:
        if area.type == "SEQUENCE_EDITOR":
            area.tag_redraw()


def is_background() -> bool:
    return bool(bpy.app.background)
