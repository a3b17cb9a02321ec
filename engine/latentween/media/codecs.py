"""The codec table: which encoder, pixel format, options and containers each `--codec` means.

Defaults aim at what editors import: H.264 4:2:0 8-bit in MP4 (CRF 18), ProRes 422 HQ (or 4444 with
alpha) in MOV, FFV1 in MKV storing RGB losslessly (16-bit when the frames are), VP9 (with alpha) and
AV1 in WebM. Odd sizes: only libx264 refuses them (4:2:0 and 4:2:2 need an even width, 4:2:0 an
even height) and prores_ks garbles the last columns of an odd-width 4:2:2 frame, so for H.264 and
ProRes 422 the frame is padded to even by repeating its last column/row (one more column or row
than the frames, never a lost one); every other encoder keeps the exact size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from latentween.errors import InputError

# suffix -> (muxer, default codec)
CONTAINERS = {
    ".mp4": ("mp4", "h264"), ".m4v": ("mp4", "h264"), ".mov": ("mov", "prores"),
    ".mkv": ("matroska", "ffv1"), ".webm": ("webm", "vp9"),
}


@dataclass(frozen=True)
class CodecSpec:
    """One `--codec` value. Pixel formats by (has alpha, 16-bit frames); None: that case has no format."""

    name: str
    encoder: str
    suffixes: tuple[str, ...]
    formats: dict = field(default_factory=dict)  # (alpha, deep) -> pix_fmt
    crf: Optional[tuple[int, int, int]] = None  # (default, min, max); None: not a CRF codec
    options: dict = field(default_factory=dict)
    profile: Optional[str] = None

    def pix_fmt(self, alpha: bool, deep: bool) -> tuple[str, bool]:
        """(format, alpha kept) for frames with/without alpha and with 8/16-bit samples."""
        if alpha and (True, deep) in self.formats:
            return self.formats[(True, deep)], True
        return self.formats[(False, deep)], False


CODECS: dict[str, CodecSpec] = {
    "h264": CodecSpec("h264", "libx264", (".mp4", ".m4v", ".mov", ".mkv"),
                      {(False, False): "yuv420p", (False, True): "yuv420p"},
                      crf=(18, 0, 51), options={"preset": "medium"}),
    "prores": CodecSpec("prores", "prores_ks", (".mov", ".mkv"),
                        {(False, False): "yuv422p10le", (False, True): "yuv422p10le"}, profile="3"),  # 422 HQ
    "prores4444": CodecSpec("prores4444", "prores_ks", (".mov", ".mkv"),
                            {(False, False): "yuv444p10le", (False, True): "yuv444p10le",
                             (True, False): "yuva444p10le", (True, True): "yuva444p10le"}, profile="4"),
    "ffv1": CodecSpec("ffv1", "ffv1", (".mkv",),
                      {(False, False): "bgr0", (False, True): "gbrp16le",
                       (True, False): "bgra", (True, True): "gbrap16le"},
                      options={"level": "3", "slicecrc": "1"}),
    "vp9": CodecSpec("vp9", "libvpx-vp9", (".webm", ".mkv", ".mp4"),
                     {(False, False): "yuv420p", (False, True): "yuv420p",
                      (True, False): "yuva420p", (True, True): "yuva420p"},
                     crf=(31, 0, 63), options={"b": "0", "row-mt": "1", "deadline": "good", "cpu-used": "4"}),
    "av1": CodecSpec("av1", "libsvtav1", (".webm", ".mkv", ".mp4"),
                     {(False, False): "yuv420p", (False, True): "yuv420p10le"},
                     crf=(35, 0, 63), options={"preset": "8"}),
}

RGB_FORMATS = {"bgr0", "bgra", "gbrp", "gbrap", "gbrp16le", "gbrap16le", "rgb24", "rgba", "rgb48le", "rgba64le"}


@dataclass(frozen=True)
class EncodePlan:
    """Everything needed to open the encoder: resolved from the suffix, the frames and the overrides."""

    codec: CodecSpec
    muxer: str
    pix_fmt: str
    options: dict
    alpha: bool          # the file carries the frames' alpha
    pad_even: tuple[bool, bool]  # (width, height) padded to even

    @property
    def rgb(self) -> bool:
        return self.pix_fmt in RGB_FORMATS


def is_video_path(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in CONTAINERS


# Media suffixes that mimetypes does not call video/image/audio, or calls something else (.ts: Qt)
_OTHER_MEDIA = {".mxf", ".ts", ".m2ts", ".mts", ".y4m", ".r3d", ".braw", ".apng", ".exr", ".dpx", ".nut"}


def output_kind(out: str | Path) -> str:
    """What `--out` names: 'pipe' (-), 'video', 'animation' (.gif .webp) or 'folder' (PNG frames).

    A name with a media suffix latentween does not write (.avi, .png, ...) is refused with one line
    instead of becoming a folder of that name.
    """
    import mimetypes

    from latentween.media.animated import ANIMATIONS

    text = str(out)
    if text == "-":
        return "pipe"
    suffix = Path(text).suffix.lower()
    if suffix in CONTAINERS:
        return "video"
    if suffix in ANIMATIONS:
        return "animation"
    kind = (mimetypes.guess_type("x" + suffix)[0] or "") if suffix else ""
    if suffix in _OTHER_MEDIA or kind.split("/")[0] in ("video", "image", "audio"):
        raise InputError(f"--out {text!r}: {suffix} is not a supported output suffix; use a video "
                         f"({' '.join(CONTAINERS)}), an animation ({' '.join(ANIMATIONS)}), a folder for PNG "
                         f"frames, or - for raw frames on stdout")
    return "folder"


def plan_encode(out_path: str | Path, *, alpha: bool, deep: bool, codec: Optional[str] = None,
                crf: Optional[int] = None, pix_fmt: Optional[str] = None) -> EncodePlan:
    """Resolve `--codec/--crf/--pix-fmt` against the output suffix; one InputError line if they clash."""
    import av

    suffix = Path(str(out_path)).suffix.lower()
    if suffix not in CONTAINERS:
        raise InputError(f"unknown video suffix {suffix or '(none)'!r} for {str(out_path)!r}: "
                         f"use {', '.join(CONTAINERS)} or a folder")
    muxer, default = CONTAINERS[suffix]
    name = codec or default
    if name == "prores" and alpha and codec is None:
        name = "prores4444"  # ProRes 422 has no alpha; the suffix chose ProRes, so keep the alpha
    if name not in CODECS:
        raise InputError(f"unknown codec {name!r}: use {', '.join(CODECS)}")
    spec = CODECS[name]
    if suffix not in spec.suffixes:
        raise InputError(f"codec {name} cannot go in a {suffix} file: use {', '.join(spec.suffixes)}")
    options = dict(spec.options)
    if crf is not None:
        if spec.crf is None:
            raise InputError(f"--crf applies to {', '.join(n for n, c in CODECS.items() if c.crf)}, not {name}")
        if not spec.crf[1] <= crf <= spec.crf[2]:
            raise InputError(f"--crf for {name} must be within {spec.crf[1]}..{spec.crf[2]}, got {crf}")
    if spec.crf is not None:
        options["crf"] = str(crf if crf is not None else spec.crf[0])
    if spec.profile is not None:
        options["profile"] = spec.profile
    chosen, kept = spec.pix_fmt(alpha, deep)
    if pix_fmt is not None:
        supported = [f.name for f in (av.codec.Codec(spec.encoder, "w").video_formats or [])]
        if pix_fmt not in supported:
            raise InputError(f"--pix-fmt {pix_fmt} is not supported by {spec.encoder}: use one of {', '.join(supported)}")
        chosen = pix_fmt
        kept = alpha and _has_alpha(pix_fmt)
    return EncodePlan(spec, muxer, chosen, options, kept, _pad_even(spec, chosen))


def _has_alpha(pix_fmt: str) -> bool:
    import av

    return any(c.is_alpha for c in av.VideoFormat(pix_fmt).components)


def _pad_even(spec: CodecSpec, pix_fmt: str) -> tuple[bool, bool]:
    if spec.encoder not in ("libx264", "prores_ks"):  # VP9, AV1 and FFV1 code odd sizes exactly
        return False, False
    if "420" in pix_fmt or pix_fmt in ("nv12", "nv21"):
        return True, True
    if "422" in pix_fmt or pix_fmt in ("nv16", "nv20le"):
        return True, False
    return False, False
