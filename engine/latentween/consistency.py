"""Candidate consistency with the motion field (issue 17), beyond the paper.

The aligned scheme (schemes.ours) knows, before any noise is added, where things should be at a frame:
the parents warped by their share of the keyframes' displacement field and slerped at the frame's local
fraction (schemes.blend). A candidate that strays from that blend has invented motion or content the field
does not explain; its distance to the blend is a ranking signal that needs no extra model call. Scores from
different rankers live on different scales, so they are combined after standardising each over the
frame's candidates (--choose clip+consistency, weighted by MorphSettings.consistency_weight).

Pure functions on tensors and lists, no I/O; `FrameRanker` is the pipeline's one call to a chooser.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from latentween.ranking import DIGITS


def consistency_scores(candidates: torch.Tensor, blend: torch.Tensor) -> list[float]:
    """Negative per-element mean squared distance of each candidate's clean latent (n, C, h, w) to the
    frame's clean blend (C, h, w) or (1, C, h, w): closer is higher, a candidate equal to it scores 0.
    In float64, so the order of close candidates does not hang on float32 rounding."""
    diff = candidates.double() - blend.to(candidates.device, torch.float64).reshape(1, *candidates.shape[1:])
    return (-diff.pow(2).mean(dim=tuple(range(1, diff.ndim)))).cpu().tolist()


def standardise(scores: Sequence[float]) -> np.ndarray:
    """(s - mean) / std over one frame's candidates; all zeros when they are equal (nothing to rank)."""
    s = np.asarray(scores, dtype=np.float64)
    spread = s.std()
    return np.zeros_like(s) if spread == 0 or not np.isfinite(spread) else (s - s.mean()) / spread


def combine(parts: Mapping[str, Sequence[float]], weights: Mapping[str, float]) -> list[float]:
    """sum_k weights[k] * standardise(parts[k]): one score per candidate from several rankers' scores."""
    total = sum(weights[name] * standardise(values) for name, values in parts.items())
    return [float(v) for v in np.atleast_1d(total)]


def used_scores(parts: Mapping[str, Sequence[float]], weights: Mapping[str, float]) -> list[float]:
    """The score list a chooser ranks on and the manifest records as `scores`: one part as it is (so
    --choose consistency records plain distances), several combined (`combine`), rounded."""
    if len(parts) == 1:
        return [round(float(s), DIGITS) for s in next(iter(parts.values()))]
    return [round(s, DIGITS) for s in combine(parts, weights)]


def frame_expectations(frames, start, blend: Callable) -> dict[int, torch.Tensor]:
    """The clean blend (C, h, w) of each planned frame by frame index: `blend(start, frame)` is
    schemes.blend over `start` (schemes.Start: the finished latents, fractions and request)."""
    out: dict[int, torch.Tensor] = {}
    for frame in frames:
        if frame.index not in out:
            out[frame.index] = blend(start, frame)[0]
    return out


def uses_consistency(chooser) -> bool:
    """Whether `chooser` ranks on consistency scores (ranking.consistency_chooser), taking them as a
    third argument and returning (chosen, scores, score parts)."""
    return bool(getattr(chooser, "uses_consistency", False))


class FrameRanker:
    """The pipeline's call to the job's chooser for one frame's candidates. A chooser that uses
    consistency is given each candidate's consistency score against the frame's blend in `expected`
    (frame index -> (C, h, w)); any other chooser is called exactly as before, with nothing computed."""

    def __init__(self, chooser: Callable, expected: Optional[dict[int, torch.Tensor]] = None):
        self.chooser, self.expected = chooser, expected or {}

    def __call__(self, frame, images: list, z0: torch.Tensor) -> tuple[int, list[float], Optional[dict]]:
        """(chosen index, used scores, score parts or None); `images` decoded or previews, `z0`
        (n, C, h, w) their clean latents or the predicted ones."""
        if not uses_consistency(self.chooser):
            chosen, scores = self.chooser(frame, images)
            return chosen, scores, None
        consistency = [round(s, DIGITS) for s in consistency_scores(z0, self.expected[frame.index])]
        return self.chooser(frame, images, consistency)
