"""The VSE API differences between Blender 4.2 LTS and 5.0, in one place.

- 4.4 renamed `sequences`/`sequences_all`/`selected_sequences` to `strips`/`strips_all`/
  `selected_strips`; 4.4 has both names, 5.0 only the new ones.
- 5.0 lets a workspace's sequencer show a scene other than the active one: `context.sequencer_scene`.
- In background mode the context has no selection members at all (they are None), so selection is
  read from the strips' own `select` flags.
- A window's status bar exists only with a window; background runs have none.

Strip kinds are compared by `strip.type` ('IMAGE', 'MOVIE'), which never changed, rather than by the
Python type names (ImageSequence in 4.2, ImageStrip from 4.4).
"""
from __future__ import annotations

import bpy


def scene(context):
    """The scene the sequencer edits."""
    return getattr(context, "sequencer_scene", None) or context.scene


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


def selected(context) -> list:
    selection = getattr(context, "selected_strips", None)
    if selection is None:
        selection = getattr(context, "selected_sequences", None)
    if selection is None:
        ed = editor(context)
        selection = [s for s in all_strips(ed) if s.select] if ed is not None else []
    return list(selection)


def status_text(context, text) -> None:
    """Text in the status bar, or None to give it back; nothing without a window."""
    workspace = getattr(context, "workspace", None)
    if workspace is not None and context.window is not None:
        workspace.status_text_set(text)


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
