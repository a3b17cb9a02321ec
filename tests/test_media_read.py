"""Reading keyframes: image formats, exact frames of videos by number and time, stdin, bad files."""
from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import disk_image, write_png
from latentween.errors import InputError
from latentween.media import load_keyframe, parse_spec
from latentween.media.read import read_stdin
from media_support import frame_number, make_clip, numbered_frame

CLIPS = {  # suffix -> (encoder, pix_fmt, options)
    "mp4": ("libx264", "yuv420p", {"bf": "3"}),  # B-frames: decode order differs from display order
    "mov": ("prores_ks", "yuv422p10le", {}),
    "mkv": ("ffv1", "bgr0", {}),
    "webm": ("libvpx-vp9", "yuv420p", {}),
}


@pytest.fixture(scope="module", params=sorted(CLIPS))
def clip(request, tmp_path_factory):
    encoder, pix_fmt, options = CLIPS[request.param]
    return make_clip(tmp_path_factory.mktemp("clips") / f"clip.{request.param}", encoder, pix_fmt, options=options)


def test_a_frame_number_gives_exactly_that_frame(clip):
    for number in (0, 1, 13, 37, 59):  # 13 and 37 are not keyframes (one every 12)
        assert frame_number(load_keyframe(f"{clip}@{number}").pixels) == number


def test_a_timestamp_gives_the_frame_on_screen_at_that_time(clip):
    # 24000/1001 fps: frame 47 is shown from 1.9604 s to 2.0021 s
    assert frame_number(load_keyframe(f"{clip}@00:00:02.000").pixels) == 47
    assert frame_number(load_keyframe(f"{clip}@1.5s").pixels) == 35


def test_a_video_frame_keyframe_has_the_clip_size_depth_and_spec(clip):
    key = load_keyframe(f"{clip}@5")
    assert key.size == (64, 64) and key.source == f"{clip}@5"
    assert key.bit_depth == (16 if clip.suffix == ".mov" else 8)
    assert key.sha256 != load_keyframe(f"{clip}@6").sha256


def test_lossless_video_frames_are_exact(tmp_path):
    clip = make_clip(tmp_path / "c.mkv", "ffv1", "bgr0", count=20)
    key = load_keyframe(f"{clip}@17")
    assert np.array_equal(np.round(key.pixels * 255).astype(np.uint8), numbered_frame(17))


def test_a_frame_past_the_end_is_one_clear_error(tmp_path):
    clip = make_clip(tmp_path / "c.mp4", "libx264", "yuv420p", count=20)
    with pytest.raises(InputError, match="past the end .* 20 frames"):
        load_keyframe(f"{clip}@20")


def test_seeking_in_a_variable_frame_rate_clip_counts_frames(tmp_path):
    import av

    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width = stream.height = 64
        stream.pix_fmt = "bgr0"
        for i, pts in enumerate([0, 1, 2, 5, 6, 10, 11, 12]):  # gaps: frame numbers are not pts * rate
            frame = av.VideoFrame.from_ndarray(numbered_frame(i), format="rgb24")
            frame.pts, frame.time_base = pts, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    assert [frame_number(load_keyframe(f"{path}@{n}").pixels) for n in (3, 5, 7)] == [3, 5, 7]


def test_vp9_alpha_is_read_back(tmp_path):
    from latentween.media import encode_video

    rgba = np.dstack([disk_image((30, 30), (200, 30, 30)), np.full((64, 64), 100, np.uint8)])
    encode_video([rgba, rgba], tmp_path / "a.webm", fps=24)
    key = load_keyframe(f"{tmp_path / 'a.webm'}@1")
    assert key.has_alpha and abs(key.pixels[32, 32, 3] * 255 - 100) <= 2


