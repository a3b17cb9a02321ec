"""Helpers for the media tests: clips whose frames say their own number, and Debian's ffmpeg as a peer."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest


def numbered_frame(i: int, size: int = 64) -> np.ndarray:
    """uint8 RGB frame whose top band spells `i` in 8 black/white blocks (survives lossy codecs)."""
    img = np.full((size, size, 3), 128, np.uint8)
    block = size // 8
    for bit in range(8):
        img[:size // 4, bit * block:(bit + 1) * block] = 255 if (i >> bit) & 1 else 0
    img[size // 4:] = (37 * i) % 256
    return img


def frame_number(pixels: np.ndarray) -> int:
    """Read back what `numbered_frame` spelled; pixels float in [0, 1] or uint8."""
    values = pixels * 255 if pixels.dtype.kind == "f" else pixels
    size = pixels.shape[1]
    block = size // 8
    return sum(1 << bit for bit in range(8) if values[size // 8, bit * block + block // 2, 0] > 128)


def make_clip(path: Path, encoder: str, pix_fmt: str, count: int = 60, rate: Fraction = Fraction(24000, 1001),
              gop: int = 12, options: dict | None = None) -> Path:
    """A clip of numbered frames with a keyframe every `gop` frames, so seeking has to decode forward."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=rate)
        stream.width = stream.height = 64
        stream.pix_fmt = pix_fmt
        stream.codec_context.gop_size = gop
        stream.options = dict(options or {})
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24").reformat(format=pix_fmt)
            frame.pts, frame.time_base = i, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="session")
def ffmpeg_peer() -> dict:
    """Paths of Debian's ffmpeg and ffprobe (installed here when missing and we may; never skipped)."""
    if not (shutil.which("ffmpeg") and shutil.which("ffprobe")) and shutil.which("apt-get") and os.geteuid() == 0:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "ffmpeg"], env=env, capture_output=True)
    tools = {name: shutil.which(name) for name in ("ffmpeg", "ffprobe")}
    if not all(tools.values()):
        pytest.fail("Debian's ffmpeg/ffprobe are needed as a test peer: apt-get install ffmpeg (.ci/run does)")
    return tools


def ffprobe(tools: dict, path: Path) -> dict:
    """The first video stream as ffprobe reports it, frames counted by decoding."""
    out = subprocess.run([tools["ffprobe"], "-v", "error", "-select_streams", "v:0", "-count_frames",
                          "-show_entries", "stream", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)["streams"][0]


def decode_all(path: Path, alpha: bool = False) -> tuple[list[np.ndarray], object]:
    """Every frame of a video through PyAV as uint8/uint16 RGB(A), plus the stream."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.codec_context.name == "vp9" and alpha:
            decoder = av.CodecContext.create("libvpx-vp9", "r")
            raw = [f for p in container.demux(stream) for f in decoder.decode(p)]
        else:
            raw = list(container.decode(stream))
        deep = max(c.bits for c in raw[0].format.components) > 8
        fmt = {(False, False): "rgb24", (True, False): "rgba", (False, True): "rgb48le", (True, True): "rgba64le"}[(alpha, deep)]
        return [f.to_ndarray(format=fmt, src_colorspace="ITU709", dst_colorspace="ITU709") for f in raw], stream
