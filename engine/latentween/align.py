"""Alignment before interpolation: where does each part of one keyframe go in the other?

Beyond the paper (issue 9). Shared noise + slerp + denoise turns two shifted objects into either a
blend or a copy of one parent; moving each parent's latent by its share of the displacement first
lets the same step produce a true in-between. The displacement field D (first keyframe -> second,
in latent pixels) comes from correspondences:
- diffusion features: the UNet's decoder (up-block) features of both latents noised to a mid
  timestep with shared noise, cosine nearest neighbours both ways, mutual and confident matches;
- matched pose keypoints, or point pairs given by the user (which take priority);
then a global transform fitted robustly (RANSAC: translation, similarity or affine) plus a smooth
residual field (normalised Gaussian weighting of the matches' residuals).

Recursion: the field is estimated once, between the keyframes, and composed for every parent pair:
parents at fractions a < b are (b - a) * D apart. Re-estimating between generated parents would cost
a UNet pass per pair, let errors in a generated parent compound, and let siblings jitter against
each other; the composed field keeps the whole sequence on one motion.

Warping: a frame at local fraction f between parents P and Q (displacement D_PQ) uses
P warped by f * D_PQ and Q by -(1 - f) * D_PQ (backward warping with grid_sample, bilinear,
border padding: a latent pulled from outside the frame repeats the edge, never a black band).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

MIN_MATCHES = 6        # fewer consistent matches than this: not confident, no alignment
MIN_INLIER_RATIO = 0.3


@dataclass
class Matches:
    """Point pairs in latent pixel coordinates (x, y): src in the first keyframe, dst in the second."""

    src: np.ndarray
    dst: np.ndarray
    weight: np.ndarray

    def __len__(self) -> int:
        return len(self.src)

    @staticmethod
    def of(src, dst, weight=None) -> "Matches":
        src, dst = np.asarray(src, np.float64).reshape(-1, 2), np.asarray(dst, np.float64).reshape(-1, 2)
        w = np.ones(len(src)) if weight is None else np.asarray(weight, np.float64)
        return Matches(src, dst, w)


@dataclass
class Alignment:
    """A displacement field D (2, h, w): latent pixel (x, y) of the first keyframe moves to (x, y) + D."""

    field: torch.Tensor
    transform: list          # the global 2x3 matrix, row-major
    model: str               # translation | similarity | affine
    matches: int
    inliers: int
    source: str

    @property
    def confidence(self) -> float:
        return self.inliers / max(self.matches, 1)

    def between(self, a: float, b: float) -> torch.Tensor:
        """The displacement between parents at fractions a < b of the whole morph (composed, see module doc)."""
        return (b - a) * self.field

    def report(self) -> dict:
        return {"source": self.source, "model": self.model, "matches": self.matches, "inliers": self.inliers,
                "confidence": round(self.confidence, 3), "transform": [round(v, 4) for v in self.transform]}


# -- features and matching -----------------------------------------------------------------------------

def decoder_features(unet, latents: torch.Tensor, t: int, context: torch.Tensor, eps: torch.Tensor,
                     alpha_bar: float, blocks: Sequence[int] = (1, 2)) -> torch.Tensor:
    """Up-block features of each latent noised to timestep t with the shared noise `eps`, upsampled to
    the latent's size and concatenated: (B, C, h, w), each block L2-normalised per pixel."""
    captured: dict[int, torch.Tensor] = {}
    hooks = [unet.up_blocks[i].register_forward_hook(lambda m, a, out, i=i: captured.__setitem__(i, out))
             for i in blocks if i < len(unet.up_blocks)]
    try:
        z_t = alpha_bar**0.5 * latents + (1 - alpha_bar) ** 0.5 * eps
        with torch.inference_mode():
            unet(z_t.to(unet.dtype), torch.tensor(t, device=latents.device),
                 encoder_hidden_states=context.to(unet.dtype), return_dict=False)
    finally:
        for h in hooks:
            h.remove()
    size = latents.shape[-2:]
    feats = [F.normalize(F.interpolate(captured[i].float(), size=size, mode="bilinear", align_corners=False), dim=1)
             for i in sorted(captured)]
    return torch.cat(feats, dim=1)


