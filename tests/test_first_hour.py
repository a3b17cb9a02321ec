"""A new user's first hour (issue 19): the offline quick start with `--model toy`, and the thread
policy that keeps a job fast beside other programs (point 1; measured by benchmarks/busy_cpu.py)."""
import json
import os
import subprocess
import sys

import pytest

from latentween.cli import main
from latentween.threads import SMALL_UNET_PARAMETERS, choose_threads


@pytest.fixture
def torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_quick_start_with_the_toy_model_needs_no_network_and_no_other_flags(keyframe_files, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = tmp_path / "ab"
    assert main(["morph", *map(str, keyframe_files), "--model", "toy", "--frames", "3", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["recommended"] == {"guidance": 1.0, "candidates": 1}
    assert manifest["settings"]["candidates"] == 1 and "ranking" not in manifest["conditioning"]


@pytest.mark.parametrize("preset, expected", [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_cli_makes_idle_openmp_threads_sleep_before_torch_loads_unless_the_user_chose(preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if preset:
        env["OMP_WAIT_POLICY"] = preset
    code = ("import os, sys, contextlib, latentween.cli\n"
            "with contextlib.redirect_stdout(sys.stderr), contextlib.suppress(SystemExit): latentween.cli.main(['--version'])\n"
            "print(os.environ['OMP_WAIT_POLICY'], 'torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert proc.stdout.split() == [expected, "False"]


def test_the_thread_count_follows_the_model_and_the_cores_never_the_load(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert choose_threads(None, SMALL_UNET_PARAMETERS - 1, cores=16) == 1
    assert choose_threads(None, 860_000_000, cores=16) == 16
    assert choose_threads(3, 860_000_000, cores=16) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert choose_threads(None, 860_000_000, cores=16) is None  # torch already follows the environment


def test_threads_override_the_policy_and_the_manifest_records_them(tiny_model, keyframe_files, tmp_path, monkeypatch,
                                                                   torch_threads):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    base = ["morph", *map(str, keyframe_files), "--model", str(tiny_model), "--frames", "3", "--steps", "4",
            "--candidates", "1", "--seed", "2", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "auto")]) == 0
    assert main(base + ["--out", str(tmp_path / "two"), "--threads", "2"]) == 0
    threads = [json.loads((tmp_path / d / "manifest.json").read_text())["reproducibility"]["threads"]
               for d in ("auto", "two")]
    assert threads == [1, 2]


@pytest.mark.parametrize("flag, value, line", [
    ("--frames", "1", "--frames: must be at least 2, got 1"),
    ("--steps", "5000", "--steps: must be at most 1000, got 5000"),
])
def test_a_bad_value_is_said_in_our_words_not_pydantics(keyframe_files, tmp_path, capsys, flag, value, line):
    assert main(["morph", *map(str, keyframe_files), "--out", str(tmp_path / "o"), flag, value]) == 2
    assert capsys.readouterr().err == f"error: {line}\n"
    assert not (tmp_path / "o").exists()


def test_eval_reports_progress_into_a_log_file_too(tmp_path, capsys):
    assert main(["eval", "--pairs", "1", "--frames", "3", "--steps", "2", "--schemes", "interpolate-only",
                 "--out", str(tmp_path / "eval")]) == 0
    assert "interpolate-only: 1/1 pairs" in capsys.readouterr().err.splitlines()


def test_the_progress_bar_counts_frames_with_steps_as_a_detail(tiny_model, keyframe_files,
                                                                  tmp_path):
    from latentween.morph import run_morph
    from latentween.progress import FrameProgress
    from latentween.images import read_image
    from latentween.settings import MorphSettings

    seen = []
    shown = FrameProgress(seen.append, tmp_path, 5)
    settings = MorphSettings(model=str(tiny_model), frames=5, steps=4, candidates=1, seed=1)
    run_morph([read_image(p) for p in keyframe_files], tmp_path, settings, progress=shown.progress,
              on_frame=shown.on_frame)
    assert [e["done"] for e in seen] == sorted(e["done"] for e in seen) and seen[-1]["done"] == 5
    assert {e["total"] for e in seen} == {5} and seen[0]["done"] == 2  # the keyframes are frames too
    assert all(e["steps"] and "/" in e["steps"] for e in seen if e["stage"] == "denoising")


def test_the_progress_bar_never_shows_an_empty_field():
    # a fresh process: tqdm reads TQDM_DISABLE (set for the test session) once, at import
    code = ("from latentween.progress import ProgressBar; bar = ProgressBar('morph', enabled=True, unit='frame'); "
            "bar({'done': 2, 'total': 5, 'stage': 'denoising', 'level': None, 'steps': '3/12'}); bar.close()")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TQDM_")}
    err = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stderr
    assert "2/5" in err and "steps=3/12" in err and "None" not in err
