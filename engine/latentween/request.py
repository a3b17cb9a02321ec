"""What the pipeline is asked to make and what it returns: `InterpolationRequest`, built from a job's
settings (the one place settings are defined, latentween.settings), and `FrameResult`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from latentween.families import Prompt
from latentween.plan import candidate_counter
from latentween.settings import MorphSettings


@dataclass
class FrameResult:
    """One finished frame: the chosen image, its latent (kept for children and for resuming) and facts."""

    index: int
    fraction: float
    image: np.ndarray
    latent: torch.Tensor
    info: dict
    # The output file's bytes, when the frame was encoded where it was made (latentween.farm); `image` is then None.
    png: Optional[bytes] = None


def _setting(name: str):
    """A job setting's default, from the one place settings are defined (latentween.settings)."""
    return MorphSettings.model_fields[name].default


# The request's fields that are job settings as they are, named and defaulted as in MorphSettings.
FROM_SETTINGS = ("seed", "prompt", "negative", "steps", "guidance", "true_cfg", "eta", "min_noise", "max_noise",
                 "noise_curve", "scheme", "keep", "appearance")


@dataclass
class InterpolationRequest:
    """What to make. `fractions` are absolute positions of all frames, keyframes included. A job's
    request comes from its settings (`from_settings`); tests and benchmarks set fields directly."""

    fractions: Sequence[float]
    seed: int
    prompt: str = _setting("prompt")
    negative: str = _setting("negative")
    steps: int = _setting("steps")
    guidance: float = _setting("guidance")
    true_cfg: float = _setting("true_cfg")  # flow families (families.Flux): true CFG with the negative
    eta: float = _setting("eta")
    min_noise: float = _setting("min_noise")
    max_noise: float = _setting("max_noise")
    noise_curve: str = _setting("noise_curve")
    scheme: str = _setting("scheme")
    candidates: Callable[[int], int] = field(default=lambda level: 1)
    # Conditioning (METHOD.md 3-4): the keyframes' prompts and the shared negative (families.Prompt),
    # e.g. from textual inversion (None: encode `prompt`/`negative`); and per frame fraction the
    # ControlNet input (float (H, W, 3) in [0, 1]) with its scale (None: no ControlNet).
    text: Optional[tuple[Prompt, Prompt, Prompt]] = None
    control: Optional[Callable[[float], tuple[np.ndarray, float]]] = None
    # Beyond the paper: the keyframes' displacement field (latentween.align); parents are moved by
    # their share of it before the noise-interpolate-denoise step (scheme "ours" only).
    alignment: Optional[object] = None
    # Beyond the paper: "stats" moves the parents to the keyframes' channel statistics interpolated at the
    # frame before noising (latentween.appearance; scheme "ours" only).
    appearance: str = _setting("appearance")
    # Fast path: with prune_at, each frame's candidates are ranked on previews after that share of its
    # steps and only the best `keep` finish; rank_early says the chooser is automatic (CLIP), not a person.
    prune_at: Optional[float] = None
    keep: int = _setting("keep")
    rank_early: bool = False
    takes: dict = field(default_factory=dict)  # frame index -> take (re-roll); absent frames are take 0

    @classmethod
    def from_settings(cls, settings: MorphSettings, **conditioning) -> "InterpolationRequest":
        """The request of a job's effective settings; `conditioning`: what the job's conditioning adds
        (text, control, alignment, rank_early, takes)."""
        return cls(fractions=settings.frame_fractions(), candidates=candidate_counter(settings.candidates),
                   prune_at=settings.prune_at or None, **{name: getattr(settings, name) for name in FROM_SETTINGS},
                   **conditioning)
