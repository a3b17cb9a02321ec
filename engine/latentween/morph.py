"""One morph job from keyframes to a folder of frames and a manifest; used by the CLI and the daemon.

The folder gets frame_00000.png ... (keyframes included) and manifest.json, each written atomically
as soon as it is final, plus .latentween/ with each finished frame's latent. Re-running the same job
into the same folder resumes: finished frames are kept and, since noise is seeded per frame and the
unfinished chunks run again whole, the rest come out exactly as in an uninterrupted run (in the same
environment; the manifest's `reproducibility` says what that covers).
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from latentween import __version__
from latentween import lora
from latentween.errors import InputError
from latentween.images import Keyframe, composite_rgb, encode_png, fit, resize, to_integer, work_size
from latentween.outputs import FRAME_PATTERN, STATE_DIR, OutputFolder  # noqa: F401 (imported from here too)
from latentween.settings import MorphSettings, RuntimeSettings, parse_size
from latentween.takes import pending_take, plan_takes

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """Keyframes fitted to the output: float (H, W, C) arrays plus the output's format."""

    fitted: list[np.ndarray]
    size: tuple[int, int]
    channels: int
    bit_depth: int


def prepare_keyframes(keyframes: Sequence[Keyframe], settings: MorphSettings) -> Prepared:
    size = parse_size(settings.size) if settings.size else keyframes[0].size
    channels = 4 if any(k.has_alpha for k in keyframes) else 3
    bit_depth = 8 if all(k.bit_depth == 8 for k in keyframes) else 16
    fitted = []
    for k in keyframes:
        pixels = k.pixels
        if channels == 4 and not k.has_alpha:
            pixels = np.dstack([pixels, np.ones(pixels.shape[:2], np.float32)])
        fitted.append(fit(pixels, size, settings.fit))
    return Prepared(fitted, size, channels, bit_depth)


# Settings added after jobs had keys: left out of the key while at their default, so a job that does not
# use them keeps the key (and the resumable folders and caches) it had before they existed.
KEY_WHEN_SET = ("takes", "true_cfg", "consistency_weight", "appearance")


