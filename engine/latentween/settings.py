"""Job settings: defined once here, used by the CLI, the daemon's API and the manifest.

`MorphSettings` holds everything that changes the pixels of a result; `RuntimeSettings` holds how
the work is run (device, dtype, batching), which never changes the pixels. No torch import here:
clients validate settings without loading the engine.
"""
from __future__ import annotations

import math
import random
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
MAX_FRAMES = 4096
MAX_SIDE = 8192

Scheme = Literal["ours", "interpolate-only", "interpolate-denoise", "did", "did-no-shared-noise"]
NoiseCurve = Literal["linear", "convex", "concave"]
Fit = Literal["cover", "contain", "stretch"]


class MorphSettings(BaseModel):
    """What a morph job makes. Field descriptions are the CLI's help texts."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(DEFAULT_MODEL, description="hub id, local diffusers folder, single .safetensors/.ckpt file, or 'toy'")
    frames: int = Field(17, ge=2, le=MAX_FRAMES, description="frames in the output, both keyframes included")
    fractions: Optional[list[float]] = Field(
        None, description="explicit frame positions in [0, 1], comma separated, first 0 and last 1 (overrides --frames)")
    prompt: str = Field("", max_length=2000, description="text describing both keyframes")
    negative: str = Field("", max_length=2000, description="negative prompt")
    seed: Optional[int] = Field(None, ge=0, lt=2**63, description="fixes every frame; default: a random seed, recorded in the manifest")
    steps: int = Field(50, ge=1, le=1000, description="DDIM steps of the full schedule (the paper used 200-250)")
    guidance: float = Field(7.5, ge=0.0, le=50.0, description="classifier-free guidance scale (1 turns guidance off)")
    eta: float = Field(0.0, ge=0.0, le=1.0, description="DDIM eta: 0 is deterministic DDIM")
    min_noise: float = Field(0.30, ge=0.0, le=1.0, description="noise for the closest parents, as a fraction of the schedule")
    max_noise: float = Field(0.55, ge=0.0, le=1.0, description="noise for the first midpoint, as a fraction of the schedule")
    noise_curve: NoiseCurve = Field("linear", description="how noise falls from max to min with the parents' distance")
    scheme: Scheme = Field("ours", description="interpolation scheme; the others are the paper's baselines")
    size: Optional[str] = Field(None, description="output size WxH; default: the first keyframe's size")
    fit: Fit = Field("cover", description="how a keyframe of another aspect ratio fits the output size")
    work_size: Optional[int] = Field(
        None, ge=64, le=MAX_SIDE,
        description="short side in pixels the model runs at; default: the model's native size or the output's, whichever is smaller")

    @field_validator("size")
    @classmethod
    def _check_size(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        parse_size(v)
        return v

    @field_validator("fractions")
    @classmethod
    def _check_fractions(cls, v: Optional[list[float]]) -> Optional[list[float]]:
        if v is None:
            return v
        if len(v) < 2 or len(v) > MAX_FRAMES:
            raise ValueError(f"needs 2 to {MAX_FRAMES} values, got {len(v)}")
        if any(not math.isfinite(f) for f in v):
            raise ValueError("must be finite numbers")
        if v[0] != 0.0 or v[-1] != 1.0:
            raise ValueError(f"must start at 0 and end at 1, got {v[0]} .. {v[-1]}")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("must be strictly increasing")
        return v

    @model_validator(mode="after")
    def _check_noise_range(self) -> "MorphSettings":
        if self.min_noise > self.max_noise:
            raise ValueError(f"min_noise ({self.min_noise}) must not exceed max_noise ({self.max_noise})")
        return self

    def frame_fractions(self) -> list[float]:
        """Position of every output frame in [0, 1]."""
        if self.fractions is not None:
            return list(self.fractions)
        n = self.frames
        return [i / (n - 1) for i in range(n)]

    def with_seed(self) -> "MorphSettings":
        """A copy whose seed is fixed (a random one when unset), so a manifest can reproduce it."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": random.SystemRandom().randrange(2**31)})

    def output_count(self) -> int:
        return len(self.fractions) if self.fractions is not None else self.frames


class RuntimeSettings(BaseModel):
    """How the work runs. Never changes the pixels (frames are bit-identical whatever max_batch)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="model weights' dtype (auto: float16 on CUDA, else float32)")
    max_batch: int = Field(8, ge=1, le=256, description="most samples per UNet call (guidance halves count)")
    checkpoint_config: Optional[str] = Field(
        None, description="a diffusers folder with the configs a single-file checkpoint needs when offline")


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size must look like 1280x720, got {text!r}")
    w, h = int(parts[0]), int(parts[1])
    if not (8 <= w <= MAX_SIDE and 8 <= h <= MAX_SIDE):
        raise ValueError(f"size sides must be within 8..{MAX_SIDE}, got {text!r}")
    return w, h
