"""Writing: every codec through PyAV and back, Debian's ffprobe/ffmpeg reading our files, image
sequences, raw pipes, and the in-order sink."""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import disk_image
from latentween.errors import InputError
from latentween.media import OrderedSink, SequenceWriter, encode_video, frame_namer, plan_encode
from latentween.media.frames import raw_bytes
from media_support import decode_all, ffmpeg_peer, ffprobe  # noqa: F401 (fixture)

FPS = Fraction(24000, 1001)


def frames(count=6, size=64, alpha=False, deep=False):
    """Moving disks: real edges and colours, different first and last frames."""
    out = []
    for i in range(count):
        rgb = disk_image((16 + 6 * i, 30), (200, 40 + 20 * i, 30), size=size)
        if alpha:
            a = np.full((size, size), 255, np.uint8)
            a[:, : size // 2] = 90
            rgb = np.dstack([rgb, a])
        out.append(rgb.astype(np.uint16) * 257 if deep else rgb)
    return out


def eight_bit(pixels):
    return pixels.astype(np.float64) / (257.0 if pixels.dtype == np.uint16 else 1.0)


# (suffix, codec, alpha, deep, pix_fmt written, tolerance: mean abs error in 8-bit steps; 0 = lossless)
ROUND_TRIPS = [
    ("mp4", None, False, False, "yuv420p", 6.0),
    ("mov", None, False, True, "yuv422p10le", 3.0),
    ("mov", None, True, False, "yuva444p10le", 2.0),
    ("mov", "prores4444", False, False, "yuv444p10le", 2.0),
    ("mkv", None, False, False, "bgr0", 0.0),
    ("mkv", None, False, True, "gbrp16le", 0.0),
    ("mkv", None, True, True, "gbrap16le", 0.0),
    ("webm", None, False, False, "yuv420p", 6.0),
    ("webm", None, True, False, "yuva420p", 6.0),
    ("webm", "av1", False, False, "yuv420p", 6.0),
    ("webm", "av1", False, True, "yuv420p10le", 6.0),
]


@pytest.mark.parametrize("suffix, codec, alpha, deep, pix_fmt, tolerance", ROUND_TRIPS)
def test_codec_round_trip_keeps_count_size_fps_and_pixels(tmp_path, suffix, codec, alpha, deep, pix_fmt, tolerance):
    source = frames(alpha=alpha, deep=deep)
    info = encode_video(source, tmp_path / f"out.{suffix}", FPS, codec=codec)
    assert info["pix_fmt"] == pix_fmt and info["alpha"] == alpha
    decoded, stream = decode_all(tmp_path / f"out.{suffix}", alpha=alpha)
    assert len(decoded) == len(source)
    assert (decoded[0].shape[1], decoded[0].shape[0]) == (64, 64)
    assert stream.average_rate == FPS
    for got, want in ((decoded[0], source[0]), (decoded[-1], source[-1])):
        if tolerance == 0:
            assert np.array_equal(got, want)
        else:
            assert np.abs(eight_bit(got) - eight_bit(want)).mean() <= tolerance


@pytest.mark.parametrize("suffix, codec", [("mp4", "h264"), ("mov", "prores"), ("mkv", "ffv1"), ("webm", "vp9"),
                                           ("webm", "av1"), ("mov", "prores4444")])
def test_debian_ffprobe_reads_our_files_with_rate_count_and_bt709_tags(tmp_path, ffmpeg_peer, suffix, codec):
    path = tmp_path / f"out.{suffix}"
    encode_video(frames(), path, "24000/1001", codec=codec)
    stream = ffprobe(ffmpeg_peer, path)
    assert int(stream["nb_read_frames"]) == 6 and (stream["width"], stream["height"]) == (64, 64)
    assert stream["r_frame_rate"] == "24000/1001"
    assert stream.get("color_primaries") == "bt709" and stream.get("color_transfer") == "bt709"
    assert stream.get("color_space") == ("gbr" if codec == "ffv1" else "bt709")


def test_debian_ffmpeg_decodes_our_files_to_the_same_pixels(tmp_path, ffmpeg_peer):
    import subprocess

    path = tmp_path / "out.mkv"
    source = frames()
    encode_video(source, path, 24)
    raw = subprocess.run([ffmpeg_peer["ffmpeg"], "-v", "error", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    assert raw == b"".join(f.tobytes() for f in source)


@pytest.mark.parametrize("suffix, codec, coded", [
    ("mp4", None, (34, 18)), ("mov", None, (34, 17)), ("mov", "prores4444", (33, 17)), ("webm", None, (33, 17)),
    ("webm", "av1", (33, 17)), ("mkv", None, (33, 17)),
])
def test_odd_sizes_are_padded_to_even_only_for_h264_and_prores_422(tmp_path, suffix, codec, coded):
    source = [f[:17, :33] for f in frames()]
    encode_video(source, tmp_path / f"odd.{suffix}", 24, codec=codec)
    decoded, _ = decode_all(tmp_path / f"odd.{suffix}")
    assert (decoded[0].shape[1], decoded[0].shape[0]) == coded and len(decoded) == 6
    # padding repeats the edge: the picture itself is where it was
    assert np.abs(eight_bit(decoded[-1])[:17, :33] - source[-1]).mean() < 8


def test_codecs_without_alpha_composite_over_black(tmp_path):
    rgba = np.dstack([np.full((64, 64, 3), 200, np.uint8), np.full((64, 64), 0, np.uint8)])
    encode_video([rgba, rgba], tmp_path / "a.mp4", 24)
    decoded, _ = decode_all(tmp_path / "a.mp4")
    assert decoded[0].mean() < 20


@pytest.mark.parametrize("out, kwargs, words", [
    ("a.mp4", {"codec": "prores"}, "cannot go in a .mp4"),
    ("a.mkv", {"crf": 20}, "--crf applies to"),
    ("a.mp4", {"crf": 60}, "within 0..51"),
    ("a.mp4", {"pix_fmt": "rgb24"}, "not supported by libx264"),
    ("a.avi", {}, "unknown video suffix"),
])
def test_bad_codec_choices_are_one_clear_error(out, kwargs, words):
    with pytest.raises(InputError, match=words):
        plan_encode(out, alpha=False, deep=False, **kwargs)


def test_overrides_reach_the_encoder(tmp_path):
    info = encode_video(frames(), tmp_path / "a.mp4", 25, crf=30, pix_fmt="yuv444p")
    decoded, stream = decode_all(tmp_path / "a.mp4")
    assert info["pix_fmt"] == "yuv444p" and stream.codec_context.pix_fmt == "yuv444p"


def test_a_failed_encode_leaves_no_file(tmp_path):
    good = frames()
    with pytest.raises(InputError, match="is 32x32"):
        encode_video([good[0], good[1][:32, :32]], tmp_path / "a.mp4", 24)
    assert list(tmp_path.iterdir()) == []


def test_frame_paths_can_be_encoded(tmp_path):
    paths = []
    for i, f in enumerate(frames(3)):
        paths.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    assert encode_video(paths, tmp_path / "a.mkv", 24)["frames"] == 3


@pytest.mark.parametrize("pattern, number, name", [
    ("frame_%05d.png", 7, "frame_00007.png"), ("shot.####.png", 1001, "shot.1001.png"), ("f%d.png", 12, "f12.png"),
])
def test_sequence_patterns_name_files_like_ffmpeg_and_editors(pattern, number, name):
    assert frame_namer(pattern)(number) == name


@pytest.mark.parametrize("pattern", ["f.png", "f_%d_%d.png", "sub/f%04d.png", "f%04d.jpg", "f%s.png"])
def test_bad_sequence_patterns_are_refused(pattern):
    with pytest.raises(ValueError):
        frame_namer(pattern)


def test_sequence_writer_numbers_from_start_and_keeps_sixteen_bits(tmp_path):
    writer = SequenceWriter(tmp_path, deep=True, pattern="shot.####.png", start_number=1001)
    for f in frames(3, deep=True):
        writer.write(f)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shot.1001.png", "shot.1002.png", "shot.1003.png"]
    back = cv2.imread(str(tmp_path / "shot.1003.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint16 and np.array_equal(cv2.cvtColor(back, cv2.COLOR_BGR2RGB), frames(3, deep=True)[2])


def test_pipe_formats_have_the_right_layout():
    rgb = frames(1)[0]
    assert raw_bytes(rgb, "rgb24") == rgb.tobytes()
    assert len(raw_bytes(rgb, "rgba")) == 64 * 64 * 4
    wide = np.frombuffer(raw_bytes(rgb, "rgb48le"), "<u2").reshape(64, 64, 3)
    assert np.array_equal(wide, rgb.astype(np.uint16) * 257)


class Recorder:
    def __init__(self):
        self.frames = []

    def write(self, pixels):
        self.frames.append(int(pixels[0, 0, 0]))


def test_the_sink_writes_out_of_order_frames_in_order_with_holds(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / f"f{i}.png")
        cv2.imwrite(str(paths[-1]), np.full((4, 4, 3), i, np.uint8))
    recorder = Recorder()
    sink = OrderedSink([paths[0], paths[0], *paths, paths[4]], recorder)
    sink.mark(paths[0], paths[4])
    assert recorder.frames == [0, 0, 0]
    sink.mark(paths[2])  # the midpoint: nothing more can go out yet
    assert recorder.frames == [0, 0, 0]
    sink.mark(paths[1])
    assert recorder.frames == [0, 0, 0, 1, 2]
    sink.mark(paths[3])
    assert recorder.frames == [0, 0, 0, 1, 2, 3, 4, 4] and sink.complete


def test_the_sink_reads_each_frame_from_disk_only_when_its_turn_comes(tmp_path, monkeypatch):
    from latentween.media import ordered

    reads = []
    monkeypatch.setattr(ordered, "read_frame", lambda p: reads.append(p.name) or np.zeros((2, 2, 3), np.uint8))
    paths = [tmp_path / f"f{i}.png" for i in range(4)]
    sink = OrderedSink(paths, Recorder())
    sink.mark(paths[3], paths[2])
    assert reads == []
    sink.mark(paths[0], paths[1])
    assert reads == ["f0.png", "f1.png", "f2.png", "f3.png"]


def test_a_sequence_writer_removes_temp_files_a_killed_run_left(tmp_path):
    (tmp_path / ".shot.1004.png.abc123.part").write_bytes(b"half a frame")
    (tmp_path / ".notes.txt.part").write_bytes(b"not ours")
    SequenceWriter(tmp_path, pattern="shot.####.png", start_number=1001)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.txt.part"]
