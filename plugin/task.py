"""A morph from the button press to the strip on the timeline.

`start()` reads the selection and the settings, finds the daemon (or starts one) and submits;
`MorphTask.tick()` is what the modal operator's timer calls, and what background mode calls in a
loop: each tick is a few short requests, writes finished frames and keeps the strip up to date.
"""
from __future__ import annotations

import random
import shutil
import tempfile
import time
from typing import Optional


from . import compat, job, preferences, sequencer, timeline
from .timeline import MorphError

DAEMON_START_TIMEOUT = 300.0  # a first start may load a large model from disk
ACTIVE: list["MorphTask"] = []  # running tasks, for the panel and the Cancel button


def start(context, reroll: bool = False) -> "MorphTask":
    prefs = preferences.get(context)
    props = compat.scene(context).latentween
    ed = compat.editor(context)
    if ed is None:
        raise MorphError("this scene has no sequencer strips")
    a, b = sequencer.pair(context)
    if props.mode == "GAP":
        placement = timeline.fill_gap(sequencer.span(a), sequencer.span(b), sequencer.occupied(ed))
    else:
        placement = timeline.transition(sequencer.span(a), sequencer.span(b), props.frames, sequencer.occupied(ed))
    out_root = sequencer.output_root(props.output_dir)
    if reroll:
        props.seed = random.SystemRandom().randrange(2**31)
    task = MorphTask(compat.scene(context).name, placement, job.connect(prefs.url, prefs.token),
                     props.job_settings(placement.frames), out_root, sequencer.job_name(a, b))
    task.collect_keyframes(a, b, prefs.send_paths)
    daemon_state = context.window_manager.latentween_daemon
    try:
        daemon_state.update(job.health(task.client))
    except MorphError as exc:
        daemon_state.update(error=str(exc))
        try:
            if not (prefs.start_daemon and job.is_local(prefs.url)):
                raise
            task.process = job.spawn_daemon(prefs.serve_command, prefs.url, prefs.serve_model)
        except MorphError:
            task.drop_keyframes()
            raise
        task.message = "starting the local daemon"
    else:
        task.submit()
    ACTIVE.append(task)
    return task


class MorphTask:
    def __init__(self, scene_name: str, placement: timeline.Placement, client, settings: dict, out_root, name: str):
        self.scene_name = scene_name
        self.placement = placement
        self.client = client
        self.settings = settings
        self.out_root = out_root
        self.name = name
        self.job = job.MorphJob(client, placement.keep)
        self.strip_name = ""
        self.keyframes: list[str] = []
        self.as_paths = False
        self.scratch: Optional[str] = None
        self.process = None
        self.started = time.monotonic()
        self.message = "submitting"
        self.fraction = 0.0
        self.finished = False

    # -- before the job ------------------------------------------------------------------------

    def collect_keyframes(self, a, b, send_paths: bool) -> None:
        at = (self.placement.first_at, self.placement.last_at)
        self.as_paths = send_paths
        if send_paths:
            self.keyframes = [sequencer.keyframe_path(s, f) for s, f in zip((a, b), at)]
            return
        self.scratch = tempfile.mkdtemp(prefix="latentween-keyframes-")
        try:
            self.keyframes = [sequencer.keyframe_file(s, f, self.scratch) for s, f in zip((a, b), at)]
        except BaseException:
            self.drop_keyframes()
            raise

    def drop_keyframes(self) -> None:
        if self.scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def submit(self) -> None:
        try:
            self.job.submit(self.keyframes, self.settings, self.as_paths, self.out_root, self.name)
        finally:
            self.drop_keyframes()
        self.message = "queued"

    # -- while it runs -------------------------------------------------------------------------

    def tick(self, context=None) -> bool:
        """One poll. True once the strip is complete; MorphError when the morph cannot finish."""
        try:
            if self.job.id is None:
                self._await_daemon(context)
                return False
            if self.job.poll():
                self._show()
            self.message, self.fraction = timeline.job_status(self.job.job)
            if self.job.done:
                self._show()
                self._end()
                self.message = f"{len(self.placement.keep)} frames on channel {self.placement.channel}"
                return True
            return False
        except MorphError:
            self._abandon()
            raise

    def _await_daemon(self, context) -> None:
        try:
            health = self.client.health()
        except job.daemon.DaemonError as exc:
            if self.process is not None and self.process.poll() is not None:
                raise MorphError(f"the local daemon exited with {self.process.returncode}; "
                                 f"its log: {self.process.log}") from None
            if time.monotonic() - self.started > DAEMON_START_TIMEOUT:
                raise MorphError(f"{exc} (waited {DAEMON_START_TIMEOUT:.0f} s for the local daemon)") from None
            return
        if context is not None:
            context.window_manager.latentween_daemon.update(health)
        self.submit()

    def _show(self) -> None:
        """Put the strip on the timeline with the first finished frame, then keep it current."""
        strip = sequencer.find_strip(self.scene_name, self.strip_name)
        if strip is None:
            p = self.placement
            strip = sequencer.add_frames(self.scene_name, f"latentween {self.name}", self.job.folder,
                                         self.job.files, p.channel, p.start)
            self.strip_name = strip.name
        else:
            sequencer.refresh(strip)

    # -- the end -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the daemon job and take back what it put on the timeline."""
        try:
            self.job.cancel()
        finally:
            self._abandon()
            self.message = "cancelled"

    def _abandon(self) -> None:
        if self.finished:
            return
        self.drop_keyframes()
        sequencer.remove(self.scene_name, self.strip_name)
        self.job.discard()
        self._end()

    def _end(self) -> None:
        self.finished = True
        if self in ACTIVE:
            ACTIVE.remove(self)

    def wait(self, interval: float = 0.25) -> None:
        """Background mode: tick until done; Ctrl-C cancels the daemon job too."""
        try:
            while not self.tick():
                time.sleep(interval)
        except KeyboardInterrupt:
            self.cancel()
            raise


def cancel_all(job_id: str = "") -> int:
    tasks = [t for t in ACTIVE if not job_id or t.job.id == job_id]
    for task in tasks:
        task.cancel()
    return len(tasks)
