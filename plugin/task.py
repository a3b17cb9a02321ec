"""A morph from the button press to the strip on the timeline.

`start()` reads the selection and the settings, finds the daemon (or starts one) and submits;
`MorphTask.tick()` is what the modal operator's timer calls, and what background mode calls in a
loop: each tick is a few short requests, writes finished frames and keeps the strip up to date.
"""
from __future__ import annotations

import itertools
import random
import shutil
import tempfile
import time
from typing import Optional

from . import candidates, compat, job, preferences, sequencer, timeline
from .timeline import MorphError

DAEMON_START_TIMEOUT = 300.0  # a first start may load a large model from disk
ACTIVE: list["DaemonTask"] = []  # running tasks, for the panel and the Cancel button
_keys = itertools.count(1)


def start(context, reroll: bool = False) -> "MorphTask":
    prefs = preferences.get(context)
    props = compat.scene(context).latentween
    ed = compat.editor(context)
    if ed is None:
        raise MorphError("this scene has no sequencer strips")
    a, b = sequencer.pair(context)
    level = compat.container(ed)  # where the two strips are: the top level or an open meta strip
    if props.mode == "GAP":
        placement = timeline.fill_gap(sequencer.span(a), sequencer.span(b), sequencer.occupied(level))
    else:
        placement = timeline.transition(sequencer.span(a), sequencer.span(b), props.frames, sequencer.occupied(level))
    out_root = sequencer.output_root(props.output_dir)
    if reroll:
        props.seed = random.SystemRandom().randrange(2**31)
    client = job.connect(prefs.url, prefs.token, compat.online_access())
    task = MorphTask(compat.scene(context).name, placement, client,
                     props.job_settings(placement.frames), out_root, sequencer.job_name(a, b))
    task.meta, task.like = sequencer.level_name(ed), a.name
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


class DaemonTask:
    """What every task of the panel does with its daemon job and the ACTIVE list."""

    def _stop_job(self) -> None:
        try:
            self.job.cancel()
        except MorphError:
            pass  # a daemon gone away has no job to stop; the editor already has the first error

    def _end(self) -> None:
        self.finished = True
        if self in ACTIVE:
            ACTIVE.remove(self)


class MorphTask(DaemonTask):
    def __init__(self, scene_name: str, placement: timeline.Placement, client, settings: dict, out_root, name: str):
        self.key = str(next(_keys))  # names the task before the daemon gave its job an id
        self.scene_name = scene_name
        self.placement = placement
        self.client = client
        self.settings = settings
        self.out_root = out_root
        self.name = name
        self.job = job.MorphJob(client, placement.keep)
        self.strip_name = ""
        self.meta = ""  # the meta strip the result goes into; "" the top level
        self.like = ""  # the strip whose fit and transform the result copies
        self.keyframes: list[str] = []
        self.as_paths = False
        self.scratch: Optional[str] = None
        self.process = None
        self.choice: Optional[tuple[int, list]] = None  # (frame, candidate files) the daemon waits on
        self.choice_icons: list[int] = []
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
            if self.job.job["state"] == "awaiting-choice":
                self._await_choice()
                return False
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

    def _await_choice(self) -> None:
        frame = (self.job.job.get("awaiting") or {}).get("frame")
        if self.choice is None or self.choice[0] != frame:
            self.choice = self.job.candidates()
            self.choice_icons = candidates.icons(self.choice[1])
        self.message = f"choose one of {len(self.choice[1])} candidates for frame {self.choice[0]}"

    def choose(self, candidate: int) -> None:
        """Keep one of the candidates the daemon waits on; the job goes on."""
        if self.choice is None:
            raise MorphError("the daemon is not waiting for a choice")
        frame, self.choice, self.choice_icons = self.choice[0], None, []
        self.job.choose(frame, candidate)
        self.message = f"kept candidate {candidate + 1} for frame {frame}"

    def _show(self) -> None:
        """Put the strip on the timeline with the first finished frame, then keep it current."""
        strip = sequencer.find_strip(self.scene_name, self.strip_name)
        if strip is None:
            p = self.placement
            strip = sequencer.add_frames(self.scene_name, self.meta, f"latentween {self.name}", self.job.folder,
                                         self.job.files, p.channel, p.start, self.like)
            sequencer.record(strip, self.job.id, self.job.job.get("settings") or self.settings)
            self.strip_name = strip.name
        else:
            sequencer.refresh(strip)

    # -- the end -------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the daemon job and take back what it put on the timeline."""
        try:
            self.job.cancel()
        finally:
            self._abandon(stop_job=False)
            self.message = "cancelled"

    def _abandon(self, stop_job: bool = True) -> None:
        """The morph cannot finish: stop its daemon job too, or it would run on for nobody."""
        if self.finished:
            return
        if stop_job:
            self._stop_job()
        self.drop_keyframes()
        sequencer.remove(self.scene_name, self.meta, self.strip_name)
        self.job.discard()
        self._end()

    def forget(self) -> None:
        """Another file replaces this one: stop the job, keep away from the new file's strips."""
        if self.finished:
            return
        self._stop_job()
        self.drop_keyframes()
        self.job.discard()
        self.message = "cancelled: another file was opened"
        self._end()

    def wait(self, interval: float = 0.25) -> None:
        """Background mode: tick until done; Ctrl-C cancels the daemon job too."""
        try:
            while not self.tick():
                time.sleep(interval)
        except KeyboardInterrupt:
            self.cancel()
            raise


def find(key: str) -> Optional["MorphTask"]:
    return next((t for t in ACTIVE if t.key == key), None)


def cancel_all(job_id: str = "", key: str = "", everything: bool = False) -> int:
    """Cancels the task with this job id or task key, or every task; nothing named: nothing."""
    tasks = [t for t in ACTIVE if everything or (job_id and t.job.id == job_id) or (key and t.key == key)]
    for task in tasks:
        task.cancel()
    return len(tasks)


def forget_all() -> None:
    for task in list(ACTIVE):
        task.forget()
