"""`latentween morph A B --frames N --out DIR`: make the in-between frames in this process."""
from __future__ import annotations

import argparse
import sys

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.settings import MorphSettings, RuntimeSettings


def register(sub) -> None:
    parser = sub.add_parser("morph", help="make in-between frames of two keyframes",
                            description="Make in-between frames of two keyframes and write DIR/frame_00000.png ... and DIR/manifest.json.")
    parser.add_argument("keyframes", nargs=2, metavar="KEYFRAME", help="the first and the last frame (image files)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    add_model_arguments(parser, MorphSettings, title="job settings")
    add_model_arguments(parser, RuntimeSettings, title="runtime")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from latentween.images import read_image
    from latentween.morph import run_morph
    from latentween.progress import ProgressBar

    settings = model_from_args(MorphSettings, args).with_seed()
    runtime = model_from_args(RuntimeSettings, args)
    keyframes = [read_image(path) for path in args.keyframes]
    bar = ProgressBar("morph", enabled=False if args.quiet else None)
    try:
        manifest = run_morph(keyframes, args.out, settings, runtime, progress=bar)
    finally:
        bar.close()
    frames = len(manifest["frames"])
    print(f"wrote {frames} frames to {args.out} (seed {settings.seed})", file=sys.stderr)
    return 0
