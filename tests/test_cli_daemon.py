"""The daemon from the command line (issue 19, point 4): jobs, cancel, attach, download, Ctrl-C on a
wait, attaching to a job already running, and `morph --server` to videos and pipes."""
import _thread
import os
import signal
import threading
import time

import cv2
import numpy as np
import pytest

from latentween.cli import main
from latentween.client import Client
from latentween.server.process import DaemonProcess
from media_support import decode_all

JOB = ["--frames", "3", "--steps", "4", "--candidates", "1", "--seed", "9", "--quiet"]
# long enough to be caught running on any machine; cancelled by each test that starts one
LONG = ["--frames", "9", "--steps", "1000", "--candidates", "1", "--min-noise", "0.9", "--max-noise", "0.95"]


@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", tmp_path_factory.mktemp("state")], env=env) as process:
        yield process


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LATENTWEEN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("LATENTWEEN_TOKEN", raising=False)


def settled(client, job_id, states=("done", "failed", "cancelled"), timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] in states:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['state']}")


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)


def test_resubmitting_a_running_job_attaches_to_it_and_cancel_stops_it(daemon, keyframe_files, capsys):
    argv = ["submit", *map(str, keyframe_files), "--server", daemon.url, *LONG, "--seed", "5"]
    assert main(argv) == 0
    first = capsys.readouterr().out.strip()
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert out.strip() == first and f"attached to job {first}" in err
    assert main(["jobs", "--server", daemon.url]) == 0
    listed = [line for line in capsys.readouterr().out.splitlines() if line.split()[0] == first]
    assert len(listed) == 1 and listed[0].split()[1] in ("queued", "running")
    assert main(["cancel", first, "--server", daemon.url]) == 0
    assert settled(Client(daemon.url), first)["state"] == "cancelled"


def test_a_different_seed_is_a_different_job_and_is_queued(daemon, keyframe_files, capsys):
    ids = []
    for seed in ("5", "6"):
        assert main(["submit", *map(str, keyframe_files), "--server", daemon.url, *LONG, "--seed", seed]) == 0
        ids.append(capsys.readouterr().out.strip())
    for job_id in ids:
        main(["cancel", job_id, "--server", daemon.url])
    assert ids[0] != ids[1]


def test_ctrl_c_with_cancel_on_interrupt_cancels_the_job(daemon, keyframe_files, capsys, monkeypatch):
    client = Client(daemon.url)
    waited: list[str] = []  # the job the CLI waits for: Ctrl-C comes while it waits, as a person presses it
    original_wait = Client.wait

    def observed_wait(self, job_id, *args, **kwargs):
        waited.append(job_id)
        return original_wait(self, job_id, *args, **kwargs)

    monkeypatch.setattr(Client, "wait", observed_wait)
    problems = []

    def interrupt_once_running():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            try:
                if waited and client.job(waited[0])["state"] == "running":
                    _thread.interrupt_main()
                    return
            except Exception as exc:  # said in the failure below rather than lost with this thread
                problems.append(repr(exc))
            time.sleep(0.05)
        problems.append("the job never ran while the CLI waited")

    # A run started in the background (CI, `cmd &`) inherits SIGINT ignored, and then interrupt_main
    # does nothing: Ctrl-C is Python's KeyboardInterrupt here, as in a terminal.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt_once_running, daemon=True).start()
    try:
        code = main(["submit", *map(str, keyframe_files), "--server", daemon.url, *LONG, "--seed", "7", "--wait",
                     "--quiet", "--cancel-on-interrupt"])
    except SystemExit as stop:
        code = stop.code
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130, (code, problems, capsys.readouterr())
    assert settled(client, waited[0])["state"] == "cancelled"
    assert f"cancelled job {waited[0]}" in capsys.readouterr().err


def test_morph_with_server_writes_a_video_of_the_daemons_frames(daemon, keyframe_files, tmp_path):
    out, work = tmp_path / "x.mkv", tmp_path / "work"
    assert main(["morph", *map(str, keyframe_files), "--server", daemon.url, *JOB, "--out", str(out),
                 "--work", str(work)]) == 0
    decoded, _ = decode_all(out)
    frames = [read_rgb(work / f"frame_{i:05d}.png") for i in range(3)]
    assert len(decoded) == 3 and all(np.array_equal(d, f) for d, f in zip(decoded, frames))
    assert np.array_equal(frames[0], read_rgb(keyframe_files[0]))


def test_download_writes_a_done_job_to_a_pipe_and_an_animation(daemon, keyframe_files, tmp_path, capfdbinary):
    client = Client(daemon.url)
    job = client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 1, "seed": 9})
    settled(client, job["id"], ("done",))
    assert main(["download", job["id"], "--server", daemon.url, "--out", "-", "--hold-end", "1"]) == 0
    raw = capfdbinary.readouterr().out
    assert len(raw) == 4 * 64 * 64 * 3
    assert main(["download", job["id"], "--server", daemon.url, "--out", str(tmp_path / "x.gif")]) == 0
    assert (tmp_path / "x.gif").read_bytes()[:6] == b"GIF89a"


def test_download_of_an_unfinished_job_is_one_line(daemon, keyframe_files, capsys):
    client = Client(daemon.url)
    job = client.submit(keyframe_files, {"frames": 9, "steps": 1000, "candidates": 1, "seed": 8})
    try:
        assert main(["download", job["id"], "--server", daemon.url, "--out", "x.mp4"]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: job {job['id']} is ") and "latentween attach" in err and err.count("\n") == 1
    finally:
        client.cancel(job["id"])


def test_a_job_whose_clip_weights_are_missing_offline_is_refused_at_submit_with_morphs_line(
        daemon, tiny_model, keyframe_files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the daemon was started with it too (conftest)
    ranked = ["--frames", "3", "--steps", "4", "--candidates", "2", "--seed", "9", "--quiet"]
    assert main(["submit", *map(str, keyframe_files), "--server", daemon.url, *ranked]) == 2
    refused = capsys.readouterr().err
    assert main(["morph", *map(str, keyframe_files), "--model", str(tiny_model), *ranked,
                 "--out", str(tmp_path / "local")]) == 2
    local = capsys.readouterr().err
    assert local.startswith("error: CLIP weights 'ViT-L-14:openai' are not on this machine") and local.count("\n") == 1
    assert refused.startswith("error: the daemon refused the request (HTTP 422): ")
    assert refused.split(": ", 2)[2] == local.removeprefix("error: ")
    assert not [j for j in Client(daemon.url).jobs() if j["settings"].get("candidates") == 2]


def test_a_job_whose_model_the_daemon_cannot_get_is_refused_at_submit_with_morphs_line(
        daemon, keyframe_files, tmp_path, capsys, monkeypatch):
    model = "someone/not-downloaded-model"  # (missing folders: tests/test_server_jobs.py)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the daemon was started with it too (conftest)
    args = ["--model", model, "--frames", "3", "--steps", "4", "--candidates", "1", "--quiet"]
    assert main(["submit", *map(str, keyframe_files), "--server", daemon.url, *args]) == 2
    refused = capsys.readouterr().err
    assert main(["morph", *map(str, keyframe_files), *args, "--out", str(tmp_path / "local")]) == 2
    local = capsys.readouterr().err
    assert local.startswith("error: model") and model.rstrip("/") in local and local.count("\n") == 1
    assert refused.startswith("error: the daemon refused the request (HTTP 422): ")
    assert refused.split(": ", 2)[2] == local.removeprefix("error: ")
    assert not [j for j in Client(daemon.url).jobs() if j["settings"].get("model") == model]
