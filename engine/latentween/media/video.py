"""Encoded video through PyAV: frames in order in, one finished file out.

The file is written under a hidden temporary name beside the target and renamed when complete, so
a killed render never leaves a half file under the real name. Every file is tagged BT.709 (primaries,
transfer, matrix); YUV files are limited range and converted with the BT.709 matrix, RGB ones (FFV1)
full range. Frames without alpha support in the codec are composited over black.
"""
from __future__ import annotations

import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Optional, Union

import numpy as np

from latentween.errors import InputError
from latentween.media.codecs import EncodePlan, plan_encode
from latentween.media.frames import conform, read_frame

log = logging.getLogger("latentween.media")

BT709 = 1  # AVCOL_PRI_BT709 = AVCOL_TRC_BT709 = AVCOL_SPC_BT709
RANGE_MPEG, RANGE_JPEG, SPC_RGB = 1, 2, 0
Frame = Union[np.ndarray, str, os.PathLike]


class VideoWriter:
    """Encode uint8/uint16 RGB(A) frames of one size into `path`; `close()` finishes, `abort()` discards."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], fps: Fraction | str | float, *,
                 alpha: bool = False, deep: bool = False, codec: Optional[str] = None,
                 crf: Optional[int] = None, pix_fmt: Optional[str] = None):
        import av

        from latentween.settings import parse_fps

        self.path = Path(path)
        self.size = size
        self.fps = fps if isinstance(fps, Fraction) else parse_fps(str(fps))
        self.plan: EncodePlan = plan_encode(self.path, alpha=alpha, deep=deep, codec=codec, crf=crf, pix_fmt=pix_fmt)
        if alpha and not self.plan.alpha:
            log.warning("%s cannot keep alpha: frames are composited over black", self.plan.pix_fmt)
        self.channels = 4 if self.plan.alpha else 3
        self.bit_depth = 16 if deep else 8
        w, h = size
        self.coded_size = (w + (w % 2 if self.plan.pad_even[0] else 0), h + (h % 2 if self.plan.pad_even[1] else 0))
        if self.coded_size != size:
            log.warning("%s: %dx%d frames are padded to %dx%d (%s %s needs even sides); the added edge repeats the "
                        "last column/row", self.path.name, w, h, *self.coded_size, self.plan.codec.encoder,
                        self.plan.pix_fmt)
        self.count = 0
        if not self.path.parent.is_dir():
            raise InputError(f"output folder {str(self.path.parent)!r} does not exist")
        self._tmp = self.path.with_name(f".{self.path.name}.part")
        try:
            self._container = av.open(str(self._tmp), "w", format=self.plan.muxer)
        except (OSError, av.FFmpegError) as exc:
            raise InputError(f"cannot write {str(self.path)!r}: {exc}") from exc
        try:
            self._stream = self._open_stream()
        except BaseException:
            self.abort()
            raise

    def _open_stream(self):
        if "svt" in self.plan.codec.encoder:  # SVT-AV1 prints its whole configuration on stderr otherwise
            os.environ.setdefault("SVT_LOG", "1")
        stream = self._container.add_stream(self.plan.codec.encoder, rate=self.fps)
        stream.width, stream.height = self.coded_size
        stream.pix_fmt = self.plan.pix_fmt
        stream.options = dict(self.plan.options)
        cc = stream.codec_context
        cc.time_base = 1 / self.fps
        cc.thread_count = 0  # auto, as the ffmpeg CLI does for encoders
        cc.color_primaries, cc.color_trc = BT709, BT709
        cc.colorspace = SPC_RGB if self.plan.rgb else BT709
        cc.color_range = RANGE_JPEG if self.plan.rgb else RANGE_MPEG
        return stream

    def write(self, frame: Frame) -> None:
        """Append one frame (an array or a PNG path); converted to the file's channels and depth."""
        import av

        pixels = read_frame(frame) if not isinstance(frame, np.ndarray) else frame
        if (pixels.shape[1], pixels.shape[0]) != self.size:
            raise InputError(f"frame {self.count} is {pixels.shape[1]}x{pixels.shape[0]}, the video {self.size[0]}x{self.size[1]}")
        pixels = conform(pixels, self.channels, self.bit_depth)
        pad_w, pad_h = self.coded_size[0] - self.size[0], self.coded_size[1] - self.size[1]
        if pad_w or pad_h:
            pixels = np.pad(pixels, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        source = {(3, 8): "rgb24", (4, 8): "rgba", (3, 16): "rgb48le", (4, 16): "rgba64le"}[(self.channels, self.bit_depth)]
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format=source)
        if self.plan.rgb:
            video = video.reformat(format=self.plan.pix_fmt)
            video.colorspace, video.color_range = SPC_RGB, RANGE_JPEG
        else:
            video = video.reformat(format=self.plan.pix_fmt, dst_colorspace="ITU709", dst_color_range="MPEG",
                                   interpolation="BICUBIC")
        video.color_primaries, video.color_trc = BT709, BT709
        video.pts, video.time_base = self.count, 1 / self.fps
        try:
            self._container.mux(self._stream.encode(video))
        except av.FFmpegError as exc:
            raise InputError(f"encoding {str(self.path)!r} failed at frame {self.count}: {exc}") from exc
        self.count += 1

    def close(self) -> Path:
        """Flush the encoder, finish the container and move it to its real name."""
        if self.count == 0:
            self.abort()
            raise InputError(f"no frames to write to {str(self.path)!r}")
        self._container.mux(self._stream.encode())
        self._container.close()
        with open(self._tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(self._tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Stop and delete the partial file (the real name is never touched)."""
        try:
            self._container.close()
        except Exception:  # closing a broken container can fail again; the file goes anyway
            pass
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def encode_video(frames: Iterable[Frame], out_path: str | os.PathLike, fps: Fraction | str | float = 24,
                 codec: Optional[str] = None, crf: Optional[int] = None, pix_fmt: Optional[str] = None) -> dict:
    """Encode an ordered sequence of frames (PNG paths or uint8/uint16 RGB(A) arrays) into one file.

    The container comes from the suffix of `out_path` (.mp4 .m4v .mov .mkv .webm) and the codec from
    it too unless `codec` names one of h264, prores, prores4444, ffv1, vp9, av1. Alpha and 16-bit
    depth are kept where the codec can, decided from the first frame. Returns facts about the file:
    {"path", "codec", "encoder", "pix_fmt", "frames", "width", "height", "fps", "alpha"}.
    Raises InputError (one line) for a bad combination, an unreadable frame or a failed write.
    """
    it = iter(frames)
    try:
        first = next(it)
    except StopIteration:
        raise InputError(f"no frames to write to {str(out_path)!r}") from None
    pixels = first if isinstance(first, np.ndarray) else read_frame(first)
    size = (pixels.shape[1], pixels.shape[0])
    with VideoWriter(out_path, size, fps, alpha=pixels.shape[2] == 4, deep=pixels.dtype == np.uint16,
                     codec=codec, crf=crf, pix_fmt=pix_fmt) as writer:
        writer.write(pixels)
        for frame in it:
            writer.write(frame)
    return {"path": str(writer.path), "codec": writer.plan.codec.name, "encoder": writer.plan.codec.encoder,
            "pix_fmt": writer.plan.pix_fmt, "frames": writer.count, "width": size[0], "height": size[1],
            "fps": str(writer.fps), "alpha": writer.plan.alpha}
