"""Keyframe images in, frames out: decoding, the fit policy, and atomic PNG writes. No torch.

Fit policy (documented in the README):
- The output size is --size, or the first keyframe's size. Each keyframe is fitted to it with
  `cover` (scale to fill, centre crop; the default), `contain` (scale to fit, centred on black or
  transparent bars) or `stretch`.
- The model runs at a work size: the output scaled so its short side is --work-size, or the model's
  native size, or the output's short side, whichever is smallest; each side rounded to a multiple of 8.
  In-between frames are resized back to the output size; the keyframes in the output are the fitted
  inputs themselves, never VAE round trips.
- Greyscale becomes RGB. Alpha: the model sees colour composited over black; the output keeps an
  alpha channel when either keyframe has one, interpolated linearly between the keyframes' alphas.
- 8-bit keyframes give 8-bit PNGs; 16-bit (or float) keyframes give 16-bit PNGs.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentween.errors import InputError

_UMASK = os.umask(0o022)
os.umask(_UMASK)  # read once at import: mkstemp makes 0600 files, frames should get the usual mode
MAX_PIXELS = 64_000_000  # 8000 x 8000; a larger "keyframe" is a decompression bomb, not a shot
_PNG_END = b"IEND\xaeB`\x82"


@dataclass
class Keyframe:
    """A decoded keyframe: float32 (H, W, 3 or 4) in [0, 1], plus what is needed to reproduce it."""

    pixels: np.ndarray
    bit_depth: int
    source: str
    sha256: str

    @property
    def has_alpha(self) -> bool:
        return self.pixels.shape[2] == 4

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


def decode_image(data: bytes, source: str) -> Keyframe:
    """Decode PNG (8/16-bit), JPEG, TIFF, WebP or anything OpenCV reads; one clear error otherwise."""
    import cv2

    if not data:
        raise InputError(f"keyframe {source!r} is empty (0 bytes)")
    _check_dimensions(data, source)
    if data[:8] == b"\x89PNG\r\n\x1a\n" and _PNG_END not in data[-32:]:
        raise InputError(f"keyframe {source!r} is a truncated PNG")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-16:]:
        raise InputError(f"keyframe {source!r} is a truncated JPEG")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise InputError(f"keyframe {source!r} is not a readable image (unsupported format or corrupt)")
    return Keyframe(*_to_float_rgb(array), source=source, sha256=hashlib.sha256(data).hexdigest())


def read_image(path: str | os.PathLike) -> Keyframe:
    """Read a keyframe from an image file."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"keyframe {str(path)!r} does not exist")
    if not path.is_file():
        raise InputError(f"keyframe {str(path)!r} is not a file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"keyframe {str(path)!r} cannot be read: {exc.strerror}") from exc
    return decode_image(data, str(path))


def _check_dimensions(data: bytes, source: str) -> None:
    """Refuse huge images from the header, before decoding allocates them."""
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(BytesIO(data)) as im:
            w, h = im.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return  # formats PIL does not know (EXR): OpenCV's own pixel limit applies
    if w * h > MAX_PIXELS:
        raise InputError(f"keyframe {source!r} is {w}x{h}, more than the {MAX_PIXELS:,}-pixel limit")
    if w == 0 or h == 0:
        raise InputError(f"keyframe {source!r} has zero size")


def _to_float_rgb(array: np.ndarray) -> tuple[np.ndarray, int]:
    import cv2

    if array.dtype == np.uint8:
        depth, scale = 8, 255.0
    elif array.dtype == np.uint16:
        depth, scale = 16, 65535.0
    else:
        depth, scale = 32, 1.0
    x = array.astype(np.float32) / scale
    if x.ndim == 2:
        x = cv2.cvtColor(x, cv2.COLOR_GRAY2RGB)
    elif x.shape[2] == 1:
        x = cv2.cvtColor(x[:, :, 0], cv2.COLOR_GRAY2RGB)
    elif x.shape[2] == 2:  # grey + alpha
        x = np.dstack([cv2.cvtColor(x[:, :, 0], cv2.COLOR_GRAY2RGB), x[:, :, 1]])
    elif x.shape[2] == 3:
        x = cv2.cvtColor(x, cv2.COLOR_BGR2RGB)
    else:
        x = cv2.cvtColor(x[:, :, :4], cv2.COLOR_BGRA2RGBA)
    return np.clip(x, 0.0, 1.0), depth


def resize(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize float pixels to (W, H): area averaging down, bicubic up."""
    import cv2

    w, h = size
    if (pixels.shape[1], pixels.shape[0]) == (w, h):
        return pixels
    shrinking = w * h < pixels.shape[0] * pixels.shape[1]
    out = cv2.resize(pixels, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC)
    if out.ndim == 2:
        out = out[:, :, None]
    return np.clip(out, 0.0, 1.0)


def fit_transform(src: tuple[int, int], dst: tuple[int, int], mode: str) -> tuple[float, float, int, int, int, int]:
    """Geometry of `fit`: a source point (x, y) lands at (x * sx + ox, y * sy + oy) in the output.
    Returns (sx, sy, ox, oy, scaled_w, scaled_h); used for pixels and for pose keypoints alike."""
    (src_w, src_h), (w, h) = src, dst
    if mode == "stretch" or (src_w, src_h) == (w, h):
        return w / src_w, h / src_h, 0, 0, w, h
    if mode == "cover":
        scale = max(w / src_w, h / src_h)
        sw, sh = max(w, round(src_w * scale)), max(h, round(src_h * scale))
        return sw / src_w, sh / src_h, -((sw - w) // 2), -((sh - h) // 2), sw, sh
    if mode == "contain":
        scale = min(w / src_w, h / src_h)
        sw, sh = min(w, max(1, round(src_w * scale))), min(h, max(1, round(src_h * scale)))
        return sw / src_w, sh / src_h, (w - sw) // 2, (h - sh) // 2, sw, sh
    raise ValueError(f"unknown fit {mode!r}")


def fit(pixels: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Fit a keyframe to the output size (W, H) by `cover`, `contain` or `stretch`."""
    w, h = size
    _, _, ox, oy, sw, sh = fit_transform((pixels.shape[1], pixels.shape[0]), size, mode)
    scaled = resize(pixels, (sw, sh))
    if (sw, sh) == (w, h):
        return scaled
    if ox <= 0 and oy <= 0:  # cover: crop the middle
        return scaled[-oy:-oy + h, -ox:-ox + w]
    canvas = np.zeros((h, w, pixels.shape[2]), np.float32)  # contain: black or transparent bars
    canvas[oy:oy + sh, ox:ox + sw] = scaled
    return canvas


def work_size(size: tuple[int, int], native: int, requested: int | None = None, multiple: int = 8) -> tuple[int, int]:
    """The size the model runs at (module docstring): short side min(requested or native, output's)."""
    w, h = size
    short = min(w, h)
    target = requested if requested else min(native, short)
    scale = target / short

    def snap(v: float) -> int:
        return max(multiple, int(round(v * scale / multiple)) * multiple)

    return snap(w), snap(h)


def composite_rgb(pixels: np.ndarray) -> np.ndarray:
    """What the model sees: RGB, with any alpha composited over black."""
    if pixels.shape[2] == 4:
        return pixels[:, :, :3] * pixels[:, :, 3:4]
    return pixels


def to_integer(pixels: np.ndarray, bit_depth: int) -> np.ndarray:
    """Float [0, 1] -> uint8 or uint16 with rounding."""
    if bit_depth == 8:
        return np.round(np.clip(pixels, 0, 1) * 255.0).astype(np.uint8)
    return np.round(np.clip(pixels, 0, 1) * 65535.0).astype(np.uint16)


def encode_png(pixels: np.ndarray) -> bytes:
    """uint8/uint16 RGB(A) -> PNG bytes (fast compression: frames are many and large)."""
    import cv2

    array = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", array, [cv2.IMWRITE_PNG_COMPRESSION, 1])
    if not ok:
        raise OSError("PNG encoding failed")
    return buf.tobytes()


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write bytes so the final name only ever holds a whole file: temp file, fsync, rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
