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
P warped by f * D_PQ and Q by -(1 - f) * D_PQ; `Alignment.warp_parents` does this exactly for the
composed motion, also where D varies (scale, rotation). Backward warping with grid_sample, bilinear,
border padding: a latent pulled from outside the frame repeats the edge, never a black band.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from latentween.method import add_noise

MIN_MATCHES = 4        # fewer consistent matches than this: not confident, no alignment
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

    def warp_parents(self, z_left: torch.Tensor, z_right: torch.Tensor, a: float, b: float,
                     f: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Both parents (at fractions a < b of the whole morph) as the frame at fraction f sees them.

        A point x of the first keyframe is at x + phi * D(x) at fraction phi (the composed motion,
        module doc). For each output pixel y the point x with x + f D(x) = y is found by fixed-point
        iteration; the left parent is sampled at x + a D(x), the right one at x + b D(x). With one
        field for the whole morph this holds for a scaled or rotated object too, where evaluating D
        at the right parent's own pixels would not."""
        x = invert_motion(self.field.to(z_left.device), f)
        d = sample(self.field.to(z_left.device)[None], x)[0]
        return sample(z_left, x + a * d), sample(z_right, x + b * d)

    def report(self) -> dict:
        return {"source": self.source, "model": self.model, "matches": self.matches, "inliers": self.inliers,
                "confidence": round(self.confidence, 3), "transform": [round(v, 4) for v in self.transform]}


# -- features and matching -----------------------------------------------------------------------------

def decoder_features(unet, latents: torch.Tensor, t: int, context, eps: torch.Tensor, noise: tuple,
                     condition, blocks: Sequence[int] = (1, 2)) -> torch.Tensor:
    """Decoder features of each latent noised to timestep t with the shared noise `eps` as z_t = a z0 + s eps,
    `noise` = (a, s), upsampled to the latent's size and concatenated: (B, C, h, w), each block
    L2-normalised per pixel. A UNet gives its up blocks `blocks`; a transformer (latentween.flux) its
    image tokens of a few blocks, as a grid. `context`: one prompt per latent (families.Prompt);
    `condition`: the model family's conditioning."""
    size = latents.shape[-2:]
    if hasattr(unet, "feature_taps"):
        taps = unet.feature_taps(*size)
    else:
        taps = [(unet.up_blocks[i], lambda out: out) for i in blocks if i < len(unet.up_blocks)]
    captured: dict[int, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda m, a, out, i=i, read=read: captured.__setitem__(i, read(out)))
             for i, (module, read) in enumerate(taps)]
    try:
        z_t = add_noise(latents, eps, *noise)
        with torch.inference_mode():
            sample = z_t.to(unet.dtype)
            unet(sample, torch.tensor(t, device=latents.device), return_dict=False,
                 **condition(context.to(unet.dtype), sample))
    finally:
        for h in hooks:
            h.remove()
    feats = [F.normalize(F.interpolate(captured[i].float(), size=size, mode="bilinear", align_corners=False), dim=1)
             for i in sorted(captured)]
    return torch.cat(feats, dim=1)


