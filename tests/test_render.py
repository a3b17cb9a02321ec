"""`latentween render` and the morph command's new outputs, end to end with the tiny model:
frame counts and holds, sequences, videos, a real ffmpeg on the pipe, stdin, resume after a kill."""
import io
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from latentween.cli import main
from media_support import decode_all, ffmpeg_peer  # noqa: F401 (fixture)

FAST = ["--steps", "4", "--candidates", "1", "--seed", "3", "--quiet"]


def render(tiny_model, keys, out, *extra):
    return main(["render", *map(str, keys), "--out", str(out), "--model", str(tiny_model), *FAST, *map(str, extra)])


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def test_render_writes_k_holds_plus_transitions_as_a_numbered_sequence(tiny_model, three_keyframes, tmp_path):
    out = tmp_path / "seq"
    assert render(tiny_model, three_keyframes, out, "--transition", 3, "--hold", 2,
                  "--pattern", "shot.####.png", "--start-number", 1001) == 0
    names = sorted(p.name for p in out.glob("*.png"))
    assert names == [f"shot.{n}.png" for n in range(1001, 1001 + 3 * 2 + 2 * 3)]
    keys = [read_rgb(k) for k in three_keyframes]
    holds = {1001: 0, 1002: 0, 1006: 1, 1007: 1, 1011: 2, 1012: 2}  # each keyframe shown for --hold frames
    for number, key in holds.items():
        assert np.array_equal(read_rgb(out / f"shot.{number}.png"), keys[key]), number
    middle = read_rgb(out / "shot.1004.png")
    assert not any(np.array_equal(middle, k) for k in keys)


def test_render_to_mp4_has_every_frame_at_the_rational_rate(tiny_model, three_keyframes, tmp_path):
    out = tmp_path / "film.mp4"
    assert render(tiny_model, three_keyframes, out, "--transition", 2, "--hold", 1, "--fps", "24000/1001") == 0
    decoded, stream = decode_all(out)
    assert len(decoded) == 3 + 2 * 2 and str(stream.average_rate) == "24000/1001"
    assert np.abs(decoded[0].astype(float) - read_rgb(three_keyframes[0])).mean() < 6
    assert not (tmp_path / ".film.mp4.part").exists()


def test_render_progress_is_one_bar_over_all_transitions():
    from latentween.cli.render import RenderProgress

    seen = []
    progress = RenderProgress(seen.append, transitions=3, frames=20)
    progress.for_transition(0)({"done": 5, "total": 10})
    progress.for_transition(0)({"done": 10, "total": 10})
    progress.for_transition(1)({"done": 4, "total": 10})
    assert (seen[0]["done"], seen[0]["total"]) == (5, 30)
    assert (seen[-1]["done"], seen[-1]["total"], seen[-1]["stage"]) == (14, 30, "transition 2/3")


def test_morph_to_a_video_applies_the_holds(tiny_model, keyframe_files, tmp_path):
    out = tmp_path / "m.mov"
    assert main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), *FAST,
                 "--frames", "4", "--hold-start", "2", "--hold-end", "1", "--ease", "ease-in-out",
                 "--work", str(tmp_path / "work")]) == 0
    decoded, _ = decode_all(out)
    assert len(decoded) == 4 + 2 + 1
    assert np.array_equal(decoded[0], decoded[2]) and np.array_equal(decoded[-1], decoded[-2])
    manifest = json.loads((tmp_path / "work" / "manifest.json").read_text())
    assert manifest["settings"]["ease"] == "ease-in-out"
    assert [f["fraction"] for f in manifest["frames"]][1] < 1 / 3  # eased: the first step is short


def test_morph_reads_two_pngs_from_stdin(tiny_model, keyframe_files, tmp_path, monkeypatch):
    data = b"".join(p.read_bytes() for p in keyframe_files)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = tmp_path / "o"
    assert main(["morph", "-", "-", "--out", str(out), "--model", str(tiny_model), *FAST, "--frames", "3"]) == 0
    assert np.array_equal(read_rgb(out / "frame_00002.png"), read_rgb(keyframe_files[1]))
    assert [i["source"] for i in json.loads((out / "manifest.json").read_text())["inputs"]] == ["stdin:0", "stdin:1"]


def test_morph_reads_raw_frames_from_stdin_with_size(tiny_model, keyframe_files, tmp_path, monkeypatch):
    raw = b"".join(read_rgb(p).tobytes() for p in keyframe_files)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    out = tmp_path / "o"
    assert main(["morph", "-", "-", "--size", "64x64", "--out", str(out), "--model", str(tiny_model), *FAST,
                 "--frames", "3"]) == 0
    assert np.array_equal(read_rgb(out / "frame_00000.png"), read_rgb(keyframe_files[0]))


