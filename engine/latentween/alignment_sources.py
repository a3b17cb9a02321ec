"""Where the alignment's correspondences come from for one job: the UNet's own features, the pose
track's keypoints, or the user's point pairs (see latentween.align for the method)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from latentween.schedulers import training_coefficients
from latentween.align import Matches, change_mask, decoder_features, distinct_mask, estimate_alignment, mutual_matches
from latentween.errors import InputError
from latentween.families import Prompt
from latentween.images import Keyframe, fit_transform
from latentween.method import frame_generator, randn

FEATURE_NOISE = 0.25   # features of latents noised to a quarter of the schedule (DIFT's t = 261 of 1000)
MAX_MATCH_PIXELS = 4096


def prepare_alignment(pipe, settings, keyframes: Sequence[Keyframe], work: Sequence[np.ndarray], text,
                      track, output_size: tuple[int, int], work_size: tuple[int, int]):
    """(Alignment or None, manifest report) for `settings.align`."""
    source = settings.align
    if source == "auto":
        source = "points" if settings.points else ("pose" if track is not None else "features")
    scale = (work_size[0] / output_size[0] / pipe.vae_scale_factor, work_size[1] / output_size[1] / pipe.vae_scale_factor)
    latent_size = (work_size[1] // pipe.vae_scale_factor, work_size[0] // pipe.vae_scale_factor)
    if source == "points":
        if not settings.points:
            raise InputError("--align points needs --points FILE.json")
        matches = _to_latent(_point_pairs(settings.points, keyframes, output_size, settings.fit), scale)
        return estimate_alignment(matches, latent_size, "points", model="similarity", min_matches=1, min_inlier_ratio=0)
    if source == "pose":
        if track is None:
            return None, {"source": "pose", "used": False, "warning": "no pose track (use --pose auto or JSON files)"}
        src, dst = [], []
        for a, b in track.pairs:
            both = (a[:, 2] > 0) & (b[:, 2] > 0)
            src += a[both, :2].tolist()
            dst += b[both, :2].tolist()
        return estimate_alignment(_to_latent(Matches.of(src, dst), scale), latent_size, "pose", model="similarity",
                                  threshold=2.0, min_matches=2, min_inlier_ratio=0.3)
    matches, changed = feature_matches(pipe, work, text, settings)
    if changed.sum() == 0:
        return None, {"source": "features", "used": False, "warning": "the keyframes do not differ"}
    return estimate_alignment(matches, latent_size, "features", model="auto", changed=changed)


def feature_matches(pipe, work: Sequence[np.ndarray], text, settings) -> tuple[Matches, np.ndarray]:
    """Mutual nearest neighbours between the keyframes' decoder features (align.decoder_features),
    among the latent pixels where the keyframes differ; also returns that change mask."""
    latents = pipe.encode_images(work)
    changed = change_mask(latents[0], latents[1])
    if text is None:
        cond, _ = pipe.encode_pair(settings.prompt, settings.negative)
        context = Prompt.stack([cond, cond])
    else:
        context = Prompt.stack([text[0], text[1]]).to(latents.device)
    timesteps = pipe.scheduler.config.num_train_timesteps
    t = int(FEATURE_NOISE * timesteps)
    noise = tuple(float(c) for c in training_coefficients(pipe.scheduler, t))
    eps = randn(latents.shape[1:], frame_generator(settings.seed or 0, 0.5, 0, "align")).to(latents.device)
    condition = pipe.family.guidance(settings.guidance, settings.true_cfg)[1]
    feats = decoder_features(pipe.unet, latents, t, context, eps[None].expand_as(latents), noise, condition)
    stride = 1
    while feats.shape[-1] * feats.shape[-2] // stride**2 > MAX_MATCH_PIXELS:
        stride *= 2
    # candidates: what changed and stands out in its own image (not the bleed of a moved object
    # into a plain background, whose features match anything)
    masks = [changed & distinct_mask(z) for z in latents]
    if stride > 1:
        feats = torch.nn.functional.avg_pool2d(feats, stride)
        masks = [torch.nn.functional.max_pool2d(m[None, None].float(), stride)[0, 0] > 0 for m in masks]
    m = mutual_matches(feats[0], feats[1], *masks)
    # pooled cells -> latent pixel coordinates of their centres
    offset = (stride - 1) / 2
    return Matches(m.src * stride + offset, m.dst * stride + offset, m.weight), changed.cpu().numpy()


def _to_latent(m: Matches, scale: tuple[float, float]) -> Matches:
    """Output pixel coordinates -> latent pixel-centre coordinates."""
    s = np.array(scale)
    return Matches((m.src + 0.5) * s - 0.5, (m.dst + 0.5) * s - 0.5, m.weight)


def _point_pairs(path: str, keyframes: Sequence[Keyframe], output_size, fit: str) -> Matches:
    try:
        pairs = json.loads(Path(path).read_text())
        arr = np.asarray(pairs, dtype=np.float64)
        if arr.ndim != 3 or arr.shape[1:] != (2, 2) or len(arr) == 0:
            raise ValueError("expected [[[xA, yA], [xB, yB]], ...]")
    except FileNotFoundError as exc:
        raise InputError(f"points file {path!r} does not exist") from exc
    except (OSError, ValueError) as exc:
        raise InputError(f"points file {path!r} is not a list of point pairs: {exc}") from exc
    moved = []
    for side, keyframe in enumerate(keyframes):
        sx, sy, ox, oy, _, _ = fit_transform(keyframe.size, output_size, fit)
        moved.append(arr[:, side] * [sx, sy] + [ox, oy])
    return Matches.of(moved[0], moved[1], np.full(len(arr), 10.0))
