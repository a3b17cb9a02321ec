"""`latentween morph A B --frames N --out DIR|FILE|-`: make the in-between frames in this process.

A plain folder gets the engine's own files (frames, manifest, resume state). A video, an animation, a
pipe, or a folder with another --pattern/--start-number or holds is fed in order from a work folder
(cli.delivery and media.deliver; for a video, animation or pipe it is in the user cache, named by the job, see
latentween.workcache). Without --seed, a job run before takes the seed of its last run there.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.errors import InputError
from latentween.settings import MorphSettings, OutputSettings, RuntimeSettings, parse_size


def register(sub) -> None:
    parser = sub.add_parser("morph", help="make in-between frames of two keyframes",
                            description="Make in-between frames of two keyframes and write DIR/frame_00000.png ... and DIR/manifest.json, "
                                        "or a video file, or raw frames on stdout (--out -).")
    parser.add_argument("keyframes", nargs=2, metavar="KEYFRAME",
                        help="the first and the last frame: image files, clip.mp4@FRAME, clip.mov@HH:MM:SS.mmm, "
                             "or - to read from stdin (two PNGs, or raw frames with --size)")
    parser.add_argument("--out", required=True, metavar="DIR|FILE|-",
                        help="output folder (created if missing), video file (.mp4 .m4v .mov .mkv .webm), animation "
                             "(.gif .webp) or - (raw frames on stdout)")
    parser.add_argument("--work", metavar="DIR", help="with a video, animation or pipe --out: where the engine's frames are "
                                                      "kept for resuming (default: in the user cache, named by the job; "
                                                      "`latentween cache clean` removes them)")
    parser.add_argument("--clean", action="store_true", help="delete the work folder after success")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--server", metavar="URL", help="run the job on a latentween daemon (as `latentween submit --out DIR`) "
                                                        "instead of in this process")
    parser.add_argument("--token", help="with --server: the daemon's bearer token (default: $LATENTWEEN_TOKEN)")
    parser.add_argument("--cancel-on-interrupt", action="store_true",
                        help="with --server: Ctrl-C cancels the job (default: ask on a terminal, else leave it running)")
    add_model_arguments(parser, MorphSettings, title="job settings")
    add_model_arguments(parser, OutputSettings, title="output")
    add_model_arguments(parser, RuntimeSettings, title="runtime")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from latentween.media.read import load_keyframes
    from latentween.morph import run_morph
    from latentween.progress import FrameProgress, ProgressBar
    from latentween.workcache import reuse_seed

    if args.server:
        return _on_daemon(args)
    settings = model_from_args(MorphSettings, args)
    runtime = model_from_args(RuntimeSettings, args)
    output = model_from_args(OutputSettings, args)
    direct = _engine_folder_is_output(args.out, output)  # refuses an unsupported suffix before any work
    keyframes = load_keyframes(args.keyframes, parse_size(settings.size) if settings.size else None)
    if not direct:
        return _deliver(args, keyframes, settings, runtime, output)
    settings = reuse_seed(settings, keyframes, [Path(args.out)])
    bar = ProgressBar("morph", enabled=False if args.quiet else None, unit="frame")
    shown = FrameProgress(bar, args.out, settings.output_count())
    existed = Path(args.out).exists()
    try:
        manifest = run_morph(keyframes, args.out, settings, runtime, progress=shown.progress, on_frame=shown.on_frame)
    except BaseException:
        if not existed and not any(Path(args.out).glob("frame_*.png")):
            shutil.rmtree(args.out, ignore_errors=True)  # a first run that made nothing leaves nothing
        raise
    finally:
        bar.close()
    frames = len(manifest["frames"])
    print(f"wrote {frames} frames to {args.out} (seed {settings.seed})", file=sys.stderr)
    return 0


def _engine_folder_is_output(out: str, output: OutputSettings) -> bool:
    """A folder with the engine's own naming and no holds: the engine writes it directly."""
    from latentween.media.codecs import output_kind

    if output_kind(out) != "folder":
        return False
    default = OutputSettings()
    if (output.codec, output.crf, output.pix_fmt) != (None, None, None):
        raise InputError("--codec, --crf and --pix-fmt apply to video files; --out names a folder")
    return (output.pattern, output.start_number, output.hold_start, output.hold_end) == \
        (default.pattern, default.start_number, 0, 0)


def _deliver(args, keyframes, settings, runtime, output) -> int:
    """A video, a pipe or a renamed/held sequence: the engine works in a work folder, frames go out in order."""
    from latentween.cli.delivery import deliver_command
    from latentween.media.deliver import Segment, job_folder, morph_timeline, output_format
    from latentween.progress import ProgressBar

    size, alpha, deep = output_format(keyframes, settings.size)
    folder, settings = job_folder(args.out, args.work, "morph", keyframes, settings)
    segment = Segment(keyframes, settings, folder)
    timeline = morph_timeline(segment, output)
    bar = ProgressBar("morph", enabled=False if args.quiet else None)
    print(deliver_command([segment], timeline, args.out, output, folder, args.clean, bar, size=size,
                          alpha=alpha, deep=deep, runtime=runtime, progress_for=lambda _: bar), file=sys.stderr)
    return 0


def _on_daemon(args: argparse.Namespace) -> int:
    """`morph --server URL`: the same job through the daemon, written to --out as in this process."""
    from latentween.cli import submit

    args.wait, args.server_paths = True, False
    return submit.run(args)
