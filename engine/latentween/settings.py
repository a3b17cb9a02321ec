"""Job settings: defined once here, used by the CLI, the daemon's API and the manifest.

`MorphSettings` holds everything that changes the pixels of a result; `RuntimeSettings` holds how
the work is run (device, dtype, batching), which never changes the pixels. No torch import here:
clients validate settings without loading the engine.
"""
from __future__ import annotations

import math
import random
from typing import Annotated, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from latentween import easing
from latentween.schedulers import SchedulerName

DEFAULT_MODEL = "stable-diffusion-v1-5/stable-diffusion-v1-5"
MAX_FRAMES = 4096
MAX_SIDE = 8192

Scheme = Literal["ours", "interpolate-only", "interpolate-denoise", "did", "did-no-shared-noise"]
NoiseCurve = Literal["linear", "convex", "concave"]
Fit = Literal["cover", "contain", "stretch"]


class _FreeText:
    """Marks a text setting that never names a file. The daemon checks every other text setting as a
    path or a hub id (server.security), so a text setting added later is checked unless marked here."""

    def __repr__(self) -> str:
        return "FREE_TEXT"


FREE_TEXT = _FreeText()


# --preset draft: a preview at about 1/100 of the paper's UNet evaluations per frame (README, Speed).
PRESETS: dict[str, dict] = {"final": {}, "draft": {"steps": 8, "candidates": 1}}
# Consistency samplers go with distilled models or LoRAs (LCM, TCD, Hyper-SD) that want no guidance.
SCHEDULER_DEFAULTS: dict[str, dict] = {"lcm": {"guidance": 1.0}, "tcd": {"guidance": 1.0}}
# What a model folder may recommend in its latentween.json (models.read_recommendations).
RECOMMENDABLE = ("scheduler", "steps", "guidance", "true_cfg", "eta", "candidates", "min_noise", "max_noise", "noise_curve",
                 "prune_at", "keep", "align")


