"""`latentween morph` end to end: files, manifest, endpoints, fit policy, resume, bad input."""
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from conftest import disk_image, write_png
from latentween.cli import main


def morph(tiny_model, a, b, out, *extra):
    return main(["morph", str(a), str(b), "--out", str(out), "--model", str(tiny_model), "--steps", "8",
                 "--seed", "5", "--candidates", "1", "--quiet", *map(str, extra)])


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_morph_writes_n_frames_and_a_manifest(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    assert morph(tiny_model, *keyframe_files, out, "--frames", 6) == 0
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:05d}.png" for i in range(6)]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert [f["fraction"] for f in manifest["frames"]] == pytest.approx([i / 5 for i in range(6)])
    generated = [f for f in manifest["frames"] if f["source"] == "generated"]
    assert len(generated) == 4 and all(f["seed"] == 5 and 0.3 <= f["noise"] <= 0.55 for f in generated)
    assert manifest["settings"]["frames"] == 6 and manifest["model"]["kind"] == "folder"
    assert manifest["timings"]["total_s"] > 0 and manifest["unet"]["calls"] > 0
    assert [i["sha256"] for i in manifest["inputs"]] and not list(out.glob("**/*.part"))


def test_output_endpoints_are_the_input_pixels(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    morph(tiny_model, *keyframe_files, out, "--frames", 3)
    assert np.array_equal(read(out / "frame_00000.png"), read(keyframe_files[0]))
    assert np.array_equal(read(out / "frame_00002.png"), read(keyframe_files[1]))


def test_sixteen_bit_keyframes_give_sixteen_bit_frames_with_exact_ends(tiny_model, tmp_path):
    a = (disk_image((20, 30), (200, 30, 30)).astype(np.uint16) * 257 + 3)
    b = (disk_image((40, 30), (30, 30, 200)).astype(np.uint16) * 257)
    pa, pb = write_png(tmp_path / "a16.png", a), write_png(tmp_path / "b16.png", b)
    out = tmp_path / "out"
    morph(tiny_model, pa, pb, out, "--frames", 3)
    first, middle = read(out / "frame_00000.png"), read(out / "frame_00001.png")
    assert first.dtype == np.uint16 and middle.dtype == np.uint16
    assert np.array_equal(first, read(pa))


def test_different_sizes_rgba_and_grey_follow_the_fit_policy(tiny_model, tmp_path):
    rgba = np.dstack([disk_image((30, 20), (200, 30, 30), size=64), np.full((64, 64), 128, np.uint8)])
    rgba = np.concatenate([rgba, rgba[:32]], axis=0)  # 64 wide, 96 high
    grey = cv2.cvtColor(disk_image((40, 40), (90, 90, 90), size=80), cv2.COLOR_RGB2GRAY)
    pa, pb = write_png(tmp_path / "a.png", rgba), tmp_path / "b.png"
    cv2.imwrite(str(pb), grey)
    out = tmp_path / "out"
    assert morph(tiny_model, pa, pb, out, "--frames", 3, "--size", "64x48", "--fit", "contain") == 0
    frames = [read(out / f"frame_{i:05d}.png") for i in range(3)]
    assert all(f.shape == (48, 64, 4) for f in frames)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["output"]["work_width"] % 8 == 0 and manifest["output"]["work_height"] % 8 == 0
    # the middle frame's alpha is halfway between the keyframes' (128 inside the letterbox, opaque grey)
    assert abs(int(frames[1][24, 32, 3]) - (128 + 255) // 2) <= 1


def test_work_size_shrinks_the_model_resolution_but_not_the_output(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    morph(tiny_model, *keyframe_files, out, "--frames", 3, "--size", "128x96")
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["output"]["width"], manifest["output"]["height"]) == (128, 96)
    assert manifest["output"]["work_height"] == 64  # the tiny model's native short side
    assert read(out / "frame_00001.png").shape == (96, 128, 3)


def test_rerunning_resumes_and_gives_identical_frames(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    morph(tiny_model, *keyframe_files, out, "--frames", 9)
    before = {p.name: p.read_bytes() for p in out.glob("frame_*.png")}
    for i in (3, 5, 6):
        (out / f"frame_{i:05d}.png").unlink()
    morph(tiny_model, *keyframe_files, out, "--frames", 9)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(1 for f in manifest["frames"] if f.get("resumed")) == 4
    assert {p.name: p.read_bytes() for p in out.glob("frame_*.png")} == before


def test_a_different_job_in_the_same_folder_replaces_the_old_frames(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    morph(tiny_model, *keyframe_files, out, "--frames", 9)
    morph(tiny_model, *keyframe_files, out, "--frames", 4)
    assert len(list(out.glob("frame_*.png"))) == 4
    assert not any(f.get("resumed") for f in json.loads((out / "manifest.json").read_text())["frames"])


@pytest.mark.parametrize("make_bad, words", [
    (lambda p: None, "does not exist"),
    (lambda p: p.write_bytes(b""), "empty"),
    (lambda p: p.write_text("hello, not an image"), "not a readable image"),
    (lambda p: p.write_bytes(cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()[:-40]), "truncated"),
])
def test_bad_keyframes_exit_2_with_one_line_and_write_nothing(tiny_model, keyframe_files, tmp_path, capsys, make_bad, words):
    bad = tmp_path / "bad.png"
    make_bad(bad)
    out = tmp_path / "out"
    assert morph(tiny_model, keyframe_files[0], bad, out) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err
    assert not list(out.glob("frame_*")) if out.exists() else True


def test_fewer_than_two_frames_is_refused(tiny_model, keyframe_files, tmp_path, capsys):
    assert morph(tiny_model, *keyframe_files, tmp_path / "o", "--frames", 1) == 2
    assert "--frames" in capsys.readouterr().err


def test_an_unwritable_output_folder_is_refused_before_loading(tiny_model, keyframe_files, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert morph(tiny_model, *keyframe_files, blocker / "out") == 2
    assert "not writable" in capsys.readouterr().err


def test_the_console_script_is_quiet_when_piped_and_says_where_the_frames_are(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ)
    env.pop("TQDM_DISABLE", None)
    proc = subprocess.run([sys.executable, "-m", "latentween", "morph", *map(str, keyframe_files), "--out", str(out),
                           "--model", str(tiny_model), "--frames", "3", "--steps", "4", "--candidates", "1"],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [f"wrote 3 frames to {out} (seed {json.loads((out / 'manifest.json').read_text())['settings']['seed']})"]
