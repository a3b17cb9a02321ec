"""`make demo`: the main job on the keyframes in samples/, with the toy model shipped in the package.

Writes a 17-frame morph between samples/toy_a.png and samples/toy_b.png as a PNG sequence and as an
H.264 video, and says where they are. No network and no GPU needed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the demo runs: the settings that do best in the toy world's evaluation (README, "Quality").
DEMO_SETTINGS = ["--model", "toy", "--frames", "17", "--candidates", "1", "--seed", "7", "--guidance", "1",
                 "--align", "auto", "--fps", "12"]


def main(argv: list[str] | None = None) -> int:
    from latentween.cli import main as cli

    parser = argparse.ArgumentParser(prog="python -m latentween.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    frames, video = out / "frames", out / "morph.mp4"
    out.mkdir(parents=True, exist_ok=True)  # the CLI refuses to invent a video's folder; the demo owns this one
    keyframes = [str(ROOT / "samples" / "toy_a.png"), str(ROOT / "samples" / "toy_b.png")]
    code = cli(["morph", *keyframes, *DEMO_SETTINGS, "--out", str(video), "--work", str(frames)])
    if code == 0:
        print(f"\ndemo done:\n  frames: {frames}/frame_00000.png ... frame_00016.png (+ manifest.json)\n"
              f"  video:  {video}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
