"""Running the engine for `morph` and `render` when their output is fed in order (a video, an animation,
a pipe, a renamed or held sequence): the segments run here, in this process, and media.deliver only
writes what they make. `render --ray` swaps `deliver` for latentween.farm.render.deliver_on_ray.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

from latentween.media.deliver import Segment, finish, pipe_hint, write_in_order
from latentween.media.ordered import OrderedSink
from latentween.media.writers import claimed_stdout, open_writer
from latentween.settings import OutputSettings, RuntimeSettings


def deliver(segments: Sequence[Segment], timeline: Sequence[Path], out: str, output: OutputSettings, *,
            size: tuple[int, int], alpha: bool, deep: bool, runtime: RuntimeSettings,
            progress_for: Optional[Callable[[int], Callable[[dict], None]]] = None,
            on_write: Optional[Callable[[int], None]] = None, stdout=None, manager=None):
    """Run every segment and write `timeline` to `out` in order as frames become final.

    Returns what the writer's close() returns (the output path, or None for a pipe). On any error
    or interrupt the partial video is deleted; engine folders and written PNGs stay for a re-run.
    With out='-' and no `stdout`, frames go to fd 1 and everything else printed meanwhile to stderr.
    """
    from latentween.models import ModelManager
    from latentween.morph import run_morph

    if out == "-" and stdout is None:
        with claimed_stdout() as stream:
            return deliver(segments, timeline, out, output, size=size, alpha=alpha, deep=deep, runtime=runtime,
                           progress_for=progress_for, on_write=on_write, stdout=stream, manager=manager)
    def produce(sink: OrderedSink) -> None:
        nonlocal manager
        for number, segment in enumerate(segments):
            if manager is None and not segment.finished():
                manager = ModelManager(runtime)  # one model for all segments, loaded only if one needs it
            watch = sink.watch(segment.folder, segment.count, progress_for(number) if progress_for else None,
                               segment.key)
            run_morph(segment.keyframes, segment.folder, segment.settings, runtime, manager=manager,
                      progress=watch.progress, on_frame=watch.on_frame)
            watch.finished()

    return write_in_order(open_writer(out, size, output, alpha=alpha, deep=deep, stdout=stdout), timeline, on_write,
                          produce)


def deliver_command(segments: Sequence[Segment], timeline: Sequence[Path], out: str, output: OutputSettings,
                    root: Path, clean: bool, bar, via: Optional[Callable] = None, **kwargs) -> str:
    """`deliver` (or `via`, a function with its signature: latentween.farm.render.deliver_on_ray) as the
    CLI commands run it: the progress bar is closed either way; returns the one line to print on success."""
    try:
        (via or deliver)(segments, timeline, out, output, **kwargs)
    finally:
        bar.close()
    line = finish(out, len(timeline), segments[0].settings.seed, root, clean)
    return line + (pipe_hint(kwargs["size"], output) if out == "-" else "")
