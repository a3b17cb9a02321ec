"""Keyframes from where editors keep them: image files, a frame of a video, or stdin.

Specs (`load_keyframe`):
- `shot.png` (or .tif, .jpg, .webp, .exr, ...): an image file. OpenCV decodes it; EXR (and DPX),
  which this OpenCV build lacks, are decoded by FFmpeg through PyAV. EXR holds linear light, so
  its values are encoded with the sRGB transfer curve (and clipped to [0, 1]) like a display image.
- `clip.mp4@120`: frame 120 of the clip, counting from 0 in presentation order.
- `clip.mov@00:00:05.000` (also `MM:SS.mmm` or `5.2s`): the frame on screen at that time, measured
  from the clip's first frame.
A path that exists as written is always a file, even if it contains '@'.

Exact seeking: frame N is the N-th frame in display order (what FFmpeg's select
filter numbers n). The container seeks to the last keyframe at or before it and frames are decoded forward to
the one asked for, never the keyframe the seek landed on. Which timestamp is frame N: in an indexed
container that declares a constant rate without gaps (MP4/MOV: frame count = duration x rate) it is
start + N / rate; otherwise (MKV, WebM, variable frame rate) the packets are demuxed without decoding
and the N-th smallest timestamp is taken. Times pick the last frame whose timestamp is at or before
them. When timestamps are missing or a seek overshoots, the clip is decoded from its start counting
frames, which is exact by definition. Untagged YUV is taken as BT.709 above 576 lines
and BT.601 otherwise (what players do).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Optional

import numpy as np

from latentween.errors import InputError
from latentween.images import MAX_PIXELS, ImageTooLarge, Keyframe, read_image

_EXR_MAGIC = b"\x76\x2f\x31\x01"
_DPX_MAGIC = (b"SDPX", b"XPDS")
_VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mxf", ".mts", ".m2ts", ".ts", ".mpg", ".mpeg"}
_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
_SECONDS = re.compile(r"^(\d+(?:\.\d+)?)s$")
# AVColorSpace -> swscale matrix name
_MATRIX = {1: "ITU709", 4: "FCC", 5: "ITU601", 6: "ITU601", 7: "SMPTE240M", 9: "BT2020", 10: "BT2020"}


@dataclass(frozen=True)
class KeyframeSpec:
    """A parsed spec: an image path, or a video path with a frame number or a time in seconds."""

    path: str
    frame: Optional[int] = None
    seconds: Optional[Fraction] = None

    @property
    def is_video(self) -> bool:
        return self.frame is not None or self.seconds is not None


def parse_spec(spec: str) -> KeyframeSpec:
    """'a.png' | 'clip.mp4@120' | 'clip.mov@00:00:05.000' | 'clip.mov@5.2s' -> KeyframeSpec."""
    if "@" not in spec or Path(spec).exists():
        return KeyframeSpec(spec)
    path, at = spec.rsplit("@", 1)
    if at.isdigit():
        return KeyframeSpec(path, frame=int(at))
    match = _TIME.match(at)
    if match:
        hours, minutes, seconds = match.groups()
        if int(minutes) >= 60 and hours is not None or Fraction(seconds) >= 60:
            raise InputError(f"keyframe {spec!r}: {at!r} is not a valid time (minutes and seconds below 60)")
        total = Fraction(int(hours or 0) * 3600 + int(minutes) * 60) + Fraction(seconds)
        return KeyframeSpec(path, seconds=total)
    match = _SECONDS.match(at)
    if match:
        return KeyframeSpec(path, seconds=Fraction(match.group(1)))
    raise InputError(f"keyframe {spec!r}: {at!r} is neither a frame number nor a time such as 00:00:05.000")


def load_keyframe(spec: str) -> Keyframe:
    """The keyframe a spec names (module docstring); one InputError line for anything unusable.

    Stable entry point for the CLI and the daemon. `Keyframe.source` is the spec as given;
    `sha256` identifies the decoded content (file bytes for images, pixels for video frames).
    """
    parsed = parse_spec(spec)
    if parsed.is_video:
        return read_video_frame(parsed.path, frame=parsed.frame, seconds=parsed.seconds, source=spec)
    return read_image_file(parsed.path)


def read_image_file(path: str) -> Keyframe:
    """An image file; FFmpeg decodes what OpenCV cannot (EXR, DPX); a video gets a hint to name a frame."""
    # A video named without a frame would be read whole into memory by the image decoder: catch it first.
    if Path(path).suffix.lower() in _VIDEO_SUFFIXES and Path(path).is_file() and _is_video(path):
        raise _name_a_frame(path)
    try:
        return read_image(path)
    except InputError as error:
        if "not a readable image" not in str(error):
            raise
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head == _EXR_MAGIC or head in _DPX_MAGIC:
            return _read_still_with_ffmpeg(path, linear=head == _EXR_MAGIC)
        if _is_video(path):
            raise _name_a_frame(path) from None
        raise


def _name_a_frame(path: str) -> InputError:
    return InputError(f"keyframe {path!r} is a video: name a frame, e.g. {path}@0 or {path}@00:00:01.000")


def _is_video(path: str) -> bool:
    import av

    try:
        with av.open(path) as container:
            name = container.format.name
            return bool(container.streams.video) and name != "image2" and not name.endswith("_pipe")
    except (av.FFmpegError, OSError, UnicodeDecodeError):
        return False


def _read_still_with_ffmpeg(path: str, linear: bool) -> Keyframe:
    import av

    data = Path(path).read_bytes()
    try:
        with av.open(path) as container:
            if container.streams.video:
                _check_stream_size(container.streams.video[0], path)
            frame = next(container.decode(video=0))
            pixels = frame.to_ndarray()
    except (av.FFmpegError, StopIteration, ValueError) as exc:
        raise InputError(f"keyframe {path!r} is a corrupt or unsupported image: {_reason(exc)}") from None
    if pixels.dtype.kind == "f":
        depth = 32
        pixels = pixels.astype(np.float32)
    else:
        depth = 16 if pixels.dtype == np.uint16 else 8
        pixels = pixels.astype(np.float32) / (65535.0 if depth == 16 else 255.0)
    if pixels.ndim == 2:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    pixels = np.clip(np.nan_to_num(pixels), 0.0, 1.0)
    if linear:
        pixels[:, :, :3] = srgb_encode(pixels[:, :, :3])
    return Keyframe(pixels, depth, path, hashlib.sha256(data).hexdigest())


def _check_stream_size(stream, source: str) -> None:
    """Refuse a huge picture from the container's header, before a decoder allocates it."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if width * height > MAX_PIXELS:
        raise ImageTooLarge(f"keyframe {source!r} is {width}x{height}, more than the {MAX_PIXELS:,}-pixel limit")


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 transfer curve: linear light -> display values."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055).astype(np.float32)


