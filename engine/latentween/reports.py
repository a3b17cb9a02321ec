"""What a running piece of work reports, typed: the messages the engine's farm (a Ray actor running a
transition) and the daemon's worker share (server/messages.py adds the daemon's own). They pickle,
so the same objects travel through a worker's pipe and a Ray actor's channel."""
from __future__ import annotations

from dataclasses import dataclass, field

from latentween.progress import Progress

Files = dict  # relative path -> bytes: a job's files travelling with its report (a Ray actor's scratch folder)


@dataclass(frozen=True)
class Progressed:
    progress: Progress


@dataclass(frozen=True)
class Frames:
    indices: list[int]
    files: Files = field(default_factory=dict)
