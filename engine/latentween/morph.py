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
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from latentween import __version__
from latentween import lora
from latentween.errors import InputError
from latentween.images import (Keyframe, composite_rgb, encode_png, fit, resize, to_integer, work_size,
                               write_atomic)
from latentween.settings import MorphSettings, RuntimeSettings, parse_size

log = logging.getLogger(__name__)

FRAME_PATTERN = "frame_{:05d}.png"
STATE_DIR = ".latentween"


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


class OutputFolder:
    """Frames, latents and the manifest of one job, all written atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.state = self.path / STATE_DIR

    def check_writable(self) -> None:
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / ".probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputError(f"output folder {str(self.path)!r} is not writable: {exc.strerror or exc}") from exc

    def frame_path(self, index: int) -> Path:
        return self.path / FRAME_PATTERN.format(index)

    def latent_path(self, index: int) -> Path:
        return self.state / f"latent_{index:05d}.safetensors"

    def write_frame(self, index: int, pixels: np.ndarray) -> Path:
        path = self.frame_path(index)
        write_atomic(path, encode_png(pixels))
        return path

    def write_latent(self, index: int, latent) -> None:
        from safetensors.torch import save

        write_atomic(self.latent_path(index), save({"latent": latent.contiguous()}))

    def write_pose(self, index: int, pose, size: tuple[int, int]) -> None:
        """pose_00000.png (the skeleton the ControlNet saw, at the output size) and pose_00000.json."""
        from latentween.pose import render_pose

        stem = Path(FRAME_PATTERN.format(index)).stem.replace("frame", "pose")
        write_atomic(self.path / f"{stem}.png", encode_png(render_pose(pose, size)))
        write_atomic(self.path / f"{stem}.json", json.dumps(pose.to_openpose_json()).encode())

    def write_manifest(self, manifest: dict) -> None:
        write_atomic(self.path / "manifest.json", json.dumps(manifest, indent=2).encode())

    def read_manifest(self) -> Optional[dict]:
        try:
            return json.loads((self.path / "manifest.json").read_text())
        except (OSError, ValueError):
            return None

    def finished_latents(self, job_key: str, count: int) -> dict:
        """Latents of frames a previous run of the same job finished (frame file and latent present)."""
        from safetensors.torch import load_file

        old = self.read_manifest()
        if not old or old.get("job_key") != job_key:
            self._forget(old)
            return {}
        done = {}
        for i in range(1, count - 1):
            if self.frame_path(i).is_file() and self.latent_path(i).is_file():
                try:
                    done[i] = load_file(str(self.latent_path(i)))["latent"]
                except Exception:  # a damaged latent file just means the frame is made again
                    continue
        return done

    def _forget(self, old: Optional[dict]) -> None:
        """A different job ran here before: remove its frames (only files it listed) and latents."""
        if not old:
            return
        for entry in old.get("frames", []):
            name = Path(str(entry.get("file", ""))).name
            if name and name == entry.get("file"):
                (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)


def job_key(keyframes: Sequence[Keyframe], settings: MorphSettings, extra: Optional[dict] = None) -> str:
    """Identity of a job's result: inputs' content and every pixel-changing setting."""
    payload = {"inputs": [k.sha256 for k in keyframes], "settings": settings.model_dump(), "extra": extra or {}}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]


def postprocess(image: np.ndarray, fraction: float, prepared: Prepared) -> np.ndarray:
    """A generated work-size image -> the output's size, channels and bit depth."""
    out = resize(image, prepared.size)
    if prepared.channels == 4:
        alpha = (1 - fraction) * prepared.fitted[0][:, :, 3] + fraction * prepared.fitted[1][:, :, 3]
        # the model saw premultiplied colour (over black); store straight colour beside the alpha
        straight = np.where(alpha[:, :, None] > 1 / 255, out / np.maximum(alpha[:, :, None], 1e-6), 0.0)
        out = np.dstack([np.clip(straight, 0, 1), alpha])
    return to_integer(out, prepared.bit_depth)


