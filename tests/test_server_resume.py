"""Nothing lost: a daemon killed with SIGKILL mid-job resumes it with identical frames; a stopped one
re-queues it; disk-full failures end up on the job, and a missing model refuses jobs at submit, while
the daemon keeps serving."""
import errno
import json
import os
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from latentween.client import Client, RequestFailed
from latentween.server.process import DaemonProcess

# 9 frames, one sample per UNet call: several seconds of work, so the kill lands mid-job
# (max_batch never changes the pixels).
SETTINGS = {"frames": 9, "steps": 12, "candidates": 1, "seed": 7}


def daemon_args(tiny_model, state):
    return ["--model", tiny_model, "--state-dir", state, "--max-batch", "1"]


def env():
    return dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def frame_bytes(state, job_id, count):
    return [(state / "jobs" / job_id / "output" / f"frame_{i:05d}.png").read_bytes() for i in range(count)]


def settled_frames(out: Path, quiet: float = 1.0, limit: float = 30.0) -> list[int]:
    """In-between frames whose image and latent are both written (what a resume keeps), once that list has
    not changed for `quiet` seconds."""
    def written():
        return [i for i in range(1, 8) if (out / f"frame_{i:05d}.png").is_file()
                and (out / ".latentween" / f"latent_{i:05d}.safetensors").is_file()]

    deadline, last, since = time.monotonic() + limit, written(), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = written()
        if now != last:
            last, since = now, time.monotonic()
    return last


def test_a_killed_daemon_resumes_its_job_with_identical_frames(tiny_model, keyframe_files, tmp_path):
    state = tmp_path / "state"
    first = DaemonProcess(daemon_args(tiny_model, state), env=env())
    try:
        client = Client(first.url)
        job = client.submit(keyframe_files, SETTINGS)
        deadline = time.monotonic() + 120
        while len(client.job(job["id"])["frames"]) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        first.kill()
    out = state / "jobs" / job["id"] / "output"
    # The worker outlives its SIGKILLed daemon until it sees the closed pipe, and may finish the frame
    # it is on: what a resume keeps is what is on disk once the folder stops changing.
    kept = settled_frames(out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "running" and 2 <= len(kept) < 7  # killed mid-job

    with DaemonProcess(daemon_args(tiny_model, state), env=env()) as second:
        client = Client(second.url)
        resumed = client.wait(job["id"], interval=0.05)
        reference = client.wait(client.submit(keyframe_files, SETTINGS)["id"], interval=0.05)
    manifest = json.loads((state / "jobs" / job["id"] / "output" / "manifest.json").read_text())
    assert resumed["frames"] == list(range(9)) and manifest["status"] == "complete"
    assert [f["index"] for f in manifest["frames"] if f.get("resumed")] == kept
    assert frame_bytes(state, job["id"], 9) == frame_bytes(state, reference["id"], 9)


def test_a_stopped_daemon_requeues_its_running_job_and_takes_it_up_after_restart(tiny_model, keyframe_files, tmp_path):
    state = tmp_path / "state"
    with DaemonProcess(daemon_args(tiny_model, state), env=env()) as first:
        client = Client(first.url)
        job = client.submit(keyframe_files, {**SETTINGS, "steps": 400})
        deadline = time.monotonic() + 120
        while client.job(job["id"])["progress"]["done"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        first.stop()
    with sqlite3.connect(state / "jobs.sqlite3") as db:  # put back in the queue by the clean stop itself
        assert db.execute("SELECT state FROM jobs WHERE id = ?", (job["id"],)).fetchone() == ("queued",)
    with DaemonProcess(daemon_args(tiny_model, state) + ["--no-preload"], env=env()) as second:
        again = Client(second.url).job(job["id"])
        assert again["state"] in ("queued", "running") and again["error"] is None and not again["cancel_requested"]


def test_a_daemon_whose_model_is_missing_still_serves_says_why_and_refuses_jobs(tmp_path, keyframe_files):
    missing = tmp_path / "no-such-model"
    with DaemonProcess(["--model", missing, "--state-dir", tmp_path / "state"], env=env()) as daemon:
        client = Client(daemon.url)
        deadline = time.monotonic() + 60
        while client.health()["model_error"] is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "does not exist" in client.health()["model_error"]
        with pytest.raises(RequestFailed) as refused:  # the job would fail: it is refused at once instead
            client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 1})
        assert refused.value.status == 422 and "does not exist" in str(refused.value)


