"""Progress: the engine's events, typed (`Progress`, what the daemon's API shows), and on a terminal one
tqdm bar on stderr, silent when stderr is not a terminal."""
from __future__ import annotations

import sys
from typing import Optional

from pydantic import BaseModel, Field


class Progress(BaseModel):
    """Denoising samples done of the total; `stage` says what the worker is doing."""

    done: int = 0
    total: int = 0
    stage: str = Field("queued", description="queued, starting, loading model, denoising, awaiting choice, finished")
    level: Optional[int] = Field(None, description="bisection level being made (1 = the first midpoint)")
    levels: Optional[int] = None

    @classmethod
    def of(cls, event: dict) -> "Progress":
        """The fields of an engine event dict (callbacks get dicts, which may carry more)."""
        return cls(**{k: event[k] for k in cls.model_fields if k in event})

    def event(self) -> dict:
        """As an engine event dict: only the fields that were given, as stored and streamed before."""
        return self.model_dump(exclude_unset=True)


class ProgressBar:
    """Feeds tqdm from the engine's progress dicts ({done, total, stage, ...})."""

    def __init__(self, description: str = "morph", enabled: Optional[bool] = None, unit: str = "step"):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self.unit = unit
        self._bar = None

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=event.get("total") or None, desc=self.description, unit=self.unit,
                             file=sys.stderr, dynamic_ncols=True, leave=True)
        if event.get("total") and self._bar.total != event["total"]:
            self._bar.total = event["total"]
        self._bar.n = event.get("done", 0)
        postfix = {k: event[k] for k in ("stage", "level", "frames", "steps") if event.get(k) is not None}
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class FrameProgress:
    """The engine's step events shown as frames: done of the job's frames, the steps as a detail.

    Frames already on disk when generation starts (keyframes, frames kept from an interrupted run)
    are read from the manifest run_morph writes before its first denoising step; made frames come
    from `on_frame`. `bar` is any callable taking the progress dicts (a ProgressBar)."""

    def __init__(self, bar, folder, count: int):
        from pathlib import Path

        self.bar, self.folder, self.count = bar, Path(folder), count
        self.listed: set[int] = set()
        self.made: set[int] = set()
        self._event: dict = {}

    def _read_listed(self) -> None:
        from latentween.outputs import OutputFolder

        output = OutputFolder(self.folder)
        manifest = output.manifest()
        if manifest is not None:  # unreadable (being replaced): keep what was read before
            self.listed = set(output.finished_frames(manifest))

    def progress(self, event: dict) -> None:
        if not self.made:  # until then the manifest on disk may still be an earlier job's
            self._read_listed()
        self._event = event
        self._show()

    def on_frame(self, index: int, path=None) -> None:
        self.made.add(index)
        self._show()

    def _show(self) -> None:
        event = self._event
        steps = f"{event['done']}/{event['total']}" if event.get("total") else None
        self.bar({"done": len(self.listed | self.made), "total": self.count, "stage": event.get("stage"),
                  "level": event.get("level"), "steps": steps})
