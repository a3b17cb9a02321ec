"""Operators: collect the settings, hand them to task.py, relay its messages with `self.report`."""
import bpy
from bpy.props import BoolProperty, IntProperty, StringProperty

from . import compat, health, job, preferences, reroll, sequencer, task
from .timeline import MorphError

TIMER_INTERVAL = 0.25


class _TaskOperator:
    """A task ticked by a modal timer in the interface, or waited on in background mode. Subclasses
    name the task in `_start(context)`; its `tick()` says when it is done."""

    def execute(self, context):
        if not compat.is_background() and context.window is not None:
            return self.invoke(context, None)
        # background mode (a render farm, a script): no timers run, so wait here for the strip
        if self._needs_interface(context):
            self.report({"ERROR"}, "choosing candidates needs Blender's interface; turn Choose off to run in background")
            return {"CANCELLED"}
        try:
            run = self._start(context)
            run.wait()
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latentween: {run.message}")
        return {"FINISHED"}

    def invoke(self, context, event):
        try:
            self.task = self._start(context)
        except MorphError as exc:
            health.schedule()
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self._timer = context.window_manager.event_timer_add(TIMER_INTERVAL, window=context.window)
        context.window_manager.modal_handler_add(self)
        compat.redraw_sequencer(context)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        # Keys pass through: Esc stops playback, not a job of minutes. The panel's Cancel button stops it.
        if self.task.finished:  # the panel's Cancel button got there first
            return self._end(context, {"WARNING"}, f"Latentween: {self.task.message}", {"CANCELLED"})
        if event.type != "TIMER" or event.timer is not self._timer:
            return {"PASS_THROUGH"}
        try:
            done = self.task.tick(context)
        except MorphError as exc:
            health.schedule()  # the daemon may be what failed: the panel says so
            return self._end(context, {"ERROR"}, str(exc), {"CANCELLED"})
        if done:
            if not compat.is_background():
                bpy.ops.ed.undo_push(message=f"Latentween {self.bl_label}")  # the result came after the click's step
            return self._end(context, {"INFO"}, f"Latentween: {self.task.message}", {"FINISHED"})
        compat.redraw_sequencer(context)
        return {"PASS_THROUGH"}

    def cancel(self, context):
        """Blender ends the operator without an event (a file is loaded, the window closes)."""
        self._stop_timer(context)
        task_ = getattr(self, "task", None)
        if task_ is not None and not task_.finished:
            try:
                task_.cancel()
            except MorphError:
                pass  # nobody is left to tell

    def _stop_timer(self, context) -> None:
        if getattr(self, "_timer", None) is not None:
            context.window_manager.event_timer_remove(self._timer)
            self._timer = None

    def _end(self, context, level: set, message: str, result: set) -> set:
        self._stop_timer(context)
        compat.redraw_sequencer(context)
        self.report(level, message)
        return result


class SEQUENCER_OT_latentween_morph(_TaskOperator, bpy.types.Operator):
    """Make in-between frames for the two selected strips with the latentween daemon"""

    bl_idname = "sequencer.latentween_morph"
    bl_label = "Morph"
    bl_options = {"REGISTER"}

    reroll: BoolProperty(name="Re-roll", description="Same settings with a new seed", options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        if compat.scene(context) is None:
            cls.poll_message_set("The workspace shows no sequencer scene")
            return False
        if compat.editor(context) is None:
            cls.poll_message_set("The scene has no strips")
            return False
        if len(compat.selected(context)) != 2:
            cls.poll_message_set("Select two image or movie strips")
            return False
        return True

    def _start(self, context):
        return task.start(context, self.reroll)

    def _needs_interface(self, context) -> bool:
        return compat.scene(context).latentween.choose


class SEQUENCER_OT_latentween_reroll(_TaskOperator, bpy.types.Operator):
    """Make frames of the active latentween strip again (their next take), keeping every other frame;
    the new take replaces the previous one in the strip's files"""

    bl_idname = "sequencer.latentween_reroll"
    bl_label = "Re-roll Frames"
    bl_options = {"REGISTER"}

    use_range: BoolProperty(name="Range", description="The panel's frame range instead of the current frame",
                            options={"SKIP_SAVE"})

    @classmethod
    def poll(cls, context):
        if compat.scene(context) is None or reroll.target(context) is None:
            cls.poll_message_set("Make a latentween strip the active strip")
            return False
        return True

    def _start(self, context):
        scene = compat.scene(context)
        props = scene.latentween
        first, last = (props.reroll_start, props.reroll_end) if self.use_range else (scene.frame_current,) * 2
        return reroll.start(context, min(first, last), max(first, last))

    def _needs_interface(self, context) -> bool:
        strip = reroll.target(context)
        return strip is not None and sequencer.recorded_settings(strip).get("choose") == "manual"


class SEQUENCER_OT_latentween_cancel(bpy.types.Operator):
    """Cancel a running latentween morph, or all of them"""

    bl_idname = "sequencer.latentween_cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    task: StringProperty(options={"SKIP_SAVE", "HIDDEN"}, description="The morph's key in this session")
    job: StringProperty(options={"SKIP_SAVE", "HIDDEN"}, description="The daemon's job id")
    all: BoolProperty(options={"SKIP_SAVE", "HIDDEN"}, description="Every running morph")

    @classmethod
    def poll(cls, context):
        return bool(task.ACTIVE)

    def execute(self, context):
        try:
            count = task.cancel_all(self.job, self.task, self.all)
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"Latentween: cancelled {count} job{'s' if count != 1 else ''}")
        return {"FINISHED"}


class SEQUENCER_OT_latentween_choose(bpy.types.Operator):
    """Keep this candidate for the frame the daemon waits on; the job goes on"""

    bl_idname = "sequencer.latentween_choose"
    bl_label = "Keep"
    bl_options = {"REGISTER"}

    task: StringProperty(options={"SKIP_SAVE", "HIDDEN"})
    candidate: IntProperty(options={"SKIP_SAVE", "HIDDEN"}, min=0)

    def execute(self, context):
        run = task.find(self.task)
        try:
            if run is None:
                raise MorphError("that morph is no longer running")
            run.choose(self.candidate)
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        compat.redraw_sequencer(context)
        return {"FINISHED"}


class SEQUENCER_OT_latentween_check(bpy.types.Operator):
    """Ask the daemon for its device, model and queue"""

    bl_idname = "sequencer.latentween_check"
    bl_label = "Check Daemon"
    bl_options = {"REGISTER"}

    def execute(self, context):
        if not health.check(context):
            self.report({"WARNING"}, context.window_manager.latentween_daemon.message)
            return {"CANCELLED"}
        return {"FINISHED"}


class SEQUENCER_OT_latentween_daemon_start(bpy.types.Operator):
    """Run `latentween serve` on this machine, at the port of the daemon URL"""

    bl_idname = "sequencer.latentween_daemon_start"
    bl_label = "Start Daemon"
    bl_options = {"REGISTER"}

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            job.spawn_daemon(prefs.serve_command, prefs.url, prefs.serve_model)
        except MorphError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        context.window_manager.latentween_daemon.update(error="starting: a first start loads the model")
        health.schedule(delay=2.0, until_up=True)
        return {"FINISHED"}


class SEQUENCER_OT_latentween_daemon_stop(bpy.types.Operator):
    """Stop the daemon this Blender started"""

    bl_idname = "sequencer.latentween_daemon_stop"
    bl_label = "Stop Daemon"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context):
        return job.spawned() is not None

    def execute(self, context):
        job.stop_daemon()
        health.check(context)
        return {"FINISHED"}
