"""Output names and work folders (issue 19, points 3 and 7): unknown suffixes are refused, GIF and
WebP animations are written, work folders live in the user cache, and a finished job (a morph or a
render) written to another format never runs the model again."""
import json
from fractions import Fraction

import cv2
import numpy as np
import pytest
from PIL import Image

from latentween.cli import main
from latentween.media.animated import frame_durations
from media_support import decode_all

JOB = ["--frames", "5", "--steps", "4", "--candidates", "1", "--quiet"]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("LATENTWEEN_CACHE_DIR", str(folder))
    return folder


def morph(tiny_model, keyframe_files, out, *extra):
    return main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), *JOB,
                 *map(str, extra)])


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def animation_frames(path):
    with Image.open(path) as image:
        frames, durations = [], []
        for index in range(image.n_frames):
            image.seek(index)
            frames.append(np.asarray(image.convert("RGB")))
            durations.append(image.info["duration"])
        return frames, durations


@pytest.mark.parametrize("name", ["e4.avi", "x.png", "clip.mxf"])
def test_an_unsupported_output_suffix_is_refused_with_one_line_and_nothing_made(tiny_model, keyframe_files, tmp_path,
                                                                                  capsys, name):
    assert morph(tiny_model, keyframe_files, tmp_path / name) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out") and "not a supported output suffix" in err and err.count("\n") == 1
    assert not (tmp_path / name).exists()


def test_frame_durations_keep_the_length_of_the_loop_at_any_rate():
    durations = frame_durations(24, Fraction(24), Fraction(1, 100))
    assert sum(durations) == 100 and set(durations) == {4, 5}