def run_morph(keyframes: Sequence[Keyframe], out_dir: str | Path, settings: MorphSettings,
              runtime: Optional[RuntimeSettings] = None, manager=None,
              progress: Optional[Callable[[dict], None]] = None,
              should_cancel: Optional[Callable[[], bool]] = None,
              on_frame: Optional[Callable[[int, Path], None]] = None,
              chooser: Optional[Callable] = None, cache=None) -> dict:
    """Make every frame of a morph into `out_dir`; returns the manifest. `settings.seed` must be set.

    `chooser(frame, images) -> (index, scores)` picks among a frame's candidates when there are
    several; by default CLIP ranks them (METHOD.md 5). The daemon passes its own for choose=manual.
    `cache` is where inverted prompts are kept (an inversion.EmbeddingCache; default: the user cache).
    """
    from latentween.models import ModelManager, read_recommendations, resolve_model
    from latentween.pipeline import InterpolationPipeline, InterpolationRequest
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
    folder.check_writable()
    prepared = prepare_keyframes(keyframes, settings)
    fractions = settings.frame_fractions()
    key = job_key(keyframes, settings)

    # 2. Load the model (cached by the manager) and its sampler
    manager = manager or ModelManager(runtime)
    components = manager.get(settings.model)
    loaded = time.perf_counter()
    preview = manager.preview_vae(settings.preview_vae) if settings.preview_vae else None
    pipe = InterpolationPipeline.from_components(components, scheduler=settings.scheduler, preview_vae=preview,
                                                 max_batch=runtime.max_batch)
    wsize = work_size(prepared.size, components.native_size, settings.work_size,
                      multiple=max(8, components.vae_scale_factor))
    work = [resize(composite_rgb(p), wsize) for p in prepared.fitted]

    with lora.applied(components, settings.lora) as loras:
        # 3. Conditioning: inverted prompts, poses and their ControlNet, the candidate chooser
        from latentween.conditioning import prepare_conditioning

        cond = prepare_conditioning(pipe, components, manager, settings, keyframes,
                                    [composite_rgb(p) for p in prepared.fitted], work, prepared.size, wsize,
                                    cache=cache, progress=progress, should_cancel=should_cancel, chooser=chooser)
        pipe.controlnet = cond.controlnet

        # 4. Keyframes are output frames as they are; resume what a previous run finished
        previous = folder.read_manifest()
        # DID's parents are partially denoised trajectories, which are not kept: it always starts afresh.
        done = {} if settings.scheme.startswith("did") else folder.finished_latents(key, len(fractions))
        manifest = _manifest(keyframes, settings, runtime, components, prepared, wsize, fractions, key)
        manifest.update(recommended=recommended, loras=loras,
                        sampler={"scheduler": resolve_scheduler(settings.scheduler, components.scheduler_config),
                                 "class": type(pipe.scheduler).__name__})
        if done:
            _check_environment(previous, manifest)
        for index, source in ((0, 0), (len(fractions) - 1, 1)):
            path = folder.write_frame(index, to_integer(prepared.fitted[source], prepared.bit_depth))
            manifest["frames"][index].update(file=path.name, source="keyframe", input=source)
        for index in done:
            # a kill between the latent and the manifest write leaves the old entry without its file name
            manifest["frames"][index] = dict(previous["frames"][index], file=folder.frame_path(index).name, resumed=True)
        manifest["conditioning"] = cond.report
        if cond.track is not None:
            for index, fraction in enumerate(fractions):
                folder.write_pose(index, cond.track.at(fraction), prepared.size)
        folder.write_manifest(manifest)

        # 5. Generate, writing each frame as soon as it is final
        request = InterpolationRequest(
            fractions=fractions, seed=settings.seed, prompt=settings.prompt, negative=settings.negative,
            steps=settings.steps, guidance=settings.guidance, eta=settings.eta, min_noise=settings.min_noise,
            max_noise=settings.max_noise, noise_curve=settings.noise_curve, scheme=settings.scheme,
            candidates=candidate_counter(settings.candidates), text=cond.text, control=cond.control,
            alignment=cond.alignment, prune_at=settings.prune_at or None, keep=settings.keep,
            rank_early=cond.chooser is not None and settings.choose == "clip")
        generate = dict(done=done, callback=progress, should_cancel=should_cancel)
        if cond.chooser is not None:
            generate["chooser"] = cond.chooser
        for result in pipe.generate(work, request, **generate):
            path = folder.write_frame(result.index, postprocess(result.image, result.fraction, prepared))
            folder.write_latent(result.index, result.latent)
            manifest["frames"][result.index].update(file=path.name, source="generated", **result.info)
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


def candidate_counter(fixed: Optional[int]) -> Callable[[int], int]:
    """Candidates per level: a fixed number, or the reference schedule (METHOD.md 5)."""
    from latentween.plan import reference_candidates

    return (lambda level: fixed) if fixed else reference_candidates


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
        "model": {"spec": components.source.spec, "kind": components.source.kind,
                  "location": components.source.location, "device": str(components.device),
                  "dtype": str(components.dtype).replace("torch.", ""), "native_size": components.native_size},
        "output": {"width": prepared.size[0], "height": prepared.size[1], "channels": prepared.channels,
                   "bit_depth": prepared.bit_depth, "work_width": wsize[0], "work_height": wsize[1],
                   "pattern": FRAME_PATTERN},
        "frames": [{"index": i, "fraction": f, "file": None, "seed": settings.seed} for i, f in enumerate(fractions)],
        "unet": {"calls": 0, "evaluations": 0},
        "reproducibility": reproducibility(components.device, components.dtype, runtime.max_batch),
    }
