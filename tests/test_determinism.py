"""Determinism across processes and kernel selections (docs/determinism.md).

Each run is a separate `latentween morph` process. Other CPUs are stood in for by other kernel
selections (ATen's vector width, MKL's instruction set, the thread count). Identity is asserted only
where the design promises it: the same settings and environment for a run and its resume. Across
environments the frames must be close, and a resume that changes environment must say so.
"""
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest

ENVIRONMENTS = {
    "one thread": {"OMP_NUM_THREADS": "1"},
    "other kernels, two threads": {"OMP_NUM_THREADS": "2", "ATEN_CPU_CAPABILITY": "default",
                                   "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}
# 8-bit frames made in two environments differ by at most this many levels (measured: 0 or 1).
PIXEL_TOLERANCE = 3


def morph(tiny_model, keyframe_files, out, environment, *extra):
    env = {k: v for k, v in os.environ.items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")}
    env.update(environment)
    args = [sys.executable, "-m", "latentween", "morph", *map(str, keyframe_files), "--out", str(out),
            "--model", str(tiny_model), "--frames", "9", "--steps", "8", "--seed", "11", "--candidates", "1",
            "--max-batch", "4", "--quiet", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, check=True, timeout=300)


def frames(out):
    return {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))}


def interrupt(out):
    """What a kill mid-level leaves: frame 2 of chunk (2, 6) and frame 1 of chunk (1, 3) finished,
    their chunk mates and chunk (5, 7) not."""
    for i in (3, 5, 6, 7):
        (out / f"frame_{i:05d}.png").unlink()
        (out / ".latentween" / f"latent_{i:05d}.safetensors").unlink(missing_ok=True)


@pytest.fixture(scope="module")
def full_runs(tiny_model, keyframe_files, tmp_path_factory):
    """One uninterrupted run per environment, made once for the module."""
    runs = {}
    for name, environment in ENVIRONMENTS.items():
        runs[name] = tmp_path_factory.mktemp("full") / "out"
        morph(tiny_model, keyframe_files, runs[name], environment)
    return runs


@pytest.mark.parametrize("name", list(ENVIRONMENTS))
def test_a_resume_in_the_same_environment_gives_byte_identical_frames(tiny_model, keyframe_files, tmp_path,
                                                                      full_runs, name):
    out = tmp_path / "out"
    shutil.copytree(full_runs[name], out)
    interrupt(out)
    resumed = morph(tiny_model, keyframe_files, out, ENVIRONMENTS[name])
    assert frames(out) == frames(full_runs[name])
    assert "different environment" not in resumed.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert [f["index"] for f in manifest["frames"] if f.get("resumed")] == [1, 2, 4]


def max_level_difference(a, b):
    decode = lambda data: cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED).astype(int)
    return max(int(np.abs(decode(a[name]) - decode(b[name])).max()) for name in a)


def test_other_kernel_selections_give_frames_within_tolerance(full_runs):
    a, b = (frames(full_runs[name]) for name in ENVIRONMENTS)
    assert a.keys() == b.keys() and max_level_difference(a, b) <= PIXEL_TOLERANCE
    reproducibility = [json.loads((full_runs[n] / "manifest.json").read_text())["reproducibility"] for n in ENVIRONMENTS]
    assert [r["threads"] for r in reproducibility] == [1, 2]
    assert reproducibility[1]["cpu_capability"] == "DEFAULT" and reproducibility[1]["mkl_enable_instructions"] == "AVX2"


def test_another_max_batch_gives_frames_within_tolerance(tiny_model, keyframe_files, tmp_path, full_runs):
    out = tmp_path / "out"
    morph(tiny_model, keyframe_files, out, ENVIRONMENTS["one thread"], "--max-batch", "1")
    assert max_level_difference(frames(out), frames(full_runs["one thread"])) <= PIXEL_TOLERANCE


def test_a_resume_in_another_environment_warns_once_and_keeps_the_finished_frames(tiny_model, keyframe_files,
                                                                                   tmp_path, full_runs):
    reference = full_runs["one thread"]
    out = tmp_path / "out"
    shutil.copytree(reference, out)
    interrupt(out)
    resumed = morph(tiny_model, keyframe_files, out, {"OMP_NUM_THREADS": "2"}, "--max-batch", "2")
    warnings = [line for line in resumed.stderr.splitlines() if "different environment" in line]
    assert len(warnings) == 1 and "max_batch" in warnings[0] and "threads" in warnings[0]
    now, before = frames(out), frames(reference)
    assert all(now[f"frame_{i:05d}.png"] == before[f"frame_{i:05d}.png"] for i in (0, 1, 2, 4, 8))
    assert max_level_difference(now, before) <= PIXEL_TOLERANCE
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["reproducibility_before_resume"]["max_batch"] == 4 and manifest["reproducibility"]["max_batch"] == 2