def test_morph_takes_a_keyframe_from_a_video_frame(tiny_model, keyframe_files, tmp_path):
    from latentween.media import encode_video

    clip = tmp_path / "clip.mkv"
    encode_video([read_rgb(keyframe_files[0]), read_rgb(keyframe_files[1]), read_rgb(keyframe_files[0])], clip, 24)
    out = tmp_path / "o"
    assert main(["morph", str(keyframe_files[0]), f"{clip}@1", "--out", str(out), "--model", str(tiny_model), *FAST,
                 "--frames", "3"]) == 0
    assert np.array_equal(read_rgb(out / "frame_00002.png"), read_rgb(keyframe_files[1]))


def test_a_real_ffmpeg_consumes_the_pipe_and_stdout_holds_only_frames(tiny_model, three_keyframes, tmp_path, ffmpeg_peer):
    work, encoded = tmp_path / "work", tmp_path / "piped.mkv"
    command = [sys.executable, "-m", "latentween", "render", *map(str, three_keyframes[:2]), "--out", "-",
               "--pipe", "rgb24", "--transition", "3", "--hold", "1", "--work", str(work),
               "--model", str(tiny_model), *FAST]
    producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    consumer = subprocess.run([ffmpeg_peer["ffmpeg"], "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x64",
                               "-r", "24", "-i", "-", "-c:v", "ffv1", "-y", str(encoded)],
                              stdin=producer.stdout, capture_output=True)
    producer.stdout.close()
    assert producer.wait() == 0, producer.stderr.read().decode()
    assert consumer.returncode == 0, consumer.stderr.decode()
    decoded, _ = decode_all(encoded)
    timeline = [0, 1, 2, 3, 4]  # hold 1 + 3 in-betweens + hold 1, all from the one transition's folder
    expected = [read_rgb(work / "transition_000" / f"frame_{i:05d}.png") for i in timeline]
    assert len(decoded) == 5 and all(np.array_equal(d, e) for d, e in zip(decoded, expected))
    assert producer.stderr.read().decode().strip().startswith("wrote 5 frames to stdout")


def test_a_killed_render_resumes_from_the_frames_on_disk(tiny_model, three_keyframes, tmp_path):
    out, reference = tmp_path / "out", tmp_path / "reference"
    args = ["--transition", "7", "--hold", "1", "--steps", "30"]
    command = [sys.executable, "-m", "latentween", "render", *map(str, three_keyframes), "--out", str(out),
               "--model", str(tiny_model), *FAST, *args]
    first = tmp_path / "out" / ".latentween" / "render" / "transition_000"
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not _generated(first):
            time.sleep(0.02)
        assert proc.poll() is None, "the render ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not (out / "frame_00016.png").exists()  # it really was cut short
    assert all(p.name.startswith(".") or p.name.startswith("frame_") for p in out.iterdir())

    assert render(tiny_model, three_keyframes, out, *args) == 0
    resumed = [f for f in json.loads((first / "manifest.json").read_text())["frames"] if f.get("resumed")]
    assert resumed
    assert render(tiny_model, three_keyframes, reference, *args) == 0
    names = sorted(p.name for p in reference.glob("frame_*.png"))
    assert len(names) == 3 + 2 * 7
    assert all((out / n).read_bytes() == (reference / n).read_bytes() for n in names)


def _generated(folder):
    try:
        frames = json.loads((folder / "manifest.json").read_text())["frames"]
    except (OSError, ValueError, KeyError):
        return False
    return any(f.get("source") == "generated" for f in frames)


@pytest.mark.parametrize("extra, words", [
    (["--out", "{tmp}/x.avi"], "not a supported output suffix"),
    (["--out", "{tmp}/x.mp4", "--codec", "prores"], "cannot go in a .mp4"),
    (["--out", "{tmp}/seq", "--crf", "20"], "apply to video files"),
    (["--out", "{tmp}/seq", "--pattern", "f.png"], "--pattern"),
    (["--out", "{tmp}/x.mp4", "--fps", "0"], "--fps"),
    (["--out", "{tmp}/x.mp4", "--hold", "0", "--transition", "0"], "--transition"),
])
def test_bad_render_options_exit_2_with_one_line(tiny_model, three_keyframes, tmp_path, capsys, extra, words):
    argv = ["render", *map(str, three_keyframes[:2]), "--model", str(tiny_model), *FAST]
    assert main(argv + [e.format(tmp=tmp_path) for e in extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err


def test_a_corrupt_video_keyframe_stops_the_render_before_anything_is_written(tiny_model, three_keyframes, tmp_path, capsys):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(2000))
    out = tmp_path / "film.mp4"
    assert render(tiny_model, [three_keyframes[0], f"{bad}@3"], out) == 2
    assert "corrupt, truncated or unsupported video" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "film.mp4.latentween").exists()
