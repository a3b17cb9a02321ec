"""Latentween for Blender's Video Sequence Editor: in-between frames for two strips, made by the
latentween daemon (`latentween serve`). Standard library only; no threads (see task.py)."""
import bpy

from . import candidates, operators, panels, preferences, properties, task

classes = (
    properties.LATENTWEEN_PG_settings,
    properties.LATENTWEEN_PG_daemon,
    preferences.LATENTWEEN_AP_preferences,
    operators.SEQUENCER_OT_latentween_morph,
    operators.SEQUENCER_OT_latentween_reroll,
    operators.SEQUENCER_OT_latentween_cancel,
    operators.SEQUENCER_OT_latentween_choose,
    operators.SEQUENCER_OT_latentween_check,
    operators.SEQUENCER_OT_latentween_daemon_start,
    operators.SEQUENCER_OT_latentween_daemon_stop,
    panels.SEQUENCER_PT_latentween,
)


@bpy.app.handlers.persistent
def _before_load(*_args):
    # The tasks belong to the file being closed: their strips' names mean nothing in the next one.
    task.forget_all()


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latentween = bpy.props.PointerProperty(type=properties.LATENTWEEN_PG_settings)
    bpy.types.WindowManager.latentween_daemon = bpy.props.PointerProperty(type=properties.LATENTWEEN_PG_daemon)
    bpy.app.handlers.load_pre.append(_before_load)


def unregister():
    if _before_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_before_load)
    candidates.clear()
    del bpy.types.WindowManager.latentween_daemon
    del bpy.types.Scene.latentween
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
