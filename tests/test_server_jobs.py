"""The daemon's job API against a real `latentween serve` subprocess with the tiny model: submit, poll,
SSE, downloads, cancel, delete, manual choice, two clients at once, failures. Every test runs with
both executors: the local worker process, and one actor of a real local Ray cluster (docs/farm.md)."""
import json
import os
import threading
import time

import cv2
import httpx
import numpy as np
import pytest

from conftest import unloadable_model
from latentween.client import Client, JobFailed, RequestFailed
from latentween.server.process import DaemonProcess

FAST = {"steps": 4, "candidates": 1}
LONG = {"frames": 17, "steps": 400, "candidates": 1}  # seconds of work: time to act while it runs


@pytest.fixture(scope="module", params=["local", "ray"])
def daemon(request, tiny_model, tmp_path_factory):
    state, root = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("root")
    args = ["--model", tiny_model, "--state-dir", state, "--allow-root", root]
    if request.param == "ray":  # one actor: jobs queue behind each other as with the local worker
        args += ["--executor", "ray", "--ray-address", request.getfixturevalue("ray_cluster"), "--ray-actors", "1"]
    # after ray.init, which puts the cluster's RAY_AUTH_MODE in the environment a joining daemon needs
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(args, env=env) as process:
        process.state, process.root, process.executor = state, root, request.param
        yield process


@pytest.fixture
def client(daemon):
    return Client(daemon.url)