class MorphSettings(BaseModel):
    """What a morph job makes. Field descriptions are the CLI's help texts."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    model: str = Field(DEFAULT_MODEL, description="hub id, local diffusers folder, single .safetensors/.ckpt file, or 'toy' ('toy-shapes': the shapes world's)")
    frames: int = Field(17, ge=2, le=MAX_FRAMES, description="frames in the output, both keyframes included")
    fractions: Optional[list[float]] = Field(
        None, description="explicit frame positions in [0, 1], comma separated, first 0 and last 1 (overrides --frames)")
    ease: Annotated[str, FREE_TEXT] = Field("linear", description="timing of the frames: linear, ease, ease-in, ease-out, ease-in-out or cubic-bezier(x1,y1,x2,y2) as in CSS")
    prompt: Annotated[str, FREE_TEXT] = Field("", max_length=2000, description="text describing both keyframes")
    negative: Annotated[str, FREE_TEXT] = Field("", max_length=2000, description="negative prompt")
    seed: Optional[int] = Field(None, ge=0, lt=2**63, description="fixes every frame; default: a random seed, recorded in the manifest")
    scheduler: SchedulerName = Field(
        "auto", description="sampler (diffusers): ddim (the paper's), dpmpp-2m, dpmpp-2m-karras, euler, unipc, lcm, tcd; "
                            "auto: the model's own when it names lcm or tcd, else dpmpp-2m")
    steps: int = Field(40, ge=1, le=1000, description="sampler steps of the full schedule (the paper: 200-250 DDIM steps); "
                                                     "a frame runs only its noise level's share of them")
    guidance: float = Field(7.5, ge=0.0, le=50.0, description="classifier-free guidance scale (1 turns guidance off); "
                                                              "for Flux dev its embedded, distilled guidance (3.5 by default)")
    true_cfg: float = Field(1.0, ge=1.0, le=50.0, description="flow models (Flux): true classifier-free guidance with "
                                                             "the negative prompt, as FluxPipeline's true_cfg_scale "
                                                             "(1 = off: one transformer pass per step)")
    eta: float = Field(0.0, ge=0.0, le=1.0, description="DDIM eta (TCD gamma): 0 is deterministic")
    min_noise: float = Field(0.30, ge=0.0, le=1.0, description="noise for the closest parents, as a fraction of the schedule")
    max_noise: float = Field(0.55, ge=0.0, le=1.0, description="noise for the first midpoint, as a fraction of the schedule")
    noise_curve: NoiseCurve = Field("linear", description="how noise falls from max to min with the parents' distance")
    scheme: Scheme = Field("ours", description="interpolation scheme; the others are the paper's baselines")
    # Conditioning (docs/method.md 3-5)
    invert_steps: int = Field(0, ge=0, le=5000, description="textual-inversion steps per keyframe (the paper: 100-500; 0 turns it off)")
    pose: str = Field("none", description="pose guidance: auto (detect), A.json,B.json (OpenPose JSON files) or none")
    pose_model: str = Field("lllyasviel/Annotators", description="OpenPose body model: hub id or local folder with body_pose_model.pth")
    controlnet: Optional[str] = Field(None, description="OpenPose ControlNet: hub id, folder or file; default: lllyasviel/control_v11p_sd15_openpose")
    pose_people: Literal["all", "largest"] = Field("all", description="several people: pair them by order, or keep only the largest in each keyframe")
    pose_scale: float = Field(1.5, ge=0.0, le=5.0, description="ControlNet scale mid-way; 1 at the keyframes (docs/method.md 4)")
    candidates: Optional[int] = Field(None, ge=1, le=64, description="candidates per new frame; default: 8 at level 1, one fewer per level, at least 3; 1 turns ranking off")
    prune_at: Optional[float] = Field(
        0.3, ge=0.0, le=1.0, description="rank each frame's candidates after this share of its steps on cheap previews "
                                         "and finish only the best --keep (CLIP ranking only); 0 turns pruning off")
    keep: int = Field(1, ge=1, le=64, description="candidates per frame that finish after early ranking")
    preview_vae: Optional[str] = Field(
        None, description="a small VAE for the early-ranking previews (diffusers AutoencoderTiny: hub id or folder, "
                          "e.g. madebyollin/taesd); default: the model's VAE at half size")
    lora: list[str] = Field(
        default_factory=list, description="LoRA weights, PATH_OR_ID[:SCALE], repeatable (diffusers format; "
                                          "LCM/TCD/Hyper-SD/Turbo LoRAs want --scheduler lcm or tcd and --guidance 1)")
    preset: Literal["final", "draft"] = Field(
        "final", description="draft: a fast preview (8 steps, one candidate); final: the defaults")
    choose: Literal["clip", "manual", "consistency", "clip+consistency"] = Field(
        "clip", description="how a candidate is kept: CLIP ranking, the caller chooses (daemon), consistency with the "
                            "parents' (aligned) interpolation, or CLIP and consistency standardised and summed")
    consistency_weight: float = Field(
        1.0, ge=0.0, le=100.0, description="--choose clip+consistency: weight of the standardised consistency score "
                                           "added to the standardised CLIP score")
    rank_positive: Annotated[str, FREE_TEXT] = Field("high quality, detailed, 2D", max_length=2000, description="CLIP ranking: text the kept frame should match")
    rank_negative: Annotated[str, FREE_TEXT] = Field("blurry, distorted, 3D render", max_length=2000, description="CLIP ranking: text it should not match")
    clip_model: str = Field("ViT-L-14:openai", description="open_clip model:pretrained tag, or a folder with open_clip_config.json and weights")
    # Beyond the paper: move the parents by their share of the keyframes' displacement first (issue 9)
    align: Literal["none", "features", "pose", "points", "auto"] = Field(
        "auto", description="align the keyframes before interpolating: by diffusion features, pose keypoints, "
                            "--points, or auto (points, else pose, else features); none is the paper's exact method")
    # Beyond the paper (issue 17): DiffMorpher's AdaIN of the keyframes' channel statistics (latentween.appearance)
    appearance: Literal["none", "stats"] = Field(
        "none", description="stats: move each frame's parents to the keyframes' per-channel latent mean and std "
                            "interpolated at its fraction before noising (scheme ours), so distant colours pass "
                            "through colours rather than a grey mixture")
    points: Optional[str] = Field(None, description="JSON file of point pairs [[[xA, yA], [xB, yB]], ...] in the keyframes' pixels, for --align points/auto")
    size: Annotated[Optional[str], FREE_TEXT] = Field(None, description="output size WxH; default: the first keyframe's size")
    fit: Fit = Field("cover", description="how a keyframe of another aspect ratio fits the output size")
    work_size: Optional[int] = Field(
        None, ge=64, le=MAX_SIDE,
        description="short side in pixels the model runs at; default: the model's native size or the output's, whichever is smaller")
    # Re-roll (issue 20): a frame's take > 0 draws other noise from its parents' first take; the rest stay
    takes: dict[int, int] = Field(
        default_factory=dict, description="re-rolled frames as FRAME:TAKE,... (take 1 or more gives the frame new "
                                          "noise; every other frame, its descendants included, stays as in take 0)")

    @field_validator("size")
    @classmethod
    def _check_size(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return v
        parse_size(v)
        return v

    @field_validator("takes", mode="before")
    @classmethod
    def _parse_takes(cls, v):
        if isinstance(v, str):  # the CLI's --takes 3:1,5:2
            try:
                return {int(k): int(n) for k, n in (part.split(":") for part in v.replace(" ", "").split(",") if part)}
            except ValueError:
                raise ValueError(f"must look like 3:1,5:2 (frame:take), got {v!r}") from None
        return v

    @field_validator("takes")
    @classmethod
    def _normal_takes(cls, v: dict[int, int]) -> dict[int, int]:
        for frame, take in v.items():
            if take < 0:
                raise ValueError(f"frame {frame} has take {take}; takes are 0 or more")
        return {frame: take for frame, take in sorted(v.items()) if take}  # take 0 is every frame's default

    @model_validator(mode="after")
    def _check_takes(self) -> "MorphSettings":
        last = self.output_count() - 1
        for frame in self.takes:
            if not 0 < frame < last:
                raise ValueError(f"takes: frame {frame} is not a generated frame (1..{last - 1}); keyframes have no takes")
        if self.takes and (self.scheme.startswith("did") or self.scheme == "interpolate-only"):
            raise ValueError(f"takes re-roll a frame from its parents' latents, which scheme {self.scheme} does not use")
        return self

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

    @field_validator("ease")
    @classmethod
    def _check_ease(cls, v: str) -> str:
        return easing.canonical(v)

    @model_validator(mode="after")
    def _check_timing(self) -> "MorphSettings":
        if self.fractions is not None and self.ease != "linear":
            raise ValueError(f"--ease {self.ease} cannot be combined with explicit --fractions")
        values = self.frame_fractions()
        if any(b <= a for a, b in zip(values, values[1:])):
            raise ValueError(f"--ease {self.ease} puts two of the {len(values)} frames at the same position")
        return self

    @model_validator(mode="after")
    def _check_eta(self) -> "MorphSettings":
        if self.eta > 0 and self.scheduler not in ("ddim", "tcd"):
            raise ValueError(f"--eta {self.eta} needs --scheduler ddim or tcd (the samplers that have it), "
                             f"not {self.scheduler}")
        return self

    @model_validator(mode="after")
    def _check_appearance(self) -> "MorphSettings":
        if self.appearance != "none" and self.scheme != "ours":
            raise ValueError(f"--appearance {self.appearance} moves the parents of scheme ours; "
                             f"scheme {self.scheme} (a paper baseline) has none")
        return self

    @model_validator(mode="after")
    def _check_noise_range(self) -> "MorphSettings":
        if self.min_noise > self.max_noise:
            raise ValueError(f"min_noise ({self.min_noise}) must not exceed max_noise ({self.max_noise})")
        return self

    def with_defaults(self, recommended: Optional[dict] = None) -> "MorphSettings":
        """Fill what the user did not set, in layers: the field defaults, the preset's values, what the
        chosen sampler wants (guidance 1 for lcm and tcd), then the model folder's own recommendations (a
        Turbo model knows its steps better than a preset does). Anything the user set wins. Unknown keys
        in `recommended` are ignored."""
        recommended = {k: v for k, v in (recommended or {}).items() if k in RECOMMENDABLE}
        scheduler = self.scheduler if "scheduler" in self.model_fields_set else recommended.get("scheduler", self.scheduler)
        layers = {**PRESETS[self.preset], **SCHEDULER_DEFAULTS.get(scheduler, {}), **recommended}
        update = {k: v for k, v in layers.items() if k not in self.model_fields_set}
        if not update:
            return self
        return MorphSettings(**{**self.model_dump(exclude_unset=True), **update})

    def frame_fractions(self) -> list[float]:
        """Position of every output frame in [0, 1]."""
        if self.fractions is not None:
            return list(self.fractions)
        return easing.eased_fractions(self.frames, self.ease)

    def with_seed(self) -> "MorphSettings":
        """A copy whose seed is fixed (a random one when unset), so a manifest can reproduce it."""
        if self.seed is not None:
            return self
        return self.model_copy(update={"seed": random.SystemRandom().randrange(2**31)})

    def output_count(self) -> int:
        return len(self.fractions) if self.fractions is not None else self.frames

    @property
    def uses_clip(self) -> bool:
        """Whether candidates are ranked with CLIP (alone or beside consistency)."""
        return self.choose in ("clip", "clip+consistency")

    @property
    def ranks_automatically(self) -> bool:
        """Whether a ranking, not a person, picks candidates: early pruning may then rank previews."""
        return self.choose != "manual"


class RuntimeSettings(BaseModel):
    """How the work runs. Changes pixels at most in the last bits: frames are bit-identical for the same
    settings on the same machine and software; another max_batch, device or thread count gives frames
    equal within a small tolerance (docs/determinism.md)."""

    model_config = ConfigDict(extra="forbid")

    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field("auto", description="model weights' dtype (auto: float16 on CUDA, else float32)")
    max_batch: int = Field(8, ge=1, le=256, description="most samples per UNet call (guidance halves count); "
                           "fixes which frames run together")
    threads: Optional[int] = Field(
        None, ge=1, le=1024, description="CPU threads for the model; default: $OMP_NUM_THREADS, else 1 for small "
                                         "models (the toy) and every physical core for larger ones")
    checkpoint_config: Optional[str] = Field(
        None, description="a diffusers folder with the configs a single-file checkpoint needs when offline")


def free_text_fields(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` marked FREE_TEXT, and those whose values are a fixed set (a Literal): the
    model has validated them, and none can name a file (`clip+consistency` is no hub id either)."""
    import typing

    return frozenset(name for name, field in model.model_fields.items()
                     if FREE_TEXT in field.metadata or typing.get_origin(field.annotation) is typing.Literal)


