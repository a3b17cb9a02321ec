"""Operators: collect the settings, hand them to task.py, relay its messages with `self.report`."""
import bpy
from bpy.props import BoolProperty, StringProperty

from . import compat, job, preferences, task
from .timeline import MorphError

TIMER_INTERVAL = 0.25


class SEQUENCER_OT_latentween_morph(bpy.types.Operator):
    """Make in-between frames for the two selected strips with the latentween daemon"""

    bl_idname = "sequencer.latentween_morph"
    bl_label = "Morph"
    bl_options = {"REGISTER"}

    reroll: BoolProperty(name="Re-roll", description="Same settings with a new seed", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        if compat.editor(context) is None:
            cls.poll_message_set("The scene has no strips")
            return False
        if len(compat.selected(context)) != 2:
            cls.poll_message_set("Select two image or movie strips")
            return False
        return True

    def execute(self, context):
        if not compat.is_background() and context.window is not None:
            return self.invoke(context, None)
        # background mode (a render farm, a script): no timers run, so wait here for the strip
        try:
            run = task.start(context, self.reroll)
            run.wait()
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latentween: {run.message}")
        return {"FINISHED"}

    def invoke(self, context, event):
        try:
            self.task = task.start(context, self.reroll)
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(TIMER_INTERVAL, window=context.window)
        context.window_manager.modal_handler_add(self)
        self._show(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if self.task.finished:  # the panel's Cancel button got there first
            return self._end(context, {"WARNING"}, f"Latentween: {self.task.message}", {"CANCELLED"})
        if event.type == "ESC" and event.value == "PRESS":
            try:
                self.task.cancel()
            except MorphError as exc:
                return self._end(context, {"ERROR"}, str(exc), {"CANCELLED"})
            return self._end(context, {"WARNING"}, "Latentween: cancelled", {"CANCELLED"})
        if event.type != "TIMER" or event.timer is not self._timer:
            return {"PASS_THROUGH"}
        try:
            done = self.task.tick(context)
        except MorphError as exc:
            return self._end(context, {"ERROR"}, str(exc), {"CANCELLED"})
        if done:
            if not compat.is_background():
                bpy.ops.ed.undo_push(message="Latentween Morph")  # the strip came after the click's own step
            return self._end(context, {"INFO"}, f"Latentween: {self.task.message}", {"FINISHED"})
        self._show(context)
        return {"PASS_THROUGH"}

    def _show(self, context) -> None:
        compat.status_text(context, f"Latentween: {self.task.message}  (Esc cancels)")
        compat.redraw_sequencer(context)

    def _end(self, context, level: set, message: str, result: set) -> set:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None
        compat.status_text(context, None)
        compat.redraw_sequencer(context)
        self.report(level, message)
        return result


class SEQUENCER_OT_latentween_cancel(bpy.types.Operator):
    """Cancel running latentween jobs (all of them, or the one named)"""

    bl_idname = "sequencer.latentween_cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    job: StringProperty(options={"SKIP_SAVE", "HIDDEN"})

    @classmethod
    def poll(cls, context):
        return bool(task.ACTIVE)

    def execute(self, context):
        try:
            count = task.cancel_all(self.job)
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latentween: cancelled {count} job{'s' if count != 1 else ''}")
        return {"FINISHED"}


class SEQUENCER_OT_latentween_check(bpy.types.Operator):
    """Ask the daemon for its device, model and queue"""

    bl_idname = "sequencer.latentween_check"
    bl_label = "Check Daemon"
    bl_options = {"REGISTER"}

    def execute(self, context):
        prefs = preferences.get(context)
        state = context.window_manager.latentween_daemon
        try:
            state.update(job.health(job.connect(prefs.url, prefs.token)))
        except MorphError as exc:
            state.update(error=str(exc))
            self.report({"WARNING"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}
