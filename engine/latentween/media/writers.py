"""Writers of finished frames, in order: image sequences, raw pipes, and `open_writer` to pick one.

All writers share `write(frame)`, `close()` and `abort()`. Image sequences write every file
atomically (temp file, fsync, rename), so a crash leaves only whole frames; frames already written
stay when a render is aborted.
"""
from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator, Optional

import numpy as np

from latentween.errors import InputError, LatentweenError
from latentween.atomic import write_atomic
from latentween.images import encode_png
from latentween.media.codecs import output_kind
from latentween.media.frames import PIPE_FORMATS, conform, raw_bytes, read_frame

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"#+")


def frame_namer(pattern: str):
    """'frame_%05d.png' or 'shot.####.png' -> a function number -> file name; ValueError if malformed."""
    if "/" in pattern or "\\" in pattern or pattern in ("", ".", ".."):
        raise ValueError(f"pattern {pattern!r} must be a file name (the folder is --out)")
    if not pattern.lower().endswith(".png"):
        raise ValueError(f"pattern {pattern!r} must end in .png (image sequences are PNG)")
    fields = _PRINTF.findall(pattern) + _HASHES.findall(pattern)
    if len(fields) != 1 or "%" in _PRINTF.sub("", pattern):
        raise ValueError(f"pattern {pattern!r} needs exactly one number field such as %05d or ####")
    head, width, tail = _split_pattern(pattern)
    return lambda number: f"{head}{number:0{width}d}{tail}"


def _split_pattern(pattern: str) -> tuple[str, int, str]:
    match = _PRINTF.search(pattern)
    if match:
        width = int(match.group(2) or 0)
    else:
        match = _HASHES.search(pattern)
        width = len(match.group(0))
    return pattern[:match.start()], width, pattern[match.end():]


class SequenceWriter:
    """PNG files `pattern` numbered from `start_number` in `folder`, 16-bit when the frames are."""

    def __init__(self, folder: str | os.PathLike, *, alpha: bool = False, deep: bool = False,
                 pattern: str = "frame_%05d.png", start_number: int = 0):
        self.folder = Path(folder)
        try:
            self.name = frame_namer(pattern)
        except ValueError as exc:
            raise InputError(f"--pattern: {exc}") from None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(f"output folder {str(self.folder)!r} is not writable: {exc.strerror or exc}") from exc
        self.channels, self.bit_depth = (4 if alpha else 3), (16 if deep else 8)
        self.start_number = start_number
        self.count = 0
        self._remove_stale_parts(pattern)

    def _remove_stale_parts(self, pattern: str) -> None:
        """A killed run can leave hidden temp files of this sequence (write_atomic's); never whole frames."""
        head, _, tail = _split_pattern(pattern)
        stale = re.compile(r"^\." + re.escape(head) + r"\d+" + re.escape(tail) + r"\..+\.part$")
        for path in self.folder.glob(".*.part"):
            if stale.match(path.name):
                path.unlink(missing_ok=True)

    def path(self, position: int) -> Path:
        return self.folder / self.name(self.start_number + position)

    def write(self, frame) -> None:
        pixels = frame if isinstance(frame, np.ndarray) else read_frame(frame)
        write_atomic(self.path(self.count), encode_png(conform(pixels, self.channels, self.bit_depth)))
        self.count += 1

    def close(self) -> Path:
        return self.folder

    def abort(self) -> None:
        """Written frames are whole and stay: a re-run rewrites them identically."""


class PipeWriter:
    """Raw frames (`rgb24`, `rgba` or `rgb48le`) to a binary stream, for `ffmpeg -f rawvideo -i -`."""

    def __init__(self, stream: BinaryIO, pipe_format: str = "rgb24"):
        if pipe_format not in PIPE_FORMATS:
            raise InputError(f"--pipe must be one of {', '.join(PIPE_FORMATS)}, got {pipe_format!r}")
        self.stream, self.format, self.count = stream, pipe_format, 0

    def write(self, frame) -> None:
        pixels = frame if isinstance(frame, np.ndarray) else read_frame(frame)
        try:
            self.stream.write(raw_bytes(pixels, self.format))
            self.stream.flush()
        except BrokenPipeError:
            raise LatentweenError("the program reading the frames closed the pipe") from None
        self.count += 1

    def close(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            pass

    def abort(self) -> None:
        self.close()


def open_writer(out: str, size: tuple[int, int], output, *, alpha: bool = False, deep: bool = False,
                stdout: Optional[BinaryIO] = None):
    """A writer for `--out`: '-' (raw pipe to `stdout`), a video file or an animation (by suffix), or a folder.

    `output` is an OutputSettings (fps, codec, crf, pix_fmt, pattern, start_number, pipe).
    """
    from latentween.media.animated import AnimationWriter
    from latentween.media.video import VideoWriter

    kind = output_kind(out)
    if kind == "pipe":
        return PipeWriter(stdout if stdout is not None else sys.stdout.buffer, output.pipe)
    if kind == "video":
        return VideoWriter(out, size, output.rate(), alpha=alpha, deep=deep, codec=output.codec,
                           crf=output.crf, pix_fmt=output.pix_fmt)
    if output.codec or output.crf is not None or output.pix_fmt:
        raise InputError(f"--codec, --crf and --pix-fmt apply to video files; --out names "
                         f"{'an animation' if kind == 'animation' else 'a folder'}")
    if kind == "animation":
        return AnimationWriter(out, size, output.rate(), alpha=alpha)
    return SequenceWriter(out, alpha=alpha, deep=deep, pattern=output.pattern, start_number=output.start_number)


@contextmanager
def claimed_stdout() -> Iterator[BinaryIO]:
    """Give the frames stdout to themselves: anything else printing to fd 1 goes to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    stream = os.fdopen(os.dup(1), "wb", buffering=1 << 20)
    os.dup2(2, 1)
    previous, sys.stdout = sys.stdout, sys.stderr
    try:
        yield stream
    finally:
        try:
            stream.close()
        except BrokenPipeError:
            pass
        sys.stdout = previous
        os.dup2(saved, 1)
        os.close(saved)
