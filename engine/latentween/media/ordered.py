"""In-order delivery of frames the engine finishes out of order.

The engine makes the midpoint first, then the quarter points, and so on, writing each frame file
atomically as soon as it is final. An encoder or a pipe needs frames in order, so the sink keeps
a timeline of frame files (a file may appear several times: holds) and, whenever a file becomes
final, writes the contiguous prefix of the timeline whose files are all final. Frames stay on disk
until their turn, so memory holds one frame whatever the length of the render.

Resume: the engine does not report frames that were already final when it starts (the keyframes
and frames resumed from an earlier run); it lists them in its manifest before generating, so the
first event of a run that finds the folder's manifest to be this job's (its job key) reads it, and
the end of a run marks every frame of it final. Events before that (textual inversion's progress)
may find the manifest of another job that used the folder before: its frames are not this job's.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from latentween.media.frames import read_frame
from latentween.outputs import OutputFolder


class OrderedSink:
    """Write the frames of `timeline` (file paths, in output order) to `writer` as they become final."""

    def __init__(self, timeline: Sequence[Path], writer, on_write: Optional[Callable[[int], None]] = None):
        self.timeline = [_key(p) for p in timeline]
        self.writer = writer
        self.on_write = on_write
        self.position = 0  # slots before this one are written
        self._final: set[Path] = set()
        self._last: tuple[Optional[Path], Optional[np.ndarray]] = (None, None)

    @property
    def complete(self) -> bool:
        return self.position == len(self.timeline)

    def mark(self, *paths: Path) -> None:
        """These files are final (written whole and never rewritten with other pixels)."""
        self._final.update(_key(p) for p in paths)
        self.flush()

    def flush(self) -> None:
        while self.position < len(self.timeline) and self.timeline[self.position] in self._final:
            path = self.timeline[self.position]
            cached_path, pixels = self._last
            if cached_path != path:  # holds repeat one file: read it once
                pixels = read_frame(path)
                self._last = (path, pixels)
            self.writer.write(pixels)
            self.position += 1
            if self.on_write is not None:
                self.on_write(self.position)

    def watch(self, folder: Path, count: int, progress: Optional[Callable[[dict], None]] = None,
              key: Optional[str] = None) -> "MorphWatch":
        """Callbacks for one `run_morph(..., out_dir=folder)` of `count` frames feeding this sink;
        `key`: the run's job key (morph.job_key), which the folder's manifest must carry to be read."""
        return MorphWatch(self, Path(folder), count, progress, key)


class MorphWatch:
    """Pass `progress` and `on_frame` to run_morph; call `finished()` when it returns."""

    def __init__(self, sink: OrderedSink, folder: Path, count: int, progress: Optional[Callable[[dict], None]],
                 key: Optional[str] = None):
        self.sink, self.folder, self.count, self._progress, self.key = sink, folder, count, progress, key
        self.output = OutputFolder(folder)
        self._started = False

    def _catch_up(self) -> None:
        if not self._started:
            manifest = self.output.manifest(self.key)
            if manifest is not None:  # None: the manifest there is not this run's yet
                self._started = True
                self.sink.mark(*map(self.output.frame_path, self.output.finished_frames(manifest)))

    def progress(self, event: dict) -> None:
        self._catch_up()
        if self._progress is not None:
            self._progress(event)

    def on_frame(self, index: int, path: Path) -> None:
        self._catch_up()
        self.sink.mark(Path(path))

    def finished(self) -> None:
        self.sink.mark(*map(self.output.frame_path, range(self.count)))


def _key(path) -> Path:
    """One spelling per file, so the engine's paths and the timeline's compare equal."""
    return Path(os.path.abspath(path))

