"""The Latentween tab in the Sequencer's sidebar. Drawing only lays out what is already known:
no request to the daemon is ever made from draw()."""
from __future__ import annotations

import bpy

from . import compat, task


class SEQUENCER_PT_latentween(bpy.types.Panel):
    bl_idname = "SEQUENCER_PT_latentween"
    bl_label = "Latentween"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Latentween"

    @classmethod
    def poll(cls, context):
        return compat.scene(context) is not None

    def draw(self, context):
        layout = self.layout
        props = compat.scene(context).latentween
        self._daemon(layout.box(), context.window_manager.latentween_daemon)

        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        col.prop(props, "prompt")
        col.prop(props, "negative")
        layout.row().prop(props, "mode", expand=True)
        col = layout.column()
        col.use_property_split = True
        col.use_property_decorate = False
        if props.mode == "CUT":
            col.prop(props, "frames")
        col.prop(props, "ease")
        col.prop(props, "candidates")
        col.prop(props, "seed")
        col.prop(props, "pose")
        col.prop(props, "invert_steps")
        col.prop(props, "steps")
        sub = col.column(align=True)
        sub.prop(props, "min_noise", text="Noise Min")
        sub.prop(props, "max_noise", text="Max")
        col.prop(props, "output_dir")

        row = layout.row(align=True)
        row.scale_y = 1.4
        row.operator("sequencer.latentween_morph", text="Morph", icon="SEQ_STRIP_DUPLICATE")
        row.operator("sequencer.latentween_morph", text="Re-roll", icon="FILE_REFRESH").reroll = True
        for run in task.ACTIVE:
            row = layout.row(align=True)
            row.progress(factor=run.fraction, text=f"{run.name}: {run.message}")
            row.operator("sequencer.latentween_cancel", text="", icon="CANCEL").job = run.job.id or ""
        if len(task.ACTIVE) > 1:
            layout.operator("sequencer.latentween_cancel", text="Cancel All", icon="CANCEL")

    @staticmethod
    def _daemon(box, state) -> None:
        row = box.row()
        if not state.checked:
            row.label(text="Daemon: not checked yet", icon="QUESTION")
        elif state.reachable:
            row.label(text=f"Daemon: {state.device}, queue {state.queue}", icon="CHECKMARK")
        else:
            row.label(text="Daemon: not reachable", icon="ERROR")
        row.operator("sequencer.latentween_check", text="", icon="FILE_REFRESH")
        if state.checked and state.reachable:
            box.label(text=f"Model: {state.model}")
        elif state.message:
            box.label(text=state.message)