def job_key(keyframes: Sequence[Keyframe], settings: MorphSettings, extra: Optional[dict] = None) -> str:
    """Identity of a job's result: inputs' content and every pixel-changing setting (KEY_WHEN_SET aside)."""
    fields = MorphSettings.model_fields
    unused = {name for name in KEY_WHEN_SET if getattr(settings, name) == fields[name].get_default(call_default_factory=True)}
    dumped = settings.model_dump(exclude=unused or None)
    payload = {"inputs": [k.sha256 for k in keyframes], "settings": dumped, "extra": extra or {}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def base_key(keyframes: Sequence[Keyframe], settings: MorphSettings) -> str:
    """The job apart from its takes: re-rolls of one job share it, so they reuse each other's frames."""
    return job_key(keyframes, settings.model_copy(update={"takes": {}}))


def effective_settings(settings: MorphSettings) -> MorphSettings:
    """The settings a job runs with: the user's, filled from the preset and the model folder (run_morph)."""
    from latentween.models import read_recommendations, resolve_model

    return settings.with_defaults(read_recommendations(resolve_model(settings.model)))


def finished_manifest(out_dir: str | Path, key: str, count: int) -> Optional[dict]:
    """The manifest of `out_dir` if it holds this job (`key`) complete, every frame file present."""
    folder = OutputFolder(out_dir)
    manifest = folder.read_manifest()
    if not manifest or manifest.get("job_key") != key or manifest.get("status") != "complete":
        return None
    if len(manifest.get("frames", [])) != count or not all(folder.frame_path(i).is_file() for i in range(count)):
        return None
    return manifest


def postprocess(image: np.ndarray, fraction: float, prepared: Prepared) -> np.ndarray:
    """A generated work-size image -> the output's size, channels and bit depth."""
    out = resize(image, prepared.size)
    if prepared.channels == 4:
        alpha = (1 - fraction) * prepared.fitted[0][:, :, 3] + fraction * prepared.fitted[1][:, :, 3]
        # the model saw premultiplied colour (over black); store straight colour beside the alpha
        straight = np.where(alpha[:, :, None] > 1 / 255, out / np.maximum(alpha[:, :, None], 1e-6), 0.0)
        out = np.dstack([np.clip(straight, 0, 1), alpha])
    return to_integer(out, prepared.bit_depth)


def frame_png(result, prepared: Prepared) -> bytes:
    """A generated frame's output file: encoded here, or already where it was made (latentween.farm)."""
    return result.png if result.png is not None else encode_png(postprocess(result.image, result.fraction, prepared))


@dataclass
class Transition:
    """A job's model side, set up alike in every process that works on it: run_morph's, and each Ray
    actor that runs chunks of it (latentween.farm.chunks), so they all condition its frames the same."""

    keyframes: Sequence[Keyframe]
    settings: MorphSettings  # effective (with_defaults)
    prepared: Prepared
    components: object
    pipe: object
    work: list[np.ndarray]
    wsize: tuple[int, int]
    cond: object = None
    request: object = None


def load_transition(keyframes: Sequence[Keyframe], settings: MorphSettings, runtime: RuntimeSettings, manager,
                    prepared: Optional[Prepared] = None) -> Transition:
    """run_morph's step 2: the model (cached by the manager), its sampler and the keyframes at the work size."""
    from latentween.pipeline import InterpolationPipeline

    prepared = prepared or prepare_keyframes(keyframes, settings)
    components = manager.get(settings.model)
    if components.device.type == "cpu":
        from latentween.threads import apply_threads

        apply_threads(runtime.threads, components.unet)  # before the manifest records the environment
    preview = manager.preview_vae(settings.preview_vae) if settings.preview_vae else None
    pipe = InterpolationPipeline.from_components(components, scheduler=settings.scheduler, preview_vae=preview,
                                                 max_batch=runtime.max_batch)
    if settings.true_cfg != 1.0 and not pipe.family.flow:
        raise InputError(f"--true-cfg is for flow models (Flux); {pipe.family.name} models take --guidance")
    wsize = work_size(prepared.size, components.native_size, settings.work_size,
                      multiple=max(8, components.vae_scale_factor * pipe.family.patch))
    work = [resize(composite_rgb(p), wsize) for p in prepared.fitted]
    return Transition(keyframes, settings, prepared, components, pipe, work, wsize)


def condition_transition(t: Transition, manager, *, cache=None, progress=None, should_cancel=None, chooser=None):
    """run_morph's step 3, inside the job's LoRA: inverted prompts, poses and their ControlNet, the
    candidate chooser, and the request they make; returns the conditioning (also in `t.cond`)."""
    from latentween.conditioning import prepare_conditioning
    from latentween.pipeline import InterpolationRequest

    settings, prepared = t.settings, t.prepared
    cond = t.cond = prepare_conditioning(t.pipe, t.components, manager, settings, t.keyframes,
                                         [composite_rgb(p) for p in prepared.fitted], t.work, prepared.size, t.wsize,
                                         cache=cache, progress=progress, should_cancel=should_cancel, chooser=chooser)
    t.pipe.controlnet = cond.controlnet
    t.request = InterpolationRequest.from_settings(
        settings, text=cond.text, control=cond.control, alignment=cond.alignment,
        rank_early=cond.chooser is not None and settings.ranks_automatically)
    return cond


def local_frames(t: Transition, request, done: dict, **generate):
    """The frames of `request` not in `done`, made by the pipeline in this process, with the job's chooser."""
    if t.cond.chooser is not None:
        generate["chooser"] = t.cond.chooser
    return t.pipe.generate(t.work, request, done=done, **generate)


def run_morph(keyframes: Sequence[Keyframe], out_dir: str | Path, settings: MorphSettings,
              runtime: Optional[RuntimeSettings] = None, manager=None,
              progress: Optional[Callable[[dict], None]] = None,
              should_cancel: Optional[Callable[[], bool]] = None,
              on_frame: Optional[Callable[[int, Path], None]] = None,
              chooser: Optional[Callable] = None, cache=None, frames: Optional[Callable] = None) -> dict:
    """Make every frame of a morph into `out_dir`; returns the manifest. `settings.seed` must be set.

    `chooser(frame, images) -> (index, scores)` picks among a frame's candidates when there are
    several; by default CLIP ranks them (METHOD.md 5). The daemon passes its own for choose=manual.
    `cache` is where inverted prompts are kept (an inversion.EmbeddingCache; default: the user cache).
    `frames(transition, request, done, **generate)` makes the frames (default: local_frames, the
    pipeline in this process); latentween.farm passes one that runs the chunks on Ray actors.
    """
    from latentween.models import ModelManager, read_recommendations, resolve_model
    from latentween.plan import make_plan
    from latentween.schedulers import resolve_name as resolve_scheduler

    # 1. Validate everything that can fail cheaply before loading a model; fill unset settings with the
    #    preset's and the model folder's recommendations (the effective settings make the job's identity)
    if settings.seed is None:
        raise ValueError("settings.seed must be fixed before a job runs (MorphSettings.with_seed)")
    recommended = read_recommendations(resolve_model(settings.model))
    settings = settings.with_defaults(recommended)
    runtime = runtime or RuntimeSettings()
    started = time.perf_counter()
    folder = OutputFolder(out_dir)
    key = job_key(keyframes, settings)
    finished = finished_manifest(out_dir, key, settings.output_count())
    if finished is not None:
        return finished  # the same job, finished before (e.g. re-encoded to another format): no model load
    folder.check_writable()
    prepared = prepare_keyframes(keyframes, settings)
    fractions = settings.frame_fractions()

    # 2. Load the model (cached by the manager) and its sampler
    manager = manager or ModelManager(runtime)
    t = load_transition(keyframes, settings, runtime, manager, prepared)
    components, pipe, wsize = t.components, t.pipe, t.wsize
    loaded = time.perf_counter()

    with lora.applied(components, settings.lora) as loras:
        # 3. Conditioning: inverted prompts, poses and their ControlNet, the candidate chooser
        cond = condition_transition(t, manager, cache=cache, progress=progress, should_cancel=should_cancel,
                                    chooser=chooser)

        # 4. Keyframes are output frames as they are; resume what a previous run finished, and re-roll
        #    only the frames whose take changed (latentween.takes)
        previous = folder.read_manifest()
        # DID's parents are partially denoised trajectories, which are not kept: it always starts afresh.
        base = {} if settings.scheme.startswith("did") else folder.finished_latents(
            base_key(keyframes, settings), len(fractions))
        entries = previous.get("frames", []) if base else []
        levels = {f.index: f.level for level in make_plan(fractions, settings.min_noise, settings.max_noise,
                                                          settings.noise_curve) for f in level}
        has_file = lambda i: folder.frame_path(i).is_file()  # noqa: E731
        todo = plan_takes(len(fractions), settings.takes, base, entries, has_file, levels)
        manifest = _manifest(keyframes, settings, runtime, components, prepared, wsize, fractions, key)
        manifest.update(base_key=base_key(keyframes, settings), recommended=recommended, loras=loras,
                        sampler={"scheduler": resolve_scheduler(settings.scheduler, components.scheduler_config),
                                 "class": type(pipe.scheduler).__name__})
        if base:
            _check_environment(previous, manifest)
        for index, source in ((0, 0), (len(fractions) - 1, 1)):
            path = folder.write_frame(index, to_integer(prepared.fitted[source], prepared.bit_depth))
            manifest["frames"][index].update(file=path.name, source="keyframe", input=source)
        for index in range(1, len(fractions) - 1):
            if index in todo.kept:
                # a kill between the latent and the manifest write leaves the old entry without its file name
                manifest["frames"][index] = dict(entries[index], file=folder.frame_path(index).name, resumed=True)
            else:
                manifest["frames"][index]["take"] = pending_take(index, settings.takes.get(index, 0), entries, has_file)
        manifest["conditioning"] = cond.report
        if cond.track is not None:
            for index, fraction in enumerate(fractions):
                folder.write_pose(index, cond.track.at(fraction), prepared.size)
        folder.write_manifest(manifest)

        # 5. Generate, writing each frame as soon as it is final: the take-0 pass, then re-rolled frames
        generate = dict(callback=progress, should_cancel=should_cancel)
        # each re-roll pass is one plan level's re-rolled frames, so every parent is a take-0 latent
        passes = ([(todo.first, {})] if todo.first else []) + [(set(level), settings.takes) for level in todo.second]
        for make, takes in passes:
            done = {i: z for i, z in base.items() if i not in make}
            for result in (frames or local_frames)(t, replace(t.request, takes=takes), done, **generate):
                take = takes.get(result.index, 0)
                if not takes:
                    base[result.index] = result.latent
                    folder.write_latent(result.index, result.latent)  # the state keeps take-0 latents only
                    if settings.takes.get(result.index):
                        continue  # its file is the re-rolled take, made in a later pass
                path = folder.write_frame(result.index, frame_png(result, prepared))
                manifest["frames"][result.index].update(file=path.name, source="generated", take=take, **result.info)
                manifest["unet"] = _unet_totals(manifest["frames"], pipe.counter)
                folder.write_manifest(manifest)
                if on_frame is not None:
                    on_frame(result.index, path)

    # 6. Final manifest
    manifest["status"] = "complete"
    manifest["timings"] = {"load_s": round(loaded - started, 3), "total_s": round(time.perf_counter() - started, 3),
                           "generate_s": round(time.perf_counter() - loaded, 3)}
    folder.write_manifest(manifest)
    return manifest


def _check_environment(previous: dict, manifest: dict) -> None:
    """Frames are bit-identical only within one environment: say so once when a resume changes it."""
    before, now = previous.get("reproducibility"), manifest["reproducibility"]
    if before == now:
        return
    changed = sorted(k for k in set(before or {}) | set(now) if (before or {}).get(k) != now.get(k))
    log.warning("resuming in a different environment (%s changed): the finished frames are kept, and the rest "
                "match an uninterrupted run only within tolerance (docs/determinism.md)", ", ".join(changed))
    manifest["reproducibility_before_resume"] = before


def _unet_totals(frames: list[dict], counter) -> dict:
    """The job's UNet work: `evaluations` counts rows through the UNet (both guidance halves, every
    candidate), `calls` the batched forward passes; per frame as made in this run (resumed frames keep
    the numbers of the run that made them)."""
    made = [f["unet"]["evaluations"] for f in frames if f.get("source") == "generated" and "unet" in f]
    return {"calls": counter.calls, "evaluations": counter.rows,
            "evaluations_per_frame": round(sum(made) / len(made), 2) if made else None}


def _manifest(keyframes, settings, runtime, components, prepared, wsize, fractions, key) -> dict:
    from latentween.environment import reproducibility

    return {
        "latentween": __version__,
        "job_key": key,
        "status": "running",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "inputs": [{"source": k.source, "sha256": k.sha256, "width": k.size[0], "height": k.size[1],
                    "channels": k.pixels.shape[2], "bit_depth": k.bit_depth} for k in keyframes],
        "settings": settings.model_dump(),
        "runtime": runtime.model_dump(),
        "model": {"spec": components.source.spec, "kind": components.source.kind, "family": components.family,
                  "location": components.source.location, "device": str(components.device),
                  "dtype": str(components.dtype).replace("torch.", ""), "native_size": components.native_size},
        "output": {"width": prepared.size[0], "height": prepared.size[1], "channels": prepared.channels,
                   "bit_depth": prepared.bit_depth, "work_width": wsize[0], "work_height": wsize[1],
                   "pattern": FRAME_PATTERN},
        "frames": [{"index": i, "fraction": f, "file": None, "seed": settings.seed} for i, f in enumerate(fractions)],
        "unet": {"calls": 0, "evaluations": 0},
        "reproducibility": reproducibility(components.device, components.dtype, runtime.max_batch),
    }
