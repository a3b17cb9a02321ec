"""Media in and out, headless, with PyAV and OpenCV (no ffmpeg subprocess, no torch at import).

Stable entry points (the CLI and the daemon use these):
- `load_keyframe(spec) -> Keyframe`: an image file, `clip.mp4@120` (frame 120, from 0) or
  `clip.mov@00:00:05.000` (the frame shown at that time), decoded exactly (see media.read).
- `encode_video(frames, out_path, fps, codec=None, crf=None, pix_fmt=None) -> dict`: an ordered
  sequence of PNG paths or uint8/uint16 RGB(A) arrays into one .mp4/.m4v/.mov/.mkv/.webm file.
- `open_writer(out, size, output_settings, alpha=, deep=)`: a writer for a folder (PNG sequence),
  a video file, an animated .gif/.webp (media.animated, Pillow) or '-' (raw pipe); `output_kind(out)`
  says which, refusing other media suffixes; `OrderedSink` feeds it frames the engine finishes out of order.

Codecs (media.codecs): h264 (libx264, yuv420p, MP4), prores (prores_ks 422 HQ yuv422p10le, or 4444
yuva444p10le when the frames have alpha; MOV), prores4444, ffv1 (lossless RGB: bgr0/bgra, or
gbrp16le/gbrap16le for 16-bit frames; MKV), vp9 (libvpx-vp9 yuv420p, yuva420p with alpha; WebM),
av1 (libsvtav1 yuv420p, yuv420p10le for 16-bit frames; WebM).
"""
from latentween.media.animated import AnimationWriter
from latentween.media.codecs import CODECS, CONTAINERS, EncodePlan, is_video_path, output_kind, plan_encode
from latentween.media.frames import PIPE_FORMATS, conform, read_frame
from latentween.media.ordered import OrderedSink
from latentween.media.read import KeyframeSpec, load_keyframe, parse_spec, read_video_frame
from latentween.media.video import VideoWriter, encode_video
from latentween.media.writers import PipeWriter, SequenceWriter, claimed_stdout, frame_namer, open_writer

__all__ = [
    "AnimationWriter", "output_kind", "CODECS", "CONTAINERS", "EncodePlan", "KeyframeSpec", "OrderedSink", "PIPE_FORMATS", "PipeWriter",
    "SequenceWriter", "VideoWriter", "claimed_stdout", "conform", "encode_video", "frame_namer",
    "is_video_path", "load_keyframe", "open_writer", "parse_spec", "plan_encode", "read_frame",
    "read_video_frame",
]
