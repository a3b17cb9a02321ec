"""Latentween for Blender's Video Sequence Editor: in-between frames for two strips, made by the
latentween daemon (`latentween serve`). Standard library only; no threads (see task.py)."""
import bpy

from . import operators, panels, preferences, properties

classes = (
    properties.LATENTWEEN_PG_settings,
    properties.LATENTWEEN_PG_daemon,
    preferences.LATENTWEEN_AP_preferences,
    operators.SEQUENCER_OT_latentween_morph,
    operators.SEQUENCER_OT_latentween_cancel,
    operators.SEQUENCER_OT_latentween_check,
    panels.SEQUENCER_PT_latentween,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    bpy.types.Scene.latentween = bpy.props.PointerProperty(type=properties.LATENTWEEN_PG_settings)
    bpy.types.WindowManager.latentween_daemon = bpy.props.PointerProperty(type=properties.LATENTWEEN_PG_daemon)


def unregister():
    del bpy.types.WindowManager.latentween_daemon
    del bpy.types.Scene.latentween
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
