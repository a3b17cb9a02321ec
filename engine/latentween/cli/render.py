"""`latentween render K1 K2 K3 ... --transition N --hold H --out film.mp4`: morph through every keyframe.

K keyframes give K*hold + (K-1)*transition frames: each keyframe is shown for `hold` frames, and each
pair of neighbours gets `transition` in-between frames. Keyframes may be image files or video@frame;
the output is a folder (PNG sequence), a video file (codec from the suffix), an animation or '-' (raw
pipe). Re-running the same command resumes from the frames already on disk, and the same render to
another format reuses them: without --seed, a render run before takes the seed of its last run.
"""
from __future__ import annotations

import argparse
import sys

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.errors import InputError
from latentween.settings import MAX_FRAMES, MorphSettings, OutputSettings, RuntimeSettings

MORPH_EXCLUDE = ("frames", "fractions")  # set per transition from --transition
OUTPUT_EXCLUDE = ("hold_start", "hold_end")  # --hold covers every keyframe


def register(sub) -> None:
    parser = sub.add_parser("render", help="morph through several keyframes into one video or sequence",
                            description=__doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("keyframes", nargs="+", metavar="KEYFRAME",
                        help="keyframes in order: image files, clip.mp4@FRAME, clip.mov@HH:MM:SS.mmm or - (stdin)")
    parser.add_argument("--out", required=True, metavar="DIR|FILE|-",
                        help="folder (PNG sequence), video file (.mp4 .m4v .mov .mkv .webm) or - (raw frames on stdout)")
    parser.add_argument("--transition", type=int, default=16, metavar="FRAMES", help="in-between frames per transition (default: 16)")
    parser.add_argument("--hold", type=int, default=1, metavar="FRAMES", help="frames each keyframe is shown (default: 1)")
    parser.add_argument("--work", metavar="DIR", help="where the engine's frames are kept for resuming (default: DIR/.latentween "
                                                      "for a folder --out, else in the user cache, named by the job; "
                                                      "`latentween cache clean` removes them)")
    parser.add_argument("--clean", action="store_true", help="delete the work folder after a successful render")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    farm = parser.add_argument_group("Ray cluster (docs/farm.md; needs pip install 'latentween[ray]')")
    farm.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                      help="run the transitions in parallel on a Ray cluster: ADDRESS is auto or HOST:PORT; without "
                           "it, the cluster this machine belongs to, else a new local one. Same output as without --ray")
    farm.add_argument("--ray-actors", type=int, default=None, metavar="N",
                      help="actors, each keeping the model loaded (default: one per GPU of the cluster, else 1)")
    farm.add_argument("--shared-dir", metavar="DIR", default=None,
                      help="a folder every Ray node sees at this path: the work folder goes there and actors write "
                           "frames into it (default: frames travel back as PNG bytes)")
    add_model_arguments(parser, MorphSettings, exclude=MORPH_EXCLUDE, title="job settings")
    add_model_arguments(parser, OutputSettings, exclude=OUTPUT_EXCLUDE, title="output")
    add_model_arguments(parser, RuntimeSettings, title="runtime")
    parser.set_defaults(run=run)


class RenderProgress:
    """One bar for the whole render: engine steps summed over transitions, frames written beside."""

    def __init__(self, bar, transitions: int, frames: int):
        self.bar, self.transitions, self.frames = bar, transitions, frames
        self.totals: dict[int, int] = {}
        self.done: dict[int, int] = {}
        self.written = 0

    def for_transition(self, number: int):
        def update(event: dict) -> None:
            self.totals[number] = event.get("total") or 0
            self.done[number] = event.get("done") or 0
            self._show(number)
        return update

    def frame_written(self, position: int) -> None:
        self.written = position
        self._show(max(self.totals, default=0))

    def _show(self, number: int) -> None:
        known = sum(self.totals.values())
        average = known / len(self.totals) if self.totals else 0
        total = known + average * (self.transitions - len(self.totals))
        self.bar({"done": sum(self.done.values()), "total": max(1, round(total)),
                  "stage": f"transition {number + 1}/{self.transitions}", "frames": f"{self.written}/{self.frames}"})


def run(args: argparse.Namespace) -> int:
    from latentween.cli.delivery import deliver_command
    from latentween.media.deliver import Segment, job_folder, output_format, render_timeline
    from latentween.media.read import load_keyframes
    from latentween.progress import ProgressBar
    from latentween.settings import parse_size

    # 1. Check inputs before anything is loaded or written
    if len(args.keyframes) < 2:
        raise InputError("render needs at least two keyframes")
    if not 1 <= args.transition <= MAX_FRAMES - 2:
        raise InputError(f"--transition must be within 1..{MAX_FRAMES - 2}, got {args.transition}")
    if not 0 <= args.hold <= MAX_FRAMES:
        raise InputError(f"--hold must be within 0..{MAX_FRAMES}, got {args.hold}")
    base = model_from_args(MorphSettings, args, frames=args.transition + 2)
    # Files naming points of one pair of keyframes cannot serve every transition of a render.
    if getattr(base, "pose", "none") not in ("none", "auto"):
        raise InputError("--pose with files names one pair of keyframes: render takes --pose auto or none")
    if getattr(base, "points", None):
        raise InputError("--points names one pair of keyframes: use morph for each pair")
    output = model_from_args(OutputSettings, args)
    runtime = model_from_args(RuntimeSettings, args)
    keyframes = load_keyframes(args.keyframes, parse_size(base.size) if base.size else None)

    # 2. One size for every transition: --size, or the first keyframe's
    size, alpha, deep = output_format(keyframes, base.size)
    settings = base.model_copy(update={"size": f"{size[0]}x{size[1]}"})
    if args.ray is None and (args.ray_actors is not None or args.shared_dir):
        raise InputError("--ray-actors and --shared-dir go with --ray")
    if args.ray_actors is not None and args.ray_actors < 1:
        raise InputError(f"--ray-actors must be at least 1, got {args.ray_actors}")
    root, settings = job_folder(args.out, args.shared_dir or args.work, "render", keyframes, settings)
    segments = [Segment([a, b], settings, root / f"transition_{i:03d}")
                for i, (a, b) in enumerate(zip(keyframes, keyframes[1:]))]
    timeline = render_timeline(segments, args.hold)
    if not timeline:
        raise InputError("nothing to render: --hold 0 and no in-between frames")

    # 3. Render, writing frames in order as they become final
    bar = ProgressBar("render", enabled=False if args.quiet else None)
    progress = RenderProgress(bar, len(segments), len(timeline))
    common = dict(size=size, alpha=alpha, deep=deep, runtime=runtime, progress_for=progress.for_transition,
                  on_write=progress.frame_written)
    if args.ray is not None:
        from latentween.farm.render import deliver_on_ray

        common.update(via=deliver_on_ray, address=args.ray or None, actors=args.ray_actors, shared=bool(args.shared_dir))
    print(deliver_command(segments, timeline, args.out, output, root, args.clean, bar, **common),
          file=sys.stderr)
    return 0
