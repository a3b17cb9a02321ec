"""Animated GIF and WebP files through Pillow: what DiffMorpher users share.

Both formats take per-frame durations in whole units (GIF: 1/100 s, WebP: 1/1000 s), so a rate such
as 24 fps cannot be kept frame by frame; each frame gets the duration that keeps its start time
closest to the exact one, so the whole loop lasts as long as the video would. Animations loop
forever. GIF has a 256-colour palette per frame and no partial transparency, so frames with alpha
are composited over black (as for video codecs without alpha); WebP keeps alpha (lossy, quality 90).
Frames are kept in memory until `close()` writes the file under a hidden name and renames it.
"""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Union

import numpy as np

from latentween.errors import InputError
from latentween.media.frames import conform, read_frame

log = logging.getLogger("latentween.media")

# suffix -> (Pillow format, duration unit in seconds, keeps alpha)
ANIMATIONS = {".gif": ("GIF", Fraction(1, 100), False), ".webp": ("WEBP", Fraction(1, 1000), True)}
WEBP_QUALITY = 90


def is_animation_path(path: Union[str, os.PathLike]) -> bool:
    return Path(str(path)).suffix.lower() in ANIMATIONS


def frame_durations(count: int, fps: Fraction, unit: Fraction) -> list[int]:
    """Durations in `unit`s whose running sums round the exact start times (no drift over a loop)."""
    ticks = [round(Fraction(i, 1) / fps / unit) for i in range(count + 1)]
    return [max(1, b - a) for a, b in zip(ticks, ticks[1:])]


class AnimationWriter:
    """Same interface as the other writers: write(frame), close() -> path, abort()."""

    def __init__(self, path: Union[str, os.PathLike], size: tuple[int, int], fps, *, alpha: bool = False):
        from latentween.settings import parse_fps

        self.path = Path(path)
        self.size = size
        self.fps = fps if isinstance(fps, Fraction) else parse_fps(str(fps))
        self.format, self.unit, keeps_alpha = ANIMATIONS[self.path.suffix.lower()]
        if alpha and not keeps_alpha:
            log.warning("%s cannot keep alpha: frames are composited over black", self.path.suffix.lower())
        self.channels = 4 if alpha and keeps_alpha else 3
        if not self.path.parent.is_dir():
            raise InputError(f"output folder {str(self.path.parent)!r} does not exist")
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        self._frames: list[np.ndarray] = []

    @property
    def count(self) -> int:
        return len(self._frames)

    def write(self, frame) -> None:
        pixels = frame if isinstance(frame, np.ndarray) else read_frame(frame)
        if (pixels.shape[1], pixels.shape[0]) != self.size:
            raise InputError(f"frame {self.count} is {pixels.shape[1]}x{pixels.shape[0]}, "
                             f"the animation {self.size[0]}x{self.size[1]}")
        self._frames.append(conform(pixels, self.channels, 8))

    def close(self) -> Path:
        from PIL import Image

        if not self._frames:
            raise InputError(f"no frames to write to {str(self.path)!r}")
        mode = "RGBA" if self.channels == 4 else "RGB"
        images = [Image.fromarray(np.ascontiguousarray(f), mode) for f in self._frames]
        # Pillow takes milliseconds for both formats; GIF then stores whole hundredths
        durations = [int(d * self.unit * 1000) for d in frame_durations(len(images), self.fps, self.unit)]
        options = {"save_all": True, "append_images": images[1:], "loop": 0, "duration": durations}
        if self.format == "WEBP":
            options.update(quality=WEBP_QUALITY, method=4)
        try:
            images[0].save(self._tmp, format=self.format, **options)
            with open(self._tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(self._tmp, self.path)
        except OSError as exc:
            self.abort()
            raise InputError(f"cannot write {str(self.path)!r}: {exc.strerror or exc}") from exc
        return self.path

    def abort(self) -> None:
        self._frames.clear()
        self._tmp.unlink(missing_ok=True)
