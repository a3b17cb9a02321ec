"""The daemon's state as the panel shows it. Checked when the panel first draws, after a failure and
while a daemon started here comes up: from a timer, since draw() must not make requests, with a short
time-out, so a daemon that is down costs the interface no more than a moment."""
from __future__ import annotations

import bpy

from . import compat, job, preferences
from .timeline import MorphError

CHECK_TIMEOUT = 1.0
START_PATIENCE = 300.0  # seconds a started daemon gets to answer (a first start may load a large model)

_pending = False


def check(context=None) -> bool:
    """One health request now; the panel's state records the answer. True when the daemon answered."""
    context = context or bpy.context
    state = context.window_manager.latentween_daemon
    prefs = preferences.get(context)
    try:
        client = job.connect(prefs.url, prefs.token, compat.online_access())
        client.timeout = CHECK_TIMEOUT
        state.update(job.health(client))
    except MorphError as exc:
        state.update(error=str(exc))
    compat.redraw_sequencer(context)
    return state.reachable


def schedule(delay: float = 0.0, until_up: bool = False) -> None:
    """A check soon, from a timer. `until_up`: again every 2 s while a daemon started here loads."""
    global _pending
    if _pending:
        return
    _pending = True
    waited = [0.0]

    def tick():
        global _pending
        if check() or not until_up or job.spawned() is None or waited[0] > START_PATIENCE:
            _pending = False
            return None  # done: a timer that returns None runs no more
        waited[0] += 2.0
        return 2.0

    bpy.app.timers.register(tick, first_interval=delay)


def pending() -> bool:
    return _pending
