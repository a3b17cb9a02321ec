"""The Latentween tab in the Sequencer's sidebar. Drawing only lays out what is already known:
no request to the daemon is ever made from draw()."""
from __future__ import annotations

import bpy

from . import compat, health, job, preferences, reroll, task


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
        state = context.window_manager.latentween_daemon
        if not state.checked and not health.pending():
            health.schedule()  # a timer asks; draw() itself makes no request
        self._daemon(layout.box(), state, preferences.get(context).url)

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
        col.prop(props, "choose")
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
        self._reroll(layout.box(), context, props)
        for run in task.ACTIVE:
            row = layout.row(align=True)
            row.progress(factor=run.fraction, text=f"{run.name}: {run.message}")
            row.operator("sequencer.latentween_cancel", text="", icon="CANCEL").task = run.key
            if run.choice is not None:
                self._candidates(layout.box(), run)
        if len(task.ACTIVE) > 1:
            layout.operator("sequencer.latentween_cancel", text="Cancel All", icon="CANCEL").all = True

    @staticmethod
    def _reroll(box, context, props) -> None:
        """Re-roll frames of the active latentween strip; the new take replaces the old in its files."""
        strip = reroll.target(context)
        box.label(text=f"Re-roll: {strip.name}" if strip is not None else "Re-roll: make a latentween strip active",
                  icon="FILE_REFRESH")
        row = box.row(align=True)
        row.enabled = strip is not None
        row.operator("sequencer.latentween_reroll", text="Re-roll Frame")
        sub = box.row(align=True)
        sub.enabled = strip is not None
        sub.prop(props, "reroll_start")
        sub.prop(props, "reroll_end")
        sub.operator("sequencer.latentween_reroll", text="Re-roll Range").use_range = True

    @staticmethod
    def _candidates(box, run) -> None:
        box.label(text=f"Frame {run.choice[0]}: keep one", icon="IMAGE_DATA")
        grid = box.grid_flow(columns=min(len(run.choice_icons), 4), even_columns=True, align=True)
        for index, icon in enumerate(run.choice_icons):
            col = grid.column(align=True)
            col.template_icon(icon_value=icon, scale=5.0)
            op = col.operator("sequencer.latentween_choose", text=f"Keep {index + 1}")
            op.task, op.candidate = run.key, index

    @staticmethod
    def _daemon(box, state, url: str) -> None:
        row = box.row()
        if not state.checked:
            row.label(text="Daemon: checking", icon="QUESTION")
        elif state.reachable:
            row.label(text=f"Daemon: {state.device}, queue {state.queue}", icon="CHECKMARK")
        else:
            row.label(text="Daemon: not reachable", icon="ERROR")
        row.operator("sequencer.latentween_check", text="", icon="FILE_REFRESH")
        if state.checked and state.reachable:
            box.label(text=f"Model: {state.model}")
        elif state.message:
            box.label(text=state.message)
        ours = job.spawned() is not None
        if ours:
            box.operator("sequencer.latentween_daemon_stop", text="Stop Daemon", icon="PAUSE")
        elif state.checked and not state.reachable and job.is_local(url):
            box.label(text="Start it here, or run `latentween serve`")
            box.operator("sequencer.latentween_daemon_start", text="Start Daemon", icon="PLAY")
        elif state.checked and not state.reachable:
            box.label(text="Check the Daemon URL in the add-on's preferences")
