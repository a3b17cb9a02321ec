"""Progress on a terminal: one tqdm bar on stderr, silent when stderr is not a terminal."""
from __future__ import annotations

import sys
from typing import Optional


class ProgressBar:
    """Feeds tqdm from the engine's progress dicts ({done, total, stage, ...})."""

    def __init__(self, description: str = "morph", enabled: Optional[bool] = None):
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.description = description
        self._bar = None

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self._bar is None:
            self._bar = tqdm(total=event.get("total") or None, desc=self.description, unit="step",
                             file=sys.stderr, dynamic_ncols=True, leave=True)
        if event.get("total") and self._bar.total != event["total"]:
            self._bar.total = event["total"]
        self._bar.n = event.get("done", 0)
        postfix = {k: event[k] for k in ("stage", "level", "frames") if k in event}
        self._bar.set_postfix(postfix, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
