"""Keyframes coming into a job: uploaded bytes, files under the allowed roots, or frames of videos.

Whatever the origin, a keyframe is kept as bytes in the job's inputs/ folder at submission, so a
job (and its resume after a restart) never depends on a file that may change or vanish later.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from latentween.errors import InputError
from latentween.server.config import ServerConfig
from latentween.server.errors import NotFound, TooLarge, Unprocessable, quoted
from latentween.server.security import contained_path


@dataclass
class KeyframeInput:
    """A validated keyframe: the bytes to keep and what the job reports about it."""

    data: bytes
    source: str
    sha256: str
    width: int
    height: int

    def info(self) -> dict:
        return {"source": self.source, "sha256": self.sha256, "width": self.width, "height": self.height}


def from_upload(data: bytes, filename: str, config: ServerConfig) -> KeyframeInput:
    name = Path(filename or "upload").name
    if len(data) > config.max_upload_bytes:
        raise TooLarge(f"keyframe {quoted(name)} is {len(data):,} bytes, more than the {config.max_upload_bytes:,}-byte limit")
    return _validated(data, name, config)


def from_server_path(spec: str, config: ServerConfig) -> KeyframeInput:
    """`/abs/image.png`, or a frame of a video: `/abs/clip.mov@120` (frame number) or
    `/abs/clip.mov@00:00:05.000` (time), inside the allowed roots. A path that exists is a file."""
    path = contained_path(spec, config.allow_roots)
    try:
        if path.is_file():
            size = path.stat().st_size
            if size > config.max_upload_bytes:
                raise TooLarge(f"keyframe {quoted(spec)} is {size:,} bytes, more than the "
                               f"{config.max_upload_bytes:,}-byte limit")
            return _validated(path.read_bytes(), spec, config)
        video, at = spec.rsplit("@", 1) if "@" in spec else (spec, None)
        video_path = contained_path(video, config.allow_roots, shown=spec)
        if at is None or not video_path.is_file():
            raise NotFound(f"keyframe {quoted(spec)} does not exist on the daemon's machine")
    except OSError as exc:  # permissions, a file that vanished, a loop of symlinks
        raise Unprocessable(f"keyframe {quoted(spec)} cannot be read: {exc.strerror or type(exc).__name__}") from None
    return _video_frame(video_path, at, spec, config)


def _video_frame(video: Path, at: str, spec: str, config: ServerConfig) -> KeyframeInput:
    try:
        from latentween.media.read import load_keyframe
    except ImportError as exc:
        raise Unprocessable(f"keyframe {quoted(spec)} names a video frame, but this installation has no video "
                            f"support (latentween.media); give an image instead") from exc
    from latentween.images import encode_png, to_integer

    try:
        keyframe = load_keyframe(f"{video}@{at}")
    except InputError as exc:
        raise Unprocessable(str(exc).replace(str(video), spec.rsplit("@", 1)[0])) from exc
    depth = 8 if keyframe.bit_depth == 8 else 16
    return _validated(encode_png(to_integer(keyframe.pixels, depth)), spec, config)


def _validated(data: bytes, source: str, config: ServerConfig) -> KeyframeInput:
    """Refuse bombs from the header before decoding, then decode fully so a job never starts on junk."""
    from latentween.images import ImageTooLarge, decode_image, image_size

    try:
        width, height = image_size(data, source)
        if width * height > config.max_pixels:
            raise TooLarge(f"keyframe {quoted(source)} is {width}x{height}, more than the daemon's "
                           f"{config.max_pixels:,}-pixel limit (--max-pixels)")
        keyframe = decode_image(data, source)
    except ImageTooLarge as exc:
        raise TooLarge(str(exc)) from None
    except InputError as exc:
        raise Unprocessable(str(exc)) from None
    width, height = keyframe.size
    return KeyframeInput(data, source, keyframe.sha256, width, height)


def check_output_size(size: tuple[int, int], settings, config: ServerConfig) -> None:
    """Output pixels are bounded like input pixels: two 64x64 keyframes asking for 8192x8192 frames
    (or for the model to run at that size) would have the worker allocate gigabytes."""
    from latentween.images import work_size

    width, height = size
    if width * height > config.max_pixels:
        raise Unprocessable(f"size {width}x{height} is {width * height:,} pixels, more than the daemon's "
                            f"{config.max_pixels:,}-pixel limit (--max-pixels)")
    if settings.work_size:
        width, height = work_size(size, settings.work_size, settings.work_size)
        if width * height > config.max_pixels:
            raise Unprocessable(f"work_size {settings.work_size} makes the model run at {width}x{height}, more "
                                f"than the daemon's {config.max_pixels:,}-pixel limit (--max-pixels)")
