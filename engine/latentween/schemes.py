"""Where each frame's denoising starts under each scheme: METHOD.md 1 ("ours") and the baselines of
section 6, one small pure function per scheme, looked up by the scheme's name (settings.Scheme).

Each function returns the frame's z_t (1, C, h, w) at the rows' common start, given the finished
latents by frame index, `eps` (the frame's own noise) and `noise` = (alpha_t, sigma_t) there.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from latentween.appearance import matched_parents
from latentween.method import add_noise, frame_generator, noise_interpolate, randn, slerp
from latentween.plan import PlannedRow


@dataclass
class Start:
    """What every start function may read: finished latents, DID trajectories, the frames' absolute
    fractions, the request (seed, alignment, scheme) and (alpha_t, sigma_t) of the start."""

    latents: dict
    trajectories: dict
    fractions: list[float]
    request: object
    noise: tuple[float, float]

    @property
    def last(self) -> int:
        return len(self.fractions) - 1


def ours(s: Start, row: PlannedRow, eps: torch.Tensor) -> torch.Tensor:
    """Both parents (aligned first, beyond the paper, when the request carries an alignment) noised
    with one shared noise, then slerped at the frame's place between them (METHOD.md 1)."""
    left, right = _ours_parents(s, row.frame)
    return noise_interpolate(left, right, row.frame.local_fraction, eps[None], *s.noise)


def _ours_parents(s: Start, frame) -> tuple[torch.Tensor, torch.Tensor]:
    """The parents as `ours` interpolates them: warped by their share of the alignment's field, and with
    appearance "stats" moved to the keyframes' channel statistics at the frame (latentween.appearance)."""
    f = s.fractions
    left, right = s.latents[frame.left][None], s.latents[frame.right][None]
    if s.request.alignment is not None:
        left, right = s.request.alignment.warp_parents(left, right, f[frame.left], f[frame.right], f[frame.index])
    if s.request.appearance == "stats":
        left, right = matched_parents(left, right, frame.local_fraction, s.latents[0][None], s.latents[s.last][None],
                                      f[frame.index])
    return left, right


def interpolate_only(s: Start, row: PlannedRow, eps: torch.Tensor) -> torch.Tensor:
    """The keyframes' clean latents slerped at the frame's fraction; nothing is denoised."""
    return slerp(s.latents[0][None], s.latents[s.last][None], s.fractions[row.frame.index])


def interpolate_denoise(s: Start, row: PlannedRow, eps: torch.Tensor) -> torch.Tensor:
    """Parents are always the two keyframes, noised with the frame's own shared noise: no recursion."""
    return noise_interpolate(s.latents[0][None], s.latents[s.last][None], s.fractions[row.frame.index], eps[None],
                             *s.noise)


def did(s: Start, row: PlannedRow, eps: torch.Tensor) -> torch.Tensor:
    """Denoise-interpolate-denoise: the parents' partially denoised latents at this start, slerped."""
    frame = row.frame
    parents = [_did_parent(s, i, row.start, eps.device) for i in (frame.left, frame.right)]
    return slerp(parents[0][None], parents[1][None], frame.local_fraction)


def _did_parent(s: Start, index: int, k: int, device) -> torch.Tensor:
    """A parent at DDIM index k: a generated frame's own trajectory, or a keyframe noised forward
    (one noise for both keyframes, or one each for did-no-shared-noise)."""
    if index in s.trajectories and k in s.trajectories[index]:
        return s.trajectories[index][k]
    stream = "keyframes" if s.request.scheme == "did" else f"keyframe-{index}"
    eps = randn(s.latents[0].shape, frame_generator(s.request.seed, 0.0, 0, stream)).to(device)
    return add_noise(s.latents[index], eps, *s.noise)


STARTS: dict[str, Callable[[Start, PlannedRow, torch.Tensor], torch.Tensor]] = {
    "ours": ours, "interpolate-only": interpolate_only, "interpolate-denoise": interpolate_denoise,
    "did": did, "did-no-shared-noise": did,
}



def blend(s: Start, frame) -> torch.Tensor:
    """The frame's clean blend (1, C, h, w): what its scheme interpolates, without noise. Under `ours`, the
    aligned parents slerped at the frame's local fraction, where the motion field says things are
    (latentween.consistency ranks candidates by their distance to it); under the baselines, the
    latents they slerp (the keyframes, or the clean parents for DID)."""
    if s.request.scheme == "ours":
        left, right = _ours_parents(s, frame)
        return slerp(left, right, frame.local_fraction)
    if s.request.scheme in ("interpolate-only", "interpolate-denoise"):
        return slerp(s.latents[0][None], s.latents[s.last][None], s.fractions[frame.index])
    return slerp(s.latents[frame.left][None], s.latents[frame.right][None], frame.local_fraction)