def wait_until(client, job_id, condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if condition(job):
            return job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never got there; last seen: {job['state']} {job['progress']}")


def decode(png: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)


def test_a_submitted_job_is_polled_until_done_with_every_frame(client, keyframe_files):
    job = client.submit(keyframe_files, {"frames": 5, "seed": 1, **FAST})
    assert job["state"] == "queued" and job["frame_count"] == 5 and job["settings"]["seed"] == 1
    seen = []
    done = client.wait(job["id"], interval=0.02, on_update=lambda j: seen.append(j["state"]))
    assert done["frames"] == [0, 1, 2, 3, 4] and done["error"] is None
    assert done["progress"]["done"] == done["progress"]["total"] > 0 and done["finished"] is not None
    assert set(seen) <= {"queued", "running", "done"} and seen[-1] == "done"
    assert decode(client.frame(job["id"], 2)).shape == (64, 64, 3)


def test_a_job_without_a_seed_gets_one_fixed_at_submission(client, keyframe_files):
    job = client.submit(keyframe_files, {"frames": 3, **FAST})
    assert isinstance(job["settings"]["seed"], int)
    assert client.wait(job["id"])["settings"]["seed"] == job["settings"]["seed"]


def test_events_stream_progress_and_frames_and_end_with_the_final_state(daemon, client, keyframe_files):
    job = client.submit(keyframe_files, {"frames": 9, "seed": 2, **FAST})
    events = []
    with httpx.stream("GET", f"{daemon.url}/v1/jobs/{job['id']}/events", timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                events.append((kind, json.loads(line[6:])))
    kinds = [k for k, _ in events]
    assert kinds[0] == "state" and kinds[-1] == "state" and events[-1][1]["state"] == "done"
    progress = [d["progress"]["done"] for k, d in events if k == "progress"]
    # a job that finished before the stream attached (a busy machine) has no progress left to stream
    assert progress == sorted(progress) and (progress or events[0][1]["state"] == "done")
    # the first event is the whole job, frames finished so far included; frame events follow for the rest
    streamed = [d["index"] for k, d in events if k == "frame"]
    assert len(set(streamed)) == len(streamed) and set(events[0][1]["frames"]) | set(streamed) == set(range(9))


def test_an_event_stream_of_a_finished_job_sends_its_state_and_ends(daemon, client, keyframe_files):
    job = client.wait(client.submit(keyframe_files, {"frames": 3, **FAST})["id"])
    response = httpx.get(f"{daemon.url}/v1/jobs/{job['id']}/events", timeout=30)
    assert response.text.count("event: state") == 1 and '"state": "done"' in response.text


def test_frames_and_manifest_download_as_morph_writes_them(client, keyframe_files, tmp_path):
    job = client.wait(client.submit(keyframe_files, {"frames": 5, "seed": 3, **FAST})["id"])
    written = client.download(job["id"], tmp_path)
    assert sorted(p.name for p in written) == [f"frame_{i:05d}.png" for i in range(5)]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["settings"]["seed"] == 3
    assert np.array_equal(decode((tmp_path / "frame_00000.png").read_bytes()), cv2.imread(str(keyframe_files[0])))


def test_unfinished_and_unknown_frames_are_404(client, keyframe_files):
    job = client.wait(client.submit(keyframe_files, {"frames": 3, **FAST})["id"])
    for job_id, index in ((job["id"], 3), ("nosuchjob", 0)):
        with pytest.raises(RequestFailed) as refused:
            client.frame(job_id, index)
        assert refused.value.status == 404


def test_cancel_stops_a_running_job_and_keeps_its_finished_frames(client, keyframe_files):
    job = client.submit(keyframe_files, LONG)
    wait_until(client, job["id"], lambda j: j["progress"]["done"] > 0)
    client.cancel(job["id"])
    stopped = wait_until(client, job["id"], lambda j: j["state"] != "running", timeout=30)
    assert stopped["state"] == "cancelled" and stopped["cancel_requested"]
    assert stopped["progress"]["done"] < stopped["progress"]["total"]
    assert 0 in stopped["frames"] and 16 in stopped["frames"]  # the keyframes are finished frames too


def test_a_cancelled_queued_job_never_runs(client, keyframe_files):
    blocker = client.submit(keyframe_files, LONG)
    queued = client.submit(keyframe_files, {"frames": 3, **FAST})
    assert client.cancel(queued["id"])["state"] == "cancelled"
    client.cancel(blocker["id"])
    wait_until(client, blocker["id"], lambda j: j["state"] == "cancelled")
    assert client.job(queued["id"])["started"] is None


def test_cancelling_a_finished_job_is_409(client, keyframe_files):
    job = client.wait(client.submit(keyframe_files, {"frames": 3, **FAST})["id"])
    with pytest.raises(RequestFailed) as refused:
        client.cancel(job["id"])
    assert refused.value.status == 409 and "already done" in refused.value.detail


def test_delete_removes_the_job_and_its_files(daemon, client, keyframe_files):
    job = client.wait(client.submit(keyframe_files, {"frames": 3, **FAST})["id"])
    assert (daemon.state / "jobs" / job["id"] / "output" / "frame_00001.png").is_file()
    client.delete(job["id"])
    with pytest.raises(RequestFailed) as gone:
        client.job(job["id"])
    assert gone.value.status == 404 and not (daemon.state / "jobs" / job["id"]).exists()


def test_deleting_a_running_job_stops_it_and_removes_its_files(daemon, client, keyframe_files):
    job = client.submit(keyframe_files, LONG)
    wait_until(client, job["id"], lambda j: j["progress"]["done"] > 0)
    client.delete(job["id"])
    deadline = time.monotonic() + 30
    while (daemon.state / "jobs" / job["id"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not (daemon.state / "jobs" / job["id"]).exists()
    assert client.health()["running"] is None or client.health()["running"] != job["id"]


def test_manual_choice_pauses_until_a_candidate_is_chosen(client, keyframe_files):
    job = client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 2, "choose": "manual", "seed": 4})
    waiting = wait_until(client, job["id"], lambda j: j["state"] != "queued" and j["state"] != "running")
    assert waiting["state"] == "awaiting-choice" and waiting["awaiting"] == {"frame": 1, "candidates": 2}
    listing = client.candidates(job["id"])
    assert listing["frame"] == 1 and [c["index"] for c in listing["candidates"]] == [0, 1]
    candidate = decode(client.candidate(job["id"], 1))
    client.choose(job["id"], frame=1, candidate=1)
    done = client.wait(job["id"])
    assert np.array_equal(decode(client.frame(job["id"], 1)), candidate)
    assert client.manifest(done["id"])["frames"][1]["chosen"] == 1


def test_a_choice_for_another_frame_or_candidate_is_refused(client, keyframe_files):
    job = client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 2, "choose": "manual"})
    wait_until(client, job["id"], lambda j: j["state"] == "awaiting-choice")
    with pytest.raises(RequestFailed) as wrong_frame:
        client.choose(job["id"], frame=2, candidate=0)
    with pytest.raises(RequestFailed) as wrong_candidate:
        client.choose(job["id"], frame=1, candidate=5)
    assert (wrong_frame.value.status, wrong_candidate.value.status) == (409, 422)
    assert client.cancel(job["id"])  # a job waiting for a choice can be cancelled
    assert wait_until(client, job["id"], lambda j: j["state"] == "cancelled")


