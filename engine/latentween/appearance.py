"""The appearance path (issue 17), beyond the paper: per-channel latent statistics interpolated explicitly.

A slerp of two latents of distant colours cancels their channel means towards a grey mixture, and as it
keeps the norm, the lost mean reappears as inflated spread. As DiffMorpher's adaptive normalisation
(Zhang et al., "DiffMorpher: Unleashing the Capability of Diffusion Models for Image Morphing", CVPR 2024,
its AdaIN adjustment) does, each channel's mean and standard deviation of the keyframes' latents are interpolated
linearly at the frame's fraction and imposed (AdaIN, Huang and Belongie 2017: (z - mu(z)) / sigma(z) *
sigma + mu); here on the frame's parents before noising (`matched_parents`, --appearance stats).
In the toy world (benchmarks/results/issue17-2026-12-03.md) this did not help on every position and
imposing the statistics on the finished latent instead hurt, so the setting defaults to none.
"""
from __future__ import annotations

import torch

from latentween.method import slerp

EPS = 1e-5


def channel_stats(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation over the spatial axes of z (..., C, h, w), keepdim."""
    return z.mean(dim=(-2, -1), keepdim=True), z.std(dim=(-2, -1), keepdim=True, unbiased=False)


def interpolated_stats(z_a: torch.Tensor, z_b: torch.Tensor, f: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The keyframes' per-channel (mean, std), each linearly interpolated at fraction f (as DiffMorpher)."""
    (mean_a, std_a), (mean_b, std_b) = channel_stats(z_a), channel_stats(z_b)
    return (1 - f) * mean_a + f * mean_b, (1 - f) * std_a + f * std_b


def stats_affine(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel (scale, shift) with z * scale + shift having the given mean and std (AdaIN as an affine
    map, so the same map can move other latents, e.g. both parents of a blend)."""
    mu, sigma = channel_stats(z)
    scale = std / (sigma + EPS)
    return scale, mean - mu * scale


def adain(z: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """z with each channel's mean and std replaced by the given ones (AdaIN)."""
    scale, shift = stats_affine(z, mean, std)
    return z * scale + shift


def matched_parents(left: torch.Tensor, right: torch.Tensor, local: float, key_a: torch.Tensor, key_b: torch.Tensor,
                    f: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Both parents moved by the one per-channel affine map that gives their slerp at `local` the keyframes'
    statistics interpolated at the frame's absolute fraction `f`. One map for both keeps the parents'
    difference (the motion and shape the slerp interpolates) and fixes only the blend's colour and contrast."""
    mean, std = interpolated_stats(key_a, key_b, f)
    scale, shift = stats_affine(slerp(left, right, local), mean, std)
    return left * scale + shift, right * scale + shift
