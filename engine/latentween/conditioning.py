"""Everything a job is conditioned on besides the keyframes (METHOD.md 3-5), prepared once per job:
inverted prompt embeddings (cached), the pose track and its ControlNet, and the candidate chooser."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from latentween.errors import InputError, ModelError
from latentween.images import Keyframe, fit_transform
from latentween.settings import MorphSettings

log = logging.getLogger("latentween")


@dataclass
class Conditioning:
    text: Optional[tuple] = None
    control: Optional[Callable[[float], tuple[np.ndarray, float]]] = None
    controlnet: object = None
    track: object = None
    alignment: object = None
    chooser: Optional[Callable] = None
    report: dict = field(default_factory=dict)


def model_fingerprint(components) -> str:
    """Identity of a model's weights for caches: its location plus size and time of its weight files."""
    source = components.source
    path = Path(source.location)
    files = [path] if path.is_file() else sorted(path.glob("unet/*")) + sorted(path.glob("transformer/*")) + sorted(
        path.glob("text_encoder*/*"))
    stats = [f"{f.name}:{f.stat().st_size}:{int(f.stat().st_mtime)}" for f in files if f.is_file()]
    return f"{source.kind}:{source.location}:{','.join(stats)}"


def prepare_conditioning(pipe, components, manager, settings: MorphSettings, keyframes: Sequence[Keyframe],
                         fitted_rgb: Sequence[np.ndarray], work: Sequence[np.ndarray], output_size, work_size,
                         cache=None, progress=None, should_cancel=None, chooser=None) -> Conditioning:
    """fitted_rgb: keyframes at the output size (float RGB); work: at the work size, as the model sees them."""
    cond = Conditioning()
    multiple = settings.candidates != 1
    if settings.choose == "manual" and multiple and chooser is None:
        raise InputError("--choose manual needs a caller that chooses: submit the job to the daemon (latentween submit)")
    cond.chooser = chooser
    if multiple and chooser is None:
        cond.chooser, cond.report["ranking"] = _chooser(manager, settings)
    if settings.invert_steps > 0 and settings.scheme != "interpolate-only":
        cond.text = _inverted_text(pipe, components, settings, work, cache, progress, should_cancel, cond.report)
    if settings.pose != "none":
        _prepare_pose(cond, pipe, components, manager, settings, keyframes, fitted_rgb, output_size, work_size)
    if settings.align != "none" and settings.scheme == "ours":  # the baselines stay the paper's
        from latentween.alignment_sources import prepare_alignment

        cond.alignment, cond.report["alignment"] = prepare_alignment(
            pipe, settings, keyframes, work, cond.text, cond.track, output_size, work_size)
        if cond.alignment is None:
            log.warning("alignment: %s; interpolating without it", cond.report["alignment"].get("warning"))
    return cond


def _chooser(manager, settings: MorphSettings) -> tuple[Callable, dict]:
    """The automatic chooser of --choose clip, consistency or clip+consistency, and its report. Only
    the choices with CLIP load a CLIP model."""
    from latentween.ranking import clip_chooser, consistency_chooser

    clip = {"clip_model": settings.clip_model, "positive": settings.rank_positive, "negative": settings.rank_negative}
    if settings.choose == "consistency":
        return consistency_chooser(), {"choose": "consistency"}
    ranker = manager.clip(settings.clip_model)
    if settings.choose == "clip+consistency":
        weight = settings.consistency_weight
        return (consistency_chooser(ranker, settings.rank_positive, settings.rank_negative, weight),
                {"choose": "clip+consistency", **clip, "consistency_weight": weight})
    return clip_chooser(ranker, settings.rank_positive, settings.rank_negative), clip


def _inverted_text(pipe, components, settings, work, cache, progress, should_cancel, report) -> tuple:
    import torch

    from latentween.inversion import VIEWS, EmbeddingCache, augmented_views, invert_prompts

    cache = cache or EmbeddingCache()
    key = cache.key(model_fingerprint(components), work, settings.prompt, settings.negative, settings.invert_steps,
                    settings.guidance, true_cfg=settings.true_cfg)
    prompts = cache.get(key)
    if prompts is None:
        cond, negative = pipe.encode_pair(settings.prompt, settings.negative)
        views = [pipe.encode_images(augmented_views(image, VIEWS, seed=i)) for i, image in enumerate(work)]
        scale, condition = pipe.family.guidance(settings.guidance, settings.true_cfg)
        prompts = invert_prompts(pipe.unet, pipe.scheduler, views, cond, negative, steps=settings.invert_steps,
                                 guidance=scale, condition=condition, callback=progress, should_cancel=should_cancel)
        cache.put(key, prompts)
    report["inversion"] = {"steps": settings.invert_steps, "cached": prompts.cached, "cache_key": key,
                           "loss_before": prompts.loss_before, "loss_after": prompts.loss_after}
    return tuple(p.to(torch.float32) for p in (prompts.first, prompts.second, prompts.negative))


def _prepare_pose(cond, pipe, components, manager, settings, keyframes, fitted_rgb, output_size, work_size) -> None:
    from latentween.pose import control_scale, make_track, read_openpose_json

    if settings.pose == "auto":
        detector = manager.pose_detector(settings.pose_model)
        poses = [detector(np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)) for rgb in fitted_rgb]
    else:
        paths = [p.strip() for p in settings.pose.split(",")]
        if len(paths) != 2:
            raise InputError(f"--pose takes auto, none or two OpenPose JSON files A.json,B.json; got {settings.pose!r}")
        poses = []
        for path, keyframe in zip(paths, keyframes):
            raw = read_openpose_json(path, keyframe.size)
            # the JSON may use its own canvas size; bring it to the keyframe's pixels, then fit like the image
            kx, ky = keyframe.size[0] / raw.width, keyframe.size[1] / raw.height
            sx, sy, ox, oy, _, _ = fit_transform(keyframe.size, output_size, settings.fit)
            poses.append(raw.transformed(kx * sx, ky * sy, ox, oy, *output_size))
    track, why = make_track(poses[0], poses[1], settings.pose_scale, largest=settings.pose_people == "largest")
    cond.report["pose"] = {"source": settings.pose, "people": [len(p.people) for p in poses], "used": track is not None}
    if track is None:
        log.warning("%s: continuing without pose guidance", why)
        cond.report["pose"]["warning"] = why
        return
    spec = settings.controlnet or pipe.family.default_controlnet
    try:
        controlnet = pipe.family.fit_controlnet(manager.controlnet(spec), components)
    except ModelError as exc:
        raise ModelError(f"ControlNet {spec!r}: {exc}; pass --controlnet with one made for this model") from exc
    cond.track, cond.controlnet = track, controlnet
    cond.control = lambda f: (track.control(f, work_size), control_scale(f, settings.pose_scale))
    cond.report["pose"]["controlnet"] = spec