def change_mask(z_a: torch.Tensor, z_b: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Latent pixels where the two keyframes differ (mean |z_a - z_b| over channels above `threshold`
    times the latents' spread): where something moved or changed. Where both agree, nothing moved
    worth aligning, and a uniform background there would only lend matches to the wrong motion."""
    spread = torch.cat([z_a, z_b]).float().std().clamp_min(1e-6)
    return (z_a - z_b).abs().mean(0) > threshold * spread


def distinct_mask(z: torch.Tensor, threshold: float = 0.3) -> torch.Tensor:
    """Latent pixels that stand out from the image's typical pixel (the per-channel median): on a
    plain background only the object's pixels; on a photo nearly everything."""
    median = z.reshape(z.shape[0], -1).median(1).values[:, None, None]
    return (z - median).abs().mean(0) > threshold * z.float().std().clamp_min(1e-6)


def mutual_matches(feat_a: torch.Tensor, feat_b: torch.Tensor, mask_a: Optional[torch.Tensor] = None,
                   mask_b: Optional[torch.Tensor] = None) -> Matches:
    """Cosine nearest neighbours both ways between two (C, h, w) feature maps, among the pixels of
    `mask_a` and `mask_b` (default: all); keeps pairs that are each other's nearest."""
    c, h, w = feat_a.shape
    ia_all = torch.arange(h * w, device=feat_a.device) if mask_a is None else torch.nonzero(mask_a.reshape(-1)).reshape(-1)
    ib_all = torch.arange(h * w, device=feat_b.device) if mask_b is None else torch.nonzero(mask_b.reshape(-1)).reshape(-1)
    if len(ia_all) == 0 or len(ib_all) == 0:
        return Matches.of(np.zeros((0, 2)), np.zeros((0, 2)))
    a = F.normalize(feat_a.reshape(c, -1).T[ia_all], dim=1)
    b_all = F.normalize(feat_b.reshape(c, -1).T, dim=1)
    b = b_all[ib_all]
    sim = a @ b.T
    best_ab = sim.argmax(1)
    best_ba = sim.argmax(0)
    keep = best_ba[best_ab] == torch.arange(len(a), device=sim.device)
    ia = ia_all[keep]
    ib = ib_all[best_ab[keep]]
    score = sim.max(1).values[keep].clamp_min(0).cpu().numpy().astype(np.float64)
    grid = lambda i: np.stack([i % w, i // w], axis=1).astype(np.float64)  # noqa: E731
    dst = _refine(a[keep], b_all, ib, h, w)
    return Matches(grid(ia.cpu().numpy()), dst, score)


SOFT_TEMPERATURE = 0.02


def _refine(a: torch.Tensor, b_all: torch.Tensor, ib: torch.Tensor, h: int, w: int) -> np.ndarray:
    """Sub-pixel match positions: a soft-argmax of the similarity over the 3x3 pixels around each
    best match. Whole-pixel matches snap small rotations and scalings back to the identity."""
    if len(ib) == 0:
        return np.zeros((0, 2))
    y0, x0 = ib // w, ib % w
    offsets = torch.tensor([(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], device=ib.device)
    ys = (y0[:, None] + offsets[None, :, 0]).clamp(0, h - 1)
    xs = (x0[:, None] + offsets[None, :, 1]).clamp(0, w - 1)
    sim = (b_all[ys * w + xs] * a[:, None, :]).sum(-1)
    weight = torch.softmax((sim - sim.max(1, keepdim=True).values) / SOFT_TEMPERATURE, dim=1)
    pos = torch.stack([(weight * xs).sum(1), (weight * ys).sum(1)], dim=1)
    return pos.cpu().numpy().astype(np.float64)


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
        # the mean of integer-grid votes lands between pixels where the true shift does
        shift = np.average(d[best], axis=0, weights=m.weight[best])
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


def select_model(m: Matches, model: str, threshold: float) -> tuple[str, np.ndarray, np.ndarray]:
    """`auto`: a similarity only when it explains clearly more matches than a translation does
    (few, noisy matches fit a similarity's extra freedom to noise)."""
    if model != "auto":
        return (model, *fit_transform(m, model, threshold))
    shift = fit_transform(m, "translation", threshold)
    if len(m) < 8:
        return ("translation", *shift)
    sim = fit_transform(m, "similarity", threshold)
    return ("similarity", *sim) if sim[1].sum() > 1.2 * shift[1].sum() else ("translation", *shift)


def displacement_field(m: Matches, size: tuple[int, int], model: str = "similarity", threshold: float = 1.0,
                       sigma: Optional[float] = None, residual: bool = True,
                       support: Optional[np.ndarray] = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """D (2, h, w) = the global transform's motion plus the residual field, inside `support` (a soft
    (h, w) weight; default everywhere); also returns the transform, the inlier mask and the model."""
    h, w = size
    model, A, inliers = select_model(m, model, threshold)
    ys, xs = np.mgrid[:h, :w].astype(np.float64)
    gx = A[0, 0] * xs + A[0, 1] * ys + A[0, 2] - xs
    gy = A[1, 0] * xs + A[1, 1] * ys + A[1, 2] - ys
    field = np.stack([gx, gy])
    if residual and inliers.any():
        kept = Matches(m.src[inliers], m.dst[inliers], m.weight[inliers])
        field = field + residual_field(kept, A, size, sigma or max(h, w) / 8)
    if support is not None:
        field = field * support[None]
    return field, A, inliers, model


def motion_support(changed: np.ndarray, reach: float) -> np.ndarray:
    """Where the field applies: the changed pixels grown by how far things move (so the path between
    both positions is covered), softened; 1 everywhere once most of the frame has changed."""
    import cv2

    if changed.mean() > 0.5:
        return np.ones(changed.shape)
    r = int(math.ceil(reach)) + 1
    grown = cv2.dilate(changed.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return np.clip(cv2.GaussianBlur(grown.astype(np.float64), (0, 0), 1.0) * 1.5, 0.0, 1.0)


# -- warping ---------------------------------------------------------------------------------------------

def _pixel_grid(h: int, w: int, device) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return torch.stack([xs, ys])


def sample(z: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """z (B, C, h, w) read at pixel positions (2, h, w) (x, y; pixel centres at integers): bilinear,
    border padding (module docstring)."""
    h, w = z.shape[-2:]
    grid = torch.stack([(positions[0] + 0.5) / w * 2 - 1, (positions[1] + 0.5) / h * 2 - 1], dim=-1)
    grid = grid[None].expand(z.shape[0], -1, -1, -1)
    return F.grid_sample(z.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(z.dtype)


def invert_motion(field: torch.Tensor, f: float, iterations: int = 10) -> torch.Tensor:
    """Positions x (2, h, w) with x + f * field(x) = y for every pixel y (fixed-point iteration; the
    field is smooth enough for it to converge)."""
    y = _pixel_grid(field.shape[-2], field.shape[-1], field.device)
    x = y - f * field
    for _ in range(iterations):
        x = y - f * sample(field[None], x)[0]
    return x


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
    y = _pixel_grid(h, w, z.device)
    return torch.cat([sample(z[i:i + 1], y - d[i]) for i in range(b)])


def estimate_alignment(m: Matches, size: tuple[int, int], source: str, model: str = "similarity",
                       threshold: float = 1.0, min_matches: int = MIN_MATCHES,
                       min_inlier_ratio: float = MIN_INLIER_RATIO,
                       changed: Optional[np.ndarray] = None) -> tuple[Optional[Alignment], dict]:
    """An Alignment when the matches agree enough, else None; the dict is for the manifest either way.
    `changed`: the (h, w) change mask; the field is then limited to where things move."""
    if len(m) == 0:
        return None, {"source": source, "matches": 0, "inliers": 0, "used": False, "warning": "no matches"}
    support = None
    if changed is not None:
        A0, _ = fit_transform(m, "translation", threshold)
        support = motion_support(changed, float(np.hypot(*A0[:, 2])))
    field, A, inliers, model = displacement_field(m, size, model, threshold, support=support)
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
