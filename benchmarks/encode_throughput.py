"""Encoding throughput: latentween's PyAV writer against the ffmpeg command line, same frames, same settings.

Both encode the same RGB frames (held in memory for PyAV, in a raw file in the page cache for ffmpeg)
with the same encoder options, colour conversion (BT.709, limited range, bicubic chroma filter) and
tags; runs alternate (PyAV, ffmpeg, PyAV, ...) so both see the same machine load, and each side's
median frames per second gives the ratio PyAV / ffmpeg (goal >= 0.9). The encoders' builds differ
(PyAV's wheel vs the system's ffmpeg), which is part of what is being compared.

    python benchmarks/encode_throughput.py [--size 1280x720] [--frames 24] [--repeats 5] [--codecs h264,prores,ffv1]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from latentween.media import encode_video, plan_encode

SUFFIX = {"h264": ".mp4", "prores": ".mov", "prores4444": ".mov", "ffv1": ".mkv", "vp9": ".webm", "av1": ".webm"}


def make_frames(count: int, size: tuple[int, int]) -> list[np.ndarray]:
    """Moving gradients, a moving disk and a little grain: content an encoder has to work on."""
    w, h = size
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    frames = []
    for i in range(count):
        r = 127 + 100 * np.sin((xx + 7 * i) / 53)
        g = 127 + 100 * np.cos((yy - 5 * i) / 41)
        b = 127 + 100 * np.sin((xx + yy + 11 * i) / 97)
        img = np.dstack([r, g, b])
        cx, cy = w * (0.2 + 0.6 * i / max(1, count - 1)), h / 2
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < (h / 6) ** 2] = (230, 40, 40)
        img += rng.normal(0, 4, img.shape)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
    return frames


def ffmpeg_command(ffmpeg: str, raw: Path, out: Path, size, fps: Fraction, codec: str) -> list[str]:
    """The CLI equivalent of what VideoWriter does for `codec` on 8-bit RGB frames."""
    plan = plan_encode(out, alpha=False, deep=False, codec=codec)
    if plan.rgb:
        convert = ["-pix_fmt", plan.pix_fmt, "-colorspace", "rgb", "-color_range", "pc"]
    else:
        convert = ["-vf", f"scale=out_color_matrix=bt709:out_range=tv:flags=bicubic,format={plan.pix_fmt}",
                   "-colorspace", "bt709", "-color_range", "tv"]
    options = []
    for key, value in plan.options.items():
        options += [f"-{key}:v" if key in ("b", "profile") else f"-{key}", value]
    return [ffmpeg, "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
            "-r", str(fps), "-i", str(raw), *convert, "-c:v", plan.codec.encoder, *options,
            "-color_primaries", "bt709", "-color_trc", "bt709", str(out)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--codecs", default="h264,prores,ffv1", help="comma separated: h264, prores, prores4444, ffv1, vp9, av1")
    parser.add_argument("--fps", default="24000/1001")
    args = parser.parse_args()
    ffmpeg = shutil.which("ffmpeg")
    if not ffmpeg:
        print("error: the ffmpeg command is needed (apt-get install ffmpeg)", file=sys.stderr)
        return 2
    import av

    w, h = (int(v) for v in args.size.lower().split("x"))
    fps = Fraction(args.fps)
    frames = make_frames(args.frames, (w, h))
    version = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True).stdout.splitlines()[0]
    print(f"frames: {args.frames} x {w}x{h} rgb24 at {fps} fps; cpus: {os.cpu_count()}")
    print(f"PyAV {av.__version__} (libavcodec {'.'.join(map(str, av.library_versions['libavcodec']))}); {version}")
    print(f"{'codec':<11} {'pix_fmt':<12} {'PyAV fps':>9} {'ffmpeg fps':>11} {'ratio':>6}")
    ratios = []
    with tempfile.TemporaryDirectory(prefix="latentween-bench-") as tmp:
        raw = Path(tmp) / "frames.rgb"
        raw.write_bytes(b"".join(f.tobytes() for f in frames))
        for codec in [c.strip() for c in args.codecs.split(",") if c.strip()]:
            out_pyav, out_cli = Path(tmp) / f"pyav{SUFFIX[codec]}", Path(tmp) / f"cli{SUFFIX[codec]}"
            command = ffmpeg_command(ffmpeg, raw, out_cli, (w, h), fps, codec)
            pyav_s, cli_s = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                info = encode_video(frames, out_pyav, fps, codec=codec)
                pyav_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                subprocess.run(command, check=True)
                cli_s.append(time.perf_counter() - start)
            pyav_fps = args.frames / statistics.median(pyav_s)
            cli_fps = args.frames / statistics.median(cli_s)
            ratios.append(pyav_fps / cli_fps)
            print(f"{codec:<11} {info['pix_fmt']:<12} {pyav_fps:>9.1f} {cli_fps:>11.1f} {ratios[-1]:>6.2f}")
    print(f"geometric mean ratio PyAV/ffmpeg: {statistics.geometric_mean(ratios):.2f} (goal >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