def parse_size(text: str) -> tuple[int, int]:
    """'1280x720' -> (1280, 720)."""
    parts = text.lower().replace("*", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise ValueError(f"size must look like 1280x720, got {text!r}")
    w, h = int(parts[0]), int(parts[1])
    if not (8 <= w <= MAX_SIDE and 8 <= h <= MAX_SIDE):
        raise ValueError(f"size sides must be within 8..{MAX_SIDE}, got {text!r}")
    return w, h


# -- output (issue 4): how finished frames are delivered; never changes a generated pixel ----------

Codec = Literal["h264", "prores", "prores4444", "ffv1", "vp9", "av1"]
PipeFormat = Literal["rgb24", "rgba", "rgb48le"]


class OutputSettings(BaseModel):
    """Where and how frames are written: image sequence, encoded video or a raw pipe.

    Holds repeat the first/last frame on output only, so changing them (or the codec) re-encodes
    but never re-generates: none of these fields is part of a job's identity.
    """

    model_config = ConfigDict(extra="forbid")

    fps: str = Field("24", description="frame rate of a video: a number or a ratio such as 24000/1001")
    codec: Optional[Codec] = Field(None, description="video codec; default: from the --out suffix (.mp4 h264, .mov prores, .mkv ffv1, .webm vp9)")
    crf: Optional[int] = Field(None, ge=0, le=63, description="constant quality for h264 (0-51), vp9 and av1 (0-63); lower is better")
    pix_fmt: Optional[str] = Field(None, max_length=32, description="encoder pixel format, e.g. yuv422p10le; default: from the codec and the frames")
    pattern: str = Field("frame_%05d.png", max_length=200, description="file names of an image sequence: %05d or #### stands for the number")
    start_number: int = Field(0, ge=0, le=10**8, description="number of the first file of an image sequence")
    pipe: PipeFormat = Field("rgb24", description="raw frame format written to stdout with --out -")
    hold_start: int = Field(0, ge=0, le=MAX_FRAMES, description="extra frames showing the first keyframe before the motion starts")
    hold_end: int = Field(0, ge=0, le=MAX_FRAMES, description="extra frames showing the last keyframe after the motion ends")

    @field_validator("fps")
    @classmethod
    def _check_fps(cls, v: str) -> str:
        parse_fps(v)
        return v.strip()

    def rate(self):
        """The frame rate as a Fraction."""
        return parse_fps(self.fps)


def parse_fps(text: str):
    """'24000/1001' or '23.976' or '25' -> Fraction; 1/1000 to 1000 frames per second."""
    from fractions import Fraction

    try:
        rate = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"fps must be a number or a ratio such as 24000/1001, got {text!r}") from None
    if not Fraction(1, 1000) <= rate <= 1000:
        raise ValueError(f"fps must be within 1/1000 .. 1000, got {text!r}")
    return rate