def read_video_frame(path: str, frame: Optional[int] = None, seconds: Optional[Fraction] = None,
                     source: Optional[str] = None) -> Keyframe:
    """Decode exactly frame `frame` (from 0) or the frame shown at `seconds` of a video file."""
    import av

    source = source or path
    p = Path(path)
    if not p.is_file():
        raise InputError(f"keyframe {source!r}: {path!r} {'is not a file' if p.exists() else 'does not exist'}")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise InputError(f"keyframe {source!r}: {path!r} has no video stream")
            stream = container.streams.video[0]
            _check_stream_size(stream, source)
            picked = _Seeker(container, stream, path).find(frame, seconds)
            pixels, depth = _to_float(picked)
    except av.FFmpegError as exc:
        raise InputError(f"keyframe {source!r}: {path!r} is a corrupt, truncated or unsupported video ({_reason(exc)})") from None
    digest = hashlib.sha256(np.ascontiguousarray(pixels).tobytes() + repr(pixels.shape).encode()).hexdigest()
    return Keyframe(pixels, depth, source, digest)


class _Seeker:
    """Find one frame by number or time; see the module docstring for why it is exact."""

    def __init__(self, container, stream, path: str):
        self.container, self.stream, self.path = container, stream, path
        self.start = stream.start_time or 0
        self.rate = stream.base_rate or stream.average_rate or stream.guessed_rate
        self.decoder = None
        if stream.codec_context.name == "vp9" and stream.metadata.get("alpha_mode") == "1":
            import av

            self.decoder = av.CodecContext.create("libvpx-vp9", "r")  # FFmpeg's own vp9 drops the alpha plane

    def frames(self):
        if self.decoder is None:
            yield from self.container.decode(self.stream)
            return
        for packet in self.container.demux(self.stream):
            yield from self.decoder.decode(packet)

    def seconds_of(self, f) -> Fraction:
        return (f.pts - self.start) * self.stream.time_base

    def find(self, number: Optional[int], seconds: Optional[Fraction]):
        if number is not None:
            picked = self._by_number(number) if self._regular() else self._by_packet_count(number)
        else:
            if seconds > 0:
                self._seek(self.start + int(seconds / self.stream.time_base))
            picked = self._by_time(seconds)
        if picked is None:  # timestamps did not allow it: decode from the start, counting
            self._seek(self.start)
            picked = self._count(number) if number is not None else self._by_time(seconds, strict=False)
        return picked

    def _seek(self, pts: int) -> None:
        """To the last keyframe at or before `pts`; decoding continues from there."""
        self.container.seek(pts, stream=self.stream, backward=True, any_frame=False)
        if self.decoder is not None:
            self.decoder.flush_buffers()

    def _regular(self) -> bool:
        """Constant frame rate without gaps, as an indexed container (MP4, MOV) declares it."""
        duration = self.stream.duration
        if not (self.stream.frames and duration and self.stream.base_rate):
            return False
        return self.stream.frames == round(duration * self.stream.time_base * self.stream.base_rate)

    def _by_number(self, number: int):
        """Fast path for regular clips: the frame whose timestamp says it is number `number`."""
        rate = self.stream.base_rate
        if number > 0:
            self._seek(self.start + int(Fraction(number) / rate / self.stream.time_base))
        for f in self.frames():
            if f.pts is None:
                return None
            index = round(self.seconds_of(f) * rate)
            if index == number:
                return f
            if index > number:
                return None
        return None

    def _by_packet_count(self, number: int):
        """Any clip: the `number`-th smallest packet timestamp (demuxing only, no decoding), then
        seek to it and decode forward to the frame with exactly that timestamp."""
        reorder_margin = 32  # packets come in decode order; B-frames reorder far less than this
        stamps = []
        for packet in self.container.demux(self.stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return None
            stamps.append(packet.pts)
            if len(stamps) > number + reorder_margin:
                break
        stamps.sort()
        if number >= len(stamps):
            raise InputError(f"frame {number} is past the end of {self.path!r} (it has {len(stamps)} frames)")
        target = stamps[number]
        self._seek(target)
        for f in self.frames():
            if f.pts == target:
                return f
            if f.pts is None or f.pts > target:
                return None
        return None

    def _count(self, number: int):
        count = -1
        for count, f in enumerate(self.frames()):
            if count == number:
                return f
        raise InputError(f"frame {number} is past the end of {self.path!r} (it has {count + 1} frames)")

    def _by_time(self, seconds: Fraction, strict: bool = True):
        previous = None
        for f in self.frames():
            if f.pts is None:
                return None
            if self.seconds_of(f) > seconds:
                if previous is None:
                    return None if strict and seconds > 0 else f
                return previous
            previous = f
        if previous is None:
            return None if strict else self._no_frames()
        duration = 1 / self.rate if self.rate else 0
        if seconds >= self.seconds_of(previous) + duration:
            raise InputError(f"time {float(seconds):.3f}s is past the end of {self.path!r} "
                             f"(last frame at {float(self.seconds_of(previous)):.3f}s)")
        return previous

    def _no_frames(self):
        raise InputError(f"{self.path!r} has no decodable frames")


def _to_float(f) -> tuple[np.ndarray, int]:
    """A decoded frame -> float RGB(A) in [0, 1] and its bit depth (8, or 16 for deeper sources)."""
    components = f.format.components
    alpha = any(c.is_alpha for c in components)
    deep = max(c.bits for c in components) > 8
    target = {(False, False): "rgb24", (True, False): "rgba", (False, True): "rgb48le", (True, True): "rgba64le"}[(alpha, deep)]
    kwargs = {"format": target}
    if not f.format.name.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "gray")):
        matrix = _MATRIX.get(f.colorspace) or ("ITU709" if f.height > 576 else "ITU601")
        kwargs.update(src_colorspace=matrix, dst_colorspace=matrix,
                      src_color_range="JPEG" if f.color_range == 2 or f.format.name.startswith("yuvj") else "MPEG",
                      dst_color_range="JPEG")
    array = f.to_ndarray(**kwargs)
    return array.astype(np.float32) / (65535.0 if deep else 255.0), 16 if deep else 8


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).splitlines()[0][:200]