@pytest.mark.parametrize("suffix, params, depth", [
    (".png", [], 8), (".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95], 8), (".tif", [], 8), (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101], 8),
])
def test_image_formats_opencv_reads(tmp_path, suffix, params, depth):
    rgb = disk_image((30, 30), (200, 30, 30))
    path = tmp_path / f"k{suffix}"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    key = load_keyframe(str(path))
    assert key.bit_depth == depth and key.size == (64, 64)
    assert np.abs(key.pixels * 255 - rgb).mean() < 2


def test_sixteen_bit_png_and_tiff_stay_sixteen_bit(tmp_path):
    rgb16 = disk_image((30, 30), (200, 30, 30)).astype(np.uint16) * 257 + 1
    for suffix in (".png", ".tif"):
        path = tmp_path / f"k{suffix}"
        cv2.imwrite(str(path), cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
        key = load_keyframe(str(path))
        assert key.bit_depth == 16 and np.array_equal(np.round(key.pixels * 65535).astype(np.uint16), rgb16)


def test_exr_is_read_through_ffmpeg_as_display_values(tmp_path):
    import av

    path = tmp_path / "k.exr"
    linear = np.full((8, 8, 3), 0.214, np.float32)  # sRGB encodes 0.214 as about 0.5
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("exr", rate=1)
        stream.width, stream.height, stream.pix_fmt = 8, 8, "gbrpf32le"
        frame = av.VideoFrame.from_ndarray(linear, format="rgbf32le").reformat(format="gbrpf32le")
        container.mux(stream.encode(frame))
        container.mux(stream.encode())
    key = load_keyframe(str(path))
    assert key.size == (8, 8) and key.bit_depth == 32
    assert key.pixels[4, 4] == pytest.approx([0.5, 0.5, 0.5], abs=0.01)


def test_a_path_containing_an_at_sign_is_a_file_when_it_exists(tmp_path):
    path = write_png(tmp_path / "shot@2x.png", disk_image((30, 30), (200, 30, 30)))
    assert parse_spec(str(path)).path == str(path) and not parse_spec(str(path)).is_video
    assert load_keyframe(str(path)).size == (64, 64)


@pytest.mark.parametrize("spec, words", [
    ("{clip}@abc", "neither a frame number nor a time"),
    ("{clip}@00:75:00", "not a valid time"),
    ("{clip}", "is a video: name a frame"),
    ("{dir}/missing.mp4@3", "does not exist"),
])
def test_bad_video_specs_give_one_clear_error(tmp_path, spec, words):
    clip = make_clip(tmp_path / "c.mp4", "libx264", "yuv420p", count=5)
    with pytest.raises(InputError, match=words) as info:
        load_keyframe(spec.format(clip=clip, dir=tmp_path))
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_or_truncated_videos_give_one_clear_error(tmp_path, damage):
    clip = make_clip(tmp_path / "c.mp4", "libx264", "yuv420p", count=30)
    data = clip.read_bytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8)
    with pytest.raises(InputError, match="corrupt, truncated or unsupported video|past the end") as info:
        load_keyframe(f"{bad}@20")
    assert "\n" not in str(info.value)


def test_an_unsupported_image_gives_one_clear_error(tmp_path):
    path = tmp_path / "k.png"
    path.write_text("not an image at all")
    with pytest.raises(InputError, match="not a readable image"):
        load_keyframe(str(path))


def test_stdin_with_two_concatenated_pngs_gives_two_keyframes():
    a, b = disk_image((20, 30), (200, 30, 30)), disk_image((44, 34), (30, 30, 200))
    data = b"".join(cv2.imencode(".png", cv2.cvtColor(x, cv2.COLOR_RGB2BGR))[1].tobytes() for x in (a, b))
    keys = read_stdin(data, 2)
    assert [k.source for k in keys] == ["stdin:0", "stdin:1"]
    assert np.array_equal(np.round(keys[1].pixels * 255).astype(np.uint8), b)


@pytest.mark.parametrize("fmt, dtype, channels", [("rgb24", np.uint8, 3), ("rgba", np.uint8, 4), ("rgb48le", "<u2", 3)])
def test_stdin_raw_frames_are_read_with_the_size(fmt, dtype, channels):
    frames = [np.random.default_rng(i).integers(0, 200, (16, 24, channels)).astype(dtype) for i in range(2)]
    keys = read_stdin(b"".join(f.tobytes() for f in frames), 2, size=(24, 16))
    assert keys[0].size == (24, 16) and keys[1].pixels.shape[2] == channels
    assert keys[0].bit_depth == (16 if fmt == "rgb48le" else 8)


def test_stdin_of_the_wrong_length_is_refused():
    with pytest.raises(InputError, match="not 2 raw 24x16"):
        read_stdin(b"\x01" * 1000, 2, size=(24, 16))


def huge_video(path, side=8008):
    """One grey FFV1 frame of side x side pixels: small on disk, 64 M pixels in its header."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=1)
        stream.width = stream.height = side
        stream.pix_fmt = "gray"
        frame = av.VideoFrame.from_ndarray(np.zeros((side, side), np.uint8), format="gray")
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_a_video_frame_over_the_pixel_limit_is_refused_from_the_header(tmp_path, monkeypatch):
    from latentween.media import read

    path = huge_video(tmp_path / "huge.mkv")
    monkeypatch.setattr(read._Seeker, "find", lambda *a: pytest.fail("decoded a frame the header already refused"))
    with pytest.raises(InputError, match="pixel limit"):
        load_keyframe(f"{path}@0")
