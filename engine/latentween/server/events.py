"""The daemon's event hub: SSE subscribers of each job, and the cached JSON that polls of a job get."""
from __future__ import annotations

import threading
import time
from typing import Callable, Optional

from latentween.server.live import Subscriber

# Polls within this time get the same bytes: progress may lag by that much, state changes never do.
# Twenty clients polling at 10 Hz then cost about one database read and serialization per interval.
POLL_FRESH_S = 0.1


class EventHub:
    """Events reach a job's subscribers through their event loops; any event but progress also makes
    the cached poll answer stale."""

    def __init__(self):
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._polled: dict[str, tuple[float, int, bytes]] = {}  # job id -> (when, version, JSON)
        self._versions: dict[str, int] = {}

    def subscribe(self, job_id: str, loop) -> Subscriber:
        subscriber = Subscriber(job_id, loop)
        with self._lock:
            self._subscribers.setdefault(job_id, []).append(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            subscribers = self._subscribers.get(subscriber.job_id, [])
            if subscriber in subscribers:
                subscribers.remove(subscriber)
            if not subscribers:
                self._subscribers.pop(subscriber.job_id, None)

    def watched(self, job_id: str) -> bool:
        """Whether the job has subscribers (progress is only worth building for them)."""
        return job_id in self._subscribers

    def publish(self, job_id: str, kind: str, data: dict) -> None:
        if kind != "progress":
            self._versions[job_id] = self._versions.get(job_id, 0) + 1
        for subscriber in list(self._subscribers.get(job_id, ())):
            try:
                subscriber.loop.call_soon_threadsafe(subscriber.push, kind, data)
            except RuntimeError:  # its loop has closed: the stream is gone
                self.unsubscribe(subscriber)

    def end_all(self, reason: str) -> None:
        for job_id in list(self._subscribers):
            self.publish(job_id, "end", {"reason": reason})

    def polled_json(self, job_id: str) -> Optional[bytes]:
        """The job as JSON from memory, if a recent poll made it and nothing but progress changed since."""
        entry = self._polled.get(job_id)
        if entry is None or time.monotonic() - entry[0] > POLL_FRESH_S or entry[1] != self._versions.get(job_id, 0):
            return None
        return entry[2]

    def job_json(self, job_id: str, make: Callable[[], bytes]) -> bytes:
        """`make()`'s JSON of the job, kept for the polls that follow."""
        version = self._versions.get(job_id, 0)  # before make: a change while it runs makes the copy stale
        data = make()
        if len(self._polled) > 1000:
            self._polled.clear()
        self._polled[job_id] = (time.monotonic(), version, data)
        return data