def _wait_final(client, job_id):
    while True:
        job = client.job(job_id)
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)


def test_a_full_disk_fails_the_job_with_the_reason_and_the_next_job_runs(tiny_model, keyframe_files, tmp_path, monkeypatch):
    import latentween.outputs
    from latentween.server.config import ServerConfig
    from latentween.server.inputs import from_upload
    from latentween.server.service import JobService
    from latentween.settings import MorphSettings

    # in a thread of this process (isolate off), so the monkeypatched write below is the one it uses
    service = JobService(ServerConfig(model=str(tiny_model), state_dir=tmp_path / "state", preload=False, isolate=False))
    service.start()
    try:
        def no_space(path, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        def submit():
            uploads = [from_upload(p.read_bytes(), p.name, service.config) for p in keyframe_files]
            return service.submit(MorphSettings(frames=3, steps=4, candidates=1), lambda: uploads).id

        monkeypatch.setattr(latentween.outputs, "write_atomic", no_space)  # the output folder's writes
        failed = _wait_service(service, submit())
        monkeypatch.undo()
        assert failed.state == "failed" and failed.error.startswith("disk full while writing frames")
        assert _wait_service(service, submit()).state == "done"
    finally:
        service.stop()


def _wait_service(service, job_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = service.get(job_id)
        if job.state in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} is still {job.state}")


def child_pids(daemon, only_worker=False):
    """The daemon's child processes (Linux): the worker process, and multiprocessing's resource tracker."""
    pids = [int(p) for task in Path(f"/proc/{daemon.pid}/task").iterdir()
            for p in (task / "children").read_text().split()]
    if only_worker:
        pids = [p for p in pids if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
    return pids


def gone(pid, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True  # exited, waiting to be reaped
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_killed_daemon_leaves_no_worker_process_behind(tiny_model, tmp_path):
    daemon = DaemonProcess(daemon_args(tiny_model, tmp_path / "state"), env=env())
    try:
        client = Client(daemon.url)
        while client.health()["device"] == "starting":
            time.sleep(0.05)
        children = child_pids(daemon)
    finally:
        daemon.kill()
    assert children and all(gone(pid) for pid in children)


def _kill_worker_when(daemon, client, job_id, ready, timeout=120):
    """SIGKILL the worker process (as the kernel's out-of-memory killer would) once `ready(job)` holds."""
    deadline = time.monotonic() + timeout
    while not ready(client.job(job_id)):
        assert time.monotonic() < deadline, "the job never got there"
        time.sleep(0.01)
    pid = child_pids(daemon, only_worker=True)[0]
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_worker_process_resumes_its_job_with_identical_frames(tiny_model, keyframe_files, tmp_path):
    state = tmp_path / "state"
    with DaemonProcess(daemon_args(tiny_model, state), env=env()) as daemon:
        client = Client(daemon.url)
        job = client.submit(keyframe_files, SETTINGS)
        _kill_worker_when(daemon, client, job["id"], lambda j: len(j["frames"]) >= 4)  # mid-level
        resumed = client.wait(job["id"], interval=0.05)
        reference = client.wait(client.submit(keyframe_files, SETTINGS)["id"], interval=0.05)
    manifest = json.loads((state / "jobs" / job["id"] / "output" / "manifest.json").read_text())
    assert resumed["state"] == "done" and resumed["frames"] == list(range(9))
    assert any(f.get("resumed") for f in manifest["frames"])
    assert frame_bytes(state, job["id"], 9) == frame_bytes(state, reference["id"], 9)


def test_a_job_whose_worker_dies_twice_fails_and_a_new_worker_takes_the_next(tiny_model, keyframe_files, tmp_path):
    with DaemonProcess(daemon_args(tiny_model, tmp_path / "state"), env=env()) as daemon:
        client = Client(daemon.url)
        job = client.submit(keyframe_files, {**SETTINGS, "steps": 400})
        first = _kill_worker_when(daemon, client, job["id"], lambda j: j["progress"]["done"] > 0)
        _kill_worker_when(daemon, client, job["id"], lambda j: j["state"] == "running" and j["progress"]["done"] > 0
                          and child_pids(daemon, only_worker=True) and child_pids(daemon, only_worker=True)[0] != first)
        failed = _wait_final(client, job["id"])
        assert failed["state"] == "failed" and "worker process died 2 times" in failed["error"]
        assert client.wait(client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 1})["id"])["state"] == "done"