# -- stdin ------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_keyframes(specs: list[str], size: Optional[tuple[int, int]] = None, stdin=None) -> list[Keyframe]:
    """`load_keyframe` for each spec; every '-' takes the next keyframe from stdin (`read_stdin`)."""
    import sys

    wanted = specs.count("-")
    from_stdin = iter(read_stdin((stdin or sys.stdin.buffer).read(), wanted, size) if wanted else [])
    return [next(from_stdin) if spec == "-" else load_keyframe(spec) for spec in specs]


def read_stdin(data: bytes, count: int, size: Optional[tuple[int, int]] = None) -> list[Keyframe]:
    """`count` keyframes from stdin's bytes: concatenated PNGs, one image of any format, or raw
    frames of `size` (rgb24, rgba or rgb48le, told apart by the byte count)."""
    from latentween.images import decode_image
    from latentween.media.frames import PIPE_FORMATS, from_raw

    if not data:
        raise InputError(f"stdin is empty: expected {count} keyframe{'s' if count > 1 else ''}")
    if data.startswith(_PNG_SIGNATURE):
        parts = _split_pngs(data)
        if len(parts) != count:
            raise InputError(f"stdin holds {len(parts)} PNG image(s), expected {count}")
        return [decode_image(part, f"stdin:{i}") for i, part in enumerate(parts)]
    if size is None:
        if count == 1:
            return [decode_image(data, "stdin")]
        raise InputError("stdin is not a series of PNGs: give --size WxH to read raw rgb24/rgba/rgb48le frames")
    w, h = size
    per_frame, rest = divmod(len(data), count)
    fmt = {w * h * channels * depth // 8: name for name, (channels, depth) in PIPE_FORMATS.items()}.get(per_frame)
    if rest or fmt is None:
        raise InputError(f"stdin has {len(data)} bytes: not {count} raw {w}x{h} rgb24, rgba or rgb48le frame(s)")
    keyframes = []
    for i in range(count):
        chunk = data[i * per_frame:(i + 1) * per_frame]
        array = from_raw(chunk, size, fmt)
        scale = 255.0 if array.dtype == np.uint8 else 65535.0
        keyframes.append(Keyframe(array.astype(np.float32) / scale, 8 if array.dtype == np.uint8 else 16,
                                  f"stdin:{i}", hashlib.sha256(chunk).hexdigest()))
    return keyframes


def _split_pngs(data: bytes) -> list[bytes]:
    """Cut concatenated PNG files at their IEND chunks (PNG chunks: length, type, data, CRC)."""
    parts, start, pos = [], 0, 0
    while pos < len(data):
        if data[pos:pos + 8] != _PNG_SIGNATURE:
            raise InputError(f"stdin: bytes after PNG image {len(parts)} are not another PNG")
        pos += 8
        while True:
            if pos + 8 > len(data):
                raise InputError(f"stdin: PNG image {len(parts)} is truncated")
            length = int.from_bytes(data[pos:pos + 4], "big")
            kind = data[pos + 4:pos + 8]
            pos += 12 + length
            if kind == b"IEND":
                break
        if pos > len(data):
            raise InputError(f"stdin: PNG image {len(parts)} is truncated")
        parts.append(data[start:pos])
        start = pos
    return parts