def test_two_clients_at_once_each_get_their_own_job(daemon, keyframe_files):
    results = {}

    def one(seed):
        client = Client(daemon.url)
        job = client.submit(keyframe_files, {"frames": 5, "seed": seed, **FAST})
        results[seed] = (client.wait(job["id"], interval=0.02), client.frame(job["id"], 2))

    threads = [threading.Thread(target=one, args=(seed,)) for seed in (11, 12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert {s: r[0]["settings"]["seed"] for s, r in results.items()} == {11: 11, 12: 12}
    assert results[11][0]["id"] != results[12][0]["id"] and results[11][1] != results[12][1]


def test_keyframes_named_by_server_path_are_read_there(daemon, client, keyframe_files):
    paths = []
    for source in keyframe_files:
        target = daemon.root / source.name
        target.write_bytes(source.read_bytes())
        paths.append(str(target))
    job = client.wait(client.submit_paths(paths, {"frames": 3, **FAST})["id"])
    assert [i["source"] for i in job["inputs"]] == paths


def test_a_job_that_fails_records_why_and_the_daemon_keeps_serving(daemon, client, keyframe_files):
    broken = unloadable_model(daemon.root / "broken-model")  # admitted (it names its parts), fails to load
    with pytest.raises(JobFailed) as failed:
        client.wait(client.submit(keyframe_files, {"frames": 3, "model": str(broken), **FAST})["id"])
    assert "cannot load model" in failed.value.job["error"] and "\n" not in failed.value.job["error"]
    assert client.wait(client.submit(keyframe_files, {"frames": 3, **FAST})["id"])["state"] == "done"


def test_a_job_whose_model_folder_is_not_a_model_is_refused_at_submit(daemon, client, keyframe_files):
    empty = daemon.root / "not-a-model"
    empty.mkdir(exist_ok=True)
    before = len(client.jobs())
    with pytest.raises(RequestFailed) as refused:
        client.submit(keyframe_files, {"frames": 3, "model": str(empty), **FAST})
    assert refused.value.status == 422 and "model_index.json" in refused.value.detail
    assert len(client.jobs()) == before


def test_health_reports_version_device_models_and_queue(daemon, client, tiny_model):
    health = client.health()
    assert health["status"] == "ok" and health["device"] == "cpu" and health["queue"] == 0
    assert health["executor"] == daemon.executor and len(health["actors"]) == 1
    assert health["actors"][0]["state"] == "alive" and health["actors"][0]["pid"] not in (None, daemon.pid)
    assert str(tiny_model) in health["loaded"] and health["default_model"] == str(tiny_model)
    assert health["accepts_paths"] is True  # the fixture starts the daemon with --allow-root
    assert client.models()["models"][0] == {"spec": str(tiny_model), "default": True, "loaded": True}


def test_video_of_a_finished_job_is_an_mp4(client, keyframe_files):
    job = client.wait(client.submit(keyframe_files, {"frames": 5, **FAST})["id"])
    video = client.video(job["id"], "mp4", "12")
    assert video[4:8] == b"ftyp"


def test_a_frame_of_a_video_under_the_root_is_a_keyframe(daemon, client, keyframe_files):
    from latentween.media.video import encode_video

    clip = daemon.root / "clip.mp4"
    encode_video([str(p) for p in keyframe_files], clip, fps=24)
    specs = [f"{clip}@0", f"{clip}@1"]
    job = client.wait(client.submit_paths(specs, {"frames": 3, **FAST})["id"])
    assert [i["source"] for i in job["inputs"]] == specs and job["inputs"][0]["sha256"] != job["inputs"][1]["sha256"]