def mutual_matches(feat_a: torch.Tensor, feat_b: torch.Tensor, min_similarity: float = 0.0,
                   max_ratio: float = 0.95) -> Matches:
    """Cosine nearest neighbours both ways between two (C, h, w) feature maps; keeps pairs that are
    each other's nearest, similar enough, and clearly better than the second-best candidate."""
    c, h, w = feat_a.shape
    a = F.normalize(feat_a.reshape(c, -1).T, dim=1)
    b = F.normalize(feat_b.reshape(c, -1).T, dim=1)
    sim = a @ b.T
    best_ab = sim.argmax(1)
    best_ba = sim.argmax(0)
    idx = torch.arange(len(a), device=sim.device)
    mutual = best_ba[best_ab] == idx
    top2 = sim.topk(2, dim=1).values
    score = top2[:, 0]
    distinct = (1 - top2[:, 0]) <= max_ratio * (1 - top2[:, 1])  # ratio test on cosine distances
    keep = mutual & (score >= min_similarity) & distinct
    ia = idx[keep].cpu().numpy()
    ib = best_ab[keep].cpu().numpy()
    grid = lambda i: np.stack([i % w, i // w], axis=1).astype(np.float64)  # noqa: E731
    return Matches(grid(ia), grid(ib), score[keep].cpu().numpy().astype(np.float64))


# -- the global transform and the residual field ---------------------------------------------------------

def fit_transform(m: Matches, model: str = "similarity", threshold: float = 1.0,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """RANSAC fit of a 2x3 transform dst ~ A @ [src, 1]; returns (A, inlier mask). Translation is the
    weighted median of the inliers' displacements; similarity and affine use OpenCV's estimators."""
    import cv2

    if len(m) == 0:
        return np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.zeros(0, bool)
    if model == "translation" or len(m) < 3:
        d = m.dst - m.src
        rng = np.random.default_rng(seed)
        best = None
        for i in rng.choice(len(m), size=min(len(m), 64), replace=False):
            inl = np.linalg.norm(d - d[i], axis=1) <= threshold
            if best is None or inl.sum() > best.sum():
                best = inl
        shift = np.median(d[best], axis=0)
        return np.array([[1.0, 0, shift[0]], [0, 1.0, shift[1]]]), best
    estimate = cv2.estimateAffinePartial2D if model == "similarity" else cv2.estimateAffine2D
    cv2.setRNGSeed(seed)
    A, inliers = estimate(m.src.astype(np.float32), m.dst.astype(np.float32), method=cv2.RANSAC,
                          ransacReprojThreshold=threshold, maxIters=2000, confidence=0.995)
    if A is None:
        return np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.zeros(len(m), bool)
    return A.astype(np.float64), inliers.reshape(-1).astype(bool)


def residual_field(m: Matches, A: np.ndarray, size: tuple[int, int], sigma: float) -> np.ndarray:
    """Smooth (2, h, w) field of what the global transform leaves over at the matches: a normalised
    Gaussian weighting, fading to 0 far from any match."""
    h, w = size
    if len(m) == 0:
        return np.zeros((2, h, w))
    if len(m) > 512:  # the (pixels x matches) weight matrix stays small; the strongest matches suffice
        keep = np.argsort(-m.weight)[:512]
        m = Matches(m.src[keep], m.dst[keep], m.weight[keep])
    pred = m.src @ A[:, :2].T + A[:, 2]
    r = m.dst - pred
    ys, xs = np.mgrid[:h, :w]
    pts = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    d2 = ((pts[:, None, :] - m.src[None, :, :]) ** 2).sum(-1)
    wgt = np.exp(-d2 / (2 * sigma**2)) * m.weight[None, :]
    field = (wgt @ r) / (wgt.sum(1, keepdims=True) + 1.0)  # +1: little support -> little residual
    return field.T.reshape(2, h, w)


def displacement_field(m: Matches, size: tuple[int, int], model: str = "similarity", threshold: float = 1.0,
                       sigma: Optional[float] = None, residual: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D (2, h, w) = the global transform's motion at every latent pixel plus the residual field;
    also returns the transform and the inlier mask."""
    h, w = size
    A, inliers = fit_transform(m, model, threshold)
    ys, xs = np.mgrid[:h, :w].astype(np.float64)
    gx = A[0, 0] * xs + A[0, 1] * ys + A[0, 2] - xs
    gy = A[1, 0] * xs + A[1, 1] * ys + A[1, 2] - ys
    field = np.stack([gx, gy])
    if residual and inliers.any():
        kept = Matches(m.src[inliers], m.dst[inliers], m.weight[inliers])
        field = field + residual_field(kept, A, size, sigma or max(h, w) / 8)
    return field, A, inliers


# -- warping ---------------------------------------------------------------------------------------------

def warp(z: torch.Tensor, displacement: torch.Tensor) -> torch.Tensor:
    """Move content of z (B, C, h, w) by `displacement` (2, h, w) or (B, 2, h, w) latent pixels:
    out(y) = z(y - d(y)), bilinear, border padding (module docstring)."""
    if not torch.is_tensor(displacement):
        displacement = torch.as_tensor(displacement)
    d = displacement.to(z.device, torch.float32)
    if d.dim() == 3:
        d = d[None].expand(z.shape[0], -1, -1, -1)
    if not bool(d.abs().max() > 0):
        return z
    b, _, h, w = z.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=z.device, dtype=torch.float32),
                            torch.arange(w, device=z.device, dtype=torch.float32), indexing="ij")
    sx = xs[None] - d[:, 0]
    sy = ys[None] - d[:, 1]
    grid = torch.stack([(sx + 0.5) / w * 2 - 1, (sy + 0.5) / h * 2 - 1], dim=-1)
    return F.grid_sample(z.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(z.dtype)


def warp_parents(z_left: torch.Tensor, z_right: torch.Tensor, f: float, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Parents moved to where the frame at local fraction f sees them: P by f * D, Q by -(1 - f) * D."""
    return warp(z_left, f * d), warp(z_right, -(1.0 - f) * d)


def estimate_alignment(m: Matches, size: tuple[int, int], source: str, model: str = "similarity",
                       threshold: float = 1.0, min_matches: int = MIN_MATCHES,
                       min_inlier_ratio: float = MIN_INLIER_RATIO) -> tuple[Optional[Alignment], dict]:
    """An Alignment when the matches agree enough, else None; the dict is for the manifest either way."""
    if len(m) == 0:
        return None, {"source": source, "matches": 0, "inliers": 0, "used": False, "warning": "no matches"}
    field, A, inliers = displacement_field(m, size, model, threshold)
    alignment = Alignment(torch.from_numpy(field).float(), A.reshape(-1).tolist(), model, len(m), int(inliers.sum()), source)
    report = dict(alignment.report(), used=True)
    if alignment.inliers < min_matches or alignment.confidence < min_inlier_ratio:
        report.update(used=False, warning=f"too few consistent matches ({alignment.inliers} of {len(m)})")
        return None, report
    return alignment, report


def similarity_parameters(A: Sequence[float]) -> dict:
    """Scale, rotation (degrees) and shift of a similarity transform given as 6 numbers."""
    a, b, tx, c, d, ty = A
    return {"scale": math.hypot(a, c), "rotation": math.degrees(math.atan2(c, a)), "shift": (tx, ty)}
