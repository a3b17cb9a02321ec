"""From the engine's frame folders to what the user asked for: a PNG sequence, a video or a pipe.

Each morph (one pair of keyframes) runs into its own engine folder, which keeps its frames, latents
and manifest: that folder is what makes a re-run resume. The output is fed in order from those
folders by an OrderedSink while the engine works, so a video grows as the render goes on. Running the
engine is not this module's: latentween.cli.delivery runs the segments and hands their frames here.

Work folders (`job_folder`): `--work DIR` when given; for a folder output, `DIR/.latentween/frames`
(morph) or `DIR/.latentween/render`; otherwise (a video, an animation, a pipe) a folder in the user
cache named by the job, one sub-folder per seed (latentween.workcache), so another format or a re-run
finds the frames without running the model.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional, Sequence

from latentween.images import Keyframe
from latentween.media.codecs import output_kind
from latentween.media.ordered import OrderedSink
from latentween.settings import MorphSettings, OutputSettings, parse_size


@dataclass
class Segment:
    """One run of the engine: two keyframes morphed into `folder` (frame_00000.png ...)."""

    keyframes: list[Keyframe]
    settings: MorphSettings
    folder: Path

    def frame(self, index: int) -> Path:
        from latentween.outputs import OutputFolder

        return OutputFolder(self.folder).frame_path(index)

    @property
    def count(self) -> int:
        return self.settings.output_count()

    @cached_property
    def key(self) -> Optional[str]:
        """The job key run_morph writes into this folder's manifest (None until the seed is fixed); read
        once: it hashes the job and reads the model folder's recommendations."""
        from latentween.morph import effective_settings, job_key

        return None if self.settings.seed is None else job_key(self.keyframes, effective_settings(self.settings))

    def finished(self) -> bool:
        """The folder holds this job complete (a re-run or another format): no model is needed."""
        from latentween.morph import finished_manifest

        return self.key is not None and finished_manifest(self.folder, self.key, self.count) is not None


def job_folder(out: str, work: Optional[str], kind: str, keyframes: Sequence[Keyframe],
               settings: MorphSettings) -> tuple[Path, MorphSettings]:
    """(root, settings with their seed) of a `morph` or `render` job writing to `out` (module
    docstring). Without --seed, the job takes the seed of its newest run in that folder, if any."""
    from latentween.workcache import family_seeds, morph_family, reuse_seed, seed_folder

    def first(root: Path) -> Path:  # the folder whose manifest tells the seed: a render's first transition
        return root if kind == "morph" else root / "transition_000"

    if work or output_kind(out) == "folder":
        root = Path(work) if work else Path(out) / ".latentween" / ("frames" if kind == "morph" else "render")
        return root, reuse_seed(settings, keyframes[:2], [first(root)])
    family = morph_family(keyframes, settings, kind)
    settings = reuse_seed(settings, keyframes[:2], [first(folder) for folder in family_seeds(family)])
    return seed_folder(family, settings.seed), settings


def output_format(keyframes: Sequence[Keyframe], size: Optional[str]) -> tuple[tuple[int, int], bool, bool]:
    """(size, alpha, 16-bit) of the output, by the engine's rules (latentween.images docstring)."""
    return (parse_size(size) if size else keyframes[0].size,
            any(k.has_alpha for k in keyframes), any(k.bit_depth != 8 for k in keyframes))


def morph_timeline(segment: Segment, output: OutputSettings) -> list[Path]:
    """One morph's frames in order, with the holds of `output`."""
    from latentween.easing import with_holds

    return with_holds([segment.frame(i) for i in range(segment.count)], output.hold_start, output.hold_end)


def render_timeline(segments: Sequence[Segment], hold: int) -> list[Path]:
    """Keyframe 1 for `hold` frames, transition 1's in-betweens, keyframe 2 for `hold` frames, ..."""
    timeline: list[Path] = []
    for i, segment in enumerate(segments):
        timeline += [segment.frame(0)] * hold
        timeline += [segment.frame(j) for j in range(1, segment.count - 1)]
    if segments:
        timeline += [segments[-1].frame(segments[-1].count - 1)] * hold
    return timeline


def write_in_order(writer, timeline: Sequence[Path], on_write: Optional[Callable[[int], None]],
                   produce: Callable[[OrderedSink], None]):
    """Let `produce` make the frames while `writer` takes `timeline` in order; returns what the
    writer's close() returns. On any error or interrupt the partial output is deleted."""
    sink = OrderedSink(timeline, writer, on_write=on_write)
    try:
        produce(sink)
        if not sink.complete:
            raise RuntimeError(f"only {sink.position} of {len(sink.timeline)} frames became final")
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def pipe_hint(size: tuple[int, int], output: OutputSettings) -> str:
    """What the reading program needs to know about raw frames, as ffmpeg's input options."""
    return f"; read them with ffmpeg -f rawvideo -pix_fmt {output.pipe} -s {size[0]}x{size[1]} -r {output.fps} -i -"


def finish(out: str, frames: int, seed: int, root: Path, clean: bool) -> str:
    """Remove the work folder if asked and say what was written (one line for stderr)."""
    import shutil

    if clean:
        shutil.rmtree(root, ignore_errors=True)
    where = "stdout" if out == "-" else out
    kept = "" if clean else f"; frames kept in {root} for resuming"
    return f"wrote {frames} frames to {where} (seed {seed}){kept}"