def test_morph_writes_an_animated_gif_with_every_frame_at_the_frame_rate(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "x.gif"
    assert morph(tiny_model, keyframe_files, out, "--seed", 4, "--fps", 10) == 0
    frames, durations = animation_frames(out)
    assert len(frames) == 5 and durations == [100] * 5
    # a 256-colour palette per frame: the keyframe comes back within the palette's rounding
    assert np.abs(frames[0].astype(int) - read_rgb(keyframe_files[0])).mean() < 4


def test_morph_writes_an_animated_webp_that_keeps_alpha(tiny_model, keyframe_files, tmp_path):
    from conftest import write_png

    rgba = [np.dstack([read_rgb(p), np.full((64, 64), 200, np.uint8)]) for p in keyframe_files]
    keys = [write_png(tmp_path / f"{i}.png", image) for i, image in enumerate(rgba)]
    out = tmp_path / "x.webp"
    assert morph(tiny_model, keys, out, "--seed", 4) == 0
    with Image.open(out) as image:
        assert image.n_frames == 5 and image.mode == "RGBA"
        assert abs(int(np.asarray(image)[..., 3].mean()) - 200) <= 2


def test_video_work_folders_live_in_the_user_cache_not_beside_the_output(tiny_model, keyframe_files, tmp_path, cache):
    out = tmp_path / "shot" / "x.mp4"
    out.parent.mkdir()
    assert morph(tiny_model, keyframe_files, out, "--seed", 4) == 0
    assert [p.name for p in out.parent.iterdir()] == ["x.mp4"]
    assert len(list((cache / "work" / "morph").glob("*/seed-4/manifest.json"))) == 1


def test_another_format_of_a_finished_job_reuses_its_frames_without_the_model(tiny_model, keyframe_files, tmp_path,
                                                                               cache, capsys):
    assert morph(tiny_model, keyframe_files, tmp_path / "x.mp4") == 0  # no --seed: a random one
    [manifest] = (cache / "work" / "morph").glob("*/seed-*/manifest.json")
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    assert morph(tiny_model, keyframe_files, tmp_path / "x.mkv") == 0
    # run_morph rewrites the manifest whenever it runs the model; here it returned before loading it
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    decoded, _ = decode_all(tmp_path / "x.mkv")
    pngs = [read_rgb(manifest.parent / f"frame_{i:05d}.png") for i in range(5)]
    assert len(decoded) == 5 and all(np.array_equal(d, p) for d, p in zip(decoded, pngs))
    seed = json.loads(manifest.read_text())["settings"]["seed"]
    assert capsys.readouterr().err.count(f"(seed {seed})") == 2


def test_a_render_to_another_format_reuses_its_frames_and_seed_without_the_model(tiny_model, three_keyframes,
                                                                                 tmp_path, cache, capsys):
    def render(out):
        return main(["render", *map(str, three_keyframes), "--out", str(out), "--model", str(tiny_model),
                     "--transition", "2", "--steps", "4", "--candidates", "1", "--quiet"])  # no --seed

    assert render(tmp_path / "film.mp4") == 0
    manifests = sorted((cache / "work" / "render").glob("*/seed-*/transition_*/manifest.json"))
    assert len(manifests) == 2
    before = [(m.read_bytes(), m.stat().st_mtime_ns) for m in manifests]
    assert render(tmp_path / "film.gif") == 0
    assert [(m.read_bytes(), m.stat().st_mtime_ns) for m in manifests] == before  # the model never ran
    seed = json.loads(manifests[0].read_text())["settings"]["seed"]
    assert capsys.readouterr().err.count(f"(seed {seed})") == 2
    frames, _ = animation_frames(tmp_path / "film.gif")
    assert len(frames) == 3 + 2 * 2


def test_rerunning_a_folder_job_without_a_seed_keeps_its_seed(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    assert morph(tiny_model, keyframe_files, out) == 0
    first = json.loads((out / "manifest.json").read_text())
    (out / "frame_00002.png").unlink()
    assert morph(tiny_model, keyframe_files, out) == 0
    second = json.loads((out / "manifest.json").read_text())
    assert second["settings"]["seed"] == first["settings"]["seed"]
    assert [f["index"] for f in second["frames"] if f.get("resumed")] == [1, 3]


def test_cache_clean_removes_the_work_folders(tiny_model, keyframe_files, tmp_path, cache, capsys):
    assert morph(tiny_model, keyframe_files, tmp_path / "x.gif", "--seed", 4) == 0
    capsys.readouterr()
    assert main(["cache", "clean"]) == 0
    assert capsys.readouterr().err.startswith("removed 1 work folders")
    assert not (cache / "work").exists() and (tmp_path / "x.gif").is_file()


def test_a_pipe_says_the_size_and_rate_ffmpeg_needs_to_read_it(tiny_model, keyframe_files, capfdbinary):
    assert morph(tiny_model, keyframe_files, "-", "--seed", 4, "--fps", "25") == 0
    captured = capfdbinary.readouterr()
    assert len(captured.out) == 5 * 64 * 64 * 3
    line = captured.err.decode().strip().splitlines()[-1]
    assert line.endswith("ffmpeg -f rawvideo -pix_fmt rgb24 -s 64x64 -r 25 -i -")


def test_padding_an_odd_size_to_even_is_reported(tmp_path, caplog):
    from latentween.media import encode_video

    frames = [np.full((64, 65, 3), 100, np.uint8)] * 2
    encode_video(frames, tmp_path / "odd.mp4")
    assert any("65x64 frames are padded to 66x64" in r.getMessage() for r in caplog.records)


def test_a_failed_first_run_leaves_no_empty_output_folder(tiny_model, keyframe_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # CLIP ranking's weights are missing: it fails after the model loads
    out = tmp_path / "never"
    assert morph(tiny_model, keyframe_files, out, "--candidates", 2) == 2
    assert "CLIP weights" in capsys.readouterr().err and not out.exists()


def test_a_work_folder_that_held_another_job_feeds_the_output_only_this_jobs_frames(tiny_model, keyframe_files,
                                                                                   tmp_path):
    # textual inversion reports progress before the new job's manifest replaces the old one: the old
    # job's frames, still listed there, must not reach the output
    work, out = tmp_path / "work", tmp_path / "seq"
    assert morph(tiny_model, keyframe_files, tmp_path / "first.mp4", "--seed", 1, "--work", work) == 0
    assert morph(tiny_model, keyframe_files, out, "--seed", 2, "--invert-steps", 2, "--work", work,
                 "--hold-start", 1) == 0
    written = sorted(out.glob("*.png"))
    assert len(written) == 6
    made = [(work / f"frame_{i:05d}.png").read_bytes() for i in (0, 0, 1, 2, 3, 4)]
    assert [p.read_bytes() for p in written] == made
