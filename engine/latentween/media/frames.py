"""Frame arrays between the engine's PNG files and the writers: reading, channel and depth changes.

Frames are uint8 or uint16 arrays (H, W, 3 or 4), RGB(A), straight (not premultiplied) alpha.
"""
from __future__ import annotations

import os

import numpy as np

from latentween.errors import InputError


def read_frame(path: str | os.PathLike) -> np.ndarray:
    """A finished frame file (PNG) as uint8/uint16 RGB(A)."""
    import cv2

    array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise InputError(f"frame {str(path)!r} is missing or unreadable")
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2RGB)
    if array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2RGBA)
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def conform(pixels: np.ndarray, channels: int, bit_depth: int) -> np.ndarray:
    """Convert to `channels` (3 or 4) and `bit_depth` (8 or 16).

    Added alpha is opaque; dropped alpha is composited over black, the same background the model
    saw. 8 -> 16 bits multiplies by 257 (exact), 16 -> 8 rounds.
    """
    if pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"frames must be uint8 or uint16, got {pixels.dtype}")
    top = 255 if pixels.dtype == np.uint8 else 65535
    if pixels.shape[2] == 4 and channels == 3:
        alpha = pixels[:, :, 3:4].astype(np.float32) / top
        pixels = np.round(pixels[:, :, :3] * alpha).astype(pixels.dtype)
    elif pixels.shape[2] == 3 and channels == 4:
        pixels = np.dstack([pixels, np.full(pixels.shape[:2], top, pixels.dtype)])
    if bit_depth == 16 and pixels.dtype == np.uint8:
        return pixels.astype(np.uint16) * 257
    if bit_depth == 8 and pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return pixels


# --pipe format -> (channels, bit depth)
PIPE_FORMATS = {"rgb24": (3, 8), "rgba": (4, 8), "rgb48le": (3, 16)}


def raw_bytes(pixels: np.ndarray, pipe_format: str) -> bytes:
    """One frame as raw bytes for `ffmpeg -f rawvideo -pix_fmt <pipe_format>`."""
    channels, depth = PIPE_FORMATS[pipe_format]
    out = conform(pixels, channels, depth)
    if depth == 16:
        out = out.astype("<u2", copy=False)
    return np.ascontiguousarray(out).tobytes()


def from_raw(data: bytes, size: tuple[int, int], pipe_format: str) -> np.ndarray:
    channels, depth = PIPE_FORMATS[pipe_format]
    w, h = size
    dtype = np.uint8 if depth == 8 else np.dtype("<u2")
    return np.frombuffer(data, dtype).reshape(h, w, channels).astype(np.uint8 if depth == 8 else np.uint16)
