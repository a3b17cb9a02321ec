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
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from latentween.errors import InputError

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
    with _library_noise_dropped():
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


class ImageTooLarge(InputError):
    """A keyframe whose header claims more pixels than allowed: refused before any decoder allocates them."""


def _check_dimensions(data: bytes, source: str, limit: int = MAX_PIXELS) -> tuple[int, int]:
    """Refuse huge images from the header, before decoding allocates them."""
    width, height = image_size(data, source)
    if width * height > limit:
        raise ImageTooLarge(f"keyframe {source!r} is {width}x{height}, more than the {limit:,}-pixel limit")
    return width, height


# What OpenCV decodes, by the signature it picks its decoder by, and the name Pillow gives that format:
# the size comes from the header of the format that will be decoded, so a file cannot pass the check
# as one format and be decoded as another.
_PILLOW_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"Y\xa6j\x95", "SUN"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG2000"), (b"\xff\x4f\xff\x51", "JPEG2000"),
    *((b"P%d" % n, "PPM") for n in range(1, 7)),
)
_SIDE = rb"(\d{1,9})"  # a side of more digits is junk, and int() of a megabyte of digits is slow


def image_size(data: bytes, source: str) -> tuple[int, int]:
    """(width, height) read from the header of every format decode_image accepts; any other format is
    refused here, so no decoder ever sees a file whose size is unknown."""
    if not data:
        raise InputError(f"keyframe {source!r} is empty (0 bytes)")
    size = _own_header_size(data, source)
    if size is None:
        size = _pillow_size(data, source, _pillow_format(data, source))
    if size[0] <= 0 or size[1] <= 0:
        raise InputError(f"keyframe {source!r} has zero size")
    return size


def _pillow_format(data: bytes, source: str) -> str:
    for signature, name in _PILLOW_FORMATS:
        if data.startswith(signature):
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data[4:8] == b"ftyp" and data[8:12] in (b"avif", b"avis"):
        return "AVIF"
    raise InputError(f"keyframe {source!r} is not a readable image (unsupported format: use PNG, JPEG, TIFF, WebP, "
                     f"BMP, GIF, AVIF, JPEG 2000, Radiance HDR, PFM or PNM)")


def _pillow_size(data: bytes, source: str, name: str) -> tuple[int, int]:
    from io import BytesIO

    from PIL import Image

    Image.init()
    # Pillow's plugin itself, not Image.open: that one refuses past its own bomb limit without saying
    # the size, and warns below it; the limit here is ours (MAX_PIXELS, --max-pixels)
    if name not in Image.OPEN:  # a plugin this Pillow was built without (AVIF needs libavif)
        raise InputError(f"keyframe {source!r} is not a readable image ({name} is not supported here)")
    factory, _ = Image.OPEN[name]
    try:
        with factory(BytesIO(data), "") as im:
            return im.size
    except Exception:  # Pillow's parsers raise many kinds of error on a hostile header; all mean the same
        raise InputError(f"keyframe {source!r} is not a readable image (corrupt {name} header)") from None


def _own_header_size(data: bytes, source: str):
    """The size of the formats OpenCV decodes and Pillow does not read: Radiance HDR, PFM, PAM, OpenEXR."""
    import re

    head = data[:65536]
    match = None
    if head.startswith((b"#?RADIANCE", b"#?RGBE")):
        end = head.find(b"\n\n")  # the header ends at its first empty line; the resolution line follows
        match = re.match(rb"([-+])([XY]) " + _SIDE + rb" [-+]([XY]) " + _SIDE + rb"\s", head[end + 2:]) if end > 0 else None
        if match:
            first, second = int(match.group(3)), int(match.group(5))
            return (second, first) if match.group(2) == b"Y" else (first, second)
        kind = "Radiance HDR"
    elif head[:2] in (b"PF", b"Pf"):
        match = re.match(rb"P[Ff]\s+" + _SIDE + rb"\s+" + _SIDE + rb"\s", head)
        kind = "PFM"
    elif head[:2] == b"P7":
        width, height = re.search(rb"\nWIDTH\s+" + _SIDE, head), re.search(rb"\nHEIGHT\s+" + _SIDE, head)
        if width and height:
            return int(width.group(1)), int(height.group(1))
        kind = "PAM"
    elif head[:4] == b"\x76\x2f\x31\x01":
        return _exr_size(head, source)
    else:
        return None
    if match:
        return int(match.group(1)), int(match.group(2))
    raise InputError(f"keyframe {source!r} is not a readable image (corrupt {kind} header)")


def _exr_size(head: bytes, source: str) -> tuple[int, int]:
    """OpenEXR: the dataWindow attribute (box2i: xMin, yMin, xMax, yMax) of a single-part header."""
    import struct

    flags = int.from_bytes(head[5:8], "little")
    position = 8
    while not flags & 0x10 and position < len(head):  # 0x10 << 8: multi-part files are not read
        name_end = head.find(b"\0", position)
        type_end = head.find(b"\0", name_end + 1)
        if name_end <= position or type_end < 0 or type_end + 5 > len(head):
            break
        (length,) = struct.unpack_from("<i", head, type_end + 1)
        value = head[type_end + 5:type_end + 5 + length]
        if head[position:name_end] == b"dataWindow" and len(value) == 16:
            x0, y0, x1, y1 = struct.unpack("<4i", value)
            return x1 - x0 + 1, y1 - y0 + 1
        position = type_end + 5 + max(length, 0)
    raise InputError(f"keyframe {source!r} is not a readable image (an OpenEXR header without a data window)")


# Lines image libraries print from C on a bad file: libpng, libjpeg, libtiff and OpenCV's own log.
_NOISE = (b"libpng ", b"Corrupt JPEG", b"Premature end of JPEG", b"Invalid SOS", b"Invalid JPEG", b"Not a JPEG",
          b"Unsupported marker", b"Warning: unknown JFIF", b"JPEG datastream", b"TIFF", b"[ WARN", b"[ERROR", b"[ INFO")
_noise_lock = threading.Lock()


@contextmanager
def _library_noise_dropped():
    """Decoders print to the process's stderr from C (libpng's 'IDAT: CRC error', libjpeg's 'Corrupt
    JPEG data'): lines that would come before the CLI's one-line error and litter the daemon's log.
    Meanwhile stderr goes to a file; what other threads wrote there is passed on afterwards."""
    with _noise_lock:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all: nothing to keep clean
            yield
            return
        with tempfile.TemporaryFile() as caught:
            os.dup2(caught.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                caught.seek(0)
                kept = [line for line in caught.read().splitlines(keepends=True) if not line.startswith(_NOISE)]
                if kept:
                    os.write(2, b"".join(kept))

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
