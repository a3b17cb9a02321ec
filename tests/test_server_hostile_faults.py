"""Faults inside the daemon (issue 21): the job database failing as it does on a full disk, injected at
the store boundary (sqlite3.OperationalError "database or disk is full"), in both workers: the worker
survives and retries, one job fails cleanly, /v1/health says what is wrong, DELETE still frees space.
Also: one video per frame rate however it is written, refused preflights as JSON."""
import sqlite3
import time

import pytest
from fastapi.testclient import TestClient

from conftest import unloadable_model
from latentween.server import ServerConfig, create_app, worker
from latentween.settings import MorphSettings

FAST = '{"frames": 3, "steps": 4, "candidates": 1}'
FULL = "database or disk is full"


def fake_execute(job, manager, runtime, sink):
    """A job's reports without a model, for the in-thread worker: frames one by one, then the end."""
    count = MorphSettings.model_validate(job["settings"]).output_count()
    sink.progress({"done": 0, "total": count, "stage": "denoising"})
    for index in range(count):
        if sink.should_stop():
            return "cancelled", None
        sink.frames([index])
    return "done", None


def start(config):
    app = create_app(config)
    client = TestClient(app, base_url="http://127.0.0.1:8642", raise_server_exceptions=False)
    client.__enter__()
    client.service = app.state.service
    return client


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """A daemon whose worker thread runs fake jobs: the faults below need no model."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(worker, "execute", fake_execute)
        client = start(ServerConfig(model=str(unloadable_model(tmp_path_factory.mktemp("model"))),
                                    state_dir=tmp_path_factory.mktemp("state"), preload=False, isolate=False))
        yield client
        client.__exit__(None, None, None)


@pytest.fixture(scope="module")
def process_daemon(tmp_path_factory):
    """The real worker process, the relay thread in front of it being what died on a full disk. Its model
    cannot load (conftest.unloadable_model), so its jobs end at once, failed, with no model to wait for."""
    model = unloadable_model(tmp_path_factory.mktemp("unloadable"))
    client = start(ServerConfig(model=str(model), state_dir=tmp_path_factory.mktemp("state"), preload=False))
    yield client
    client.__exit__(None, None, None)


@pytest.fixture(params=["fake", "process_daemon"])
def daemon(request):
    return request.getfixturevalue(request.param)


class Fault:
    """One JobStore method raising as SQLite does on a full disk, while `on` (and `when` holds), at most `times`."""

    def __init__(self, monkeypatch, store, name, when=lambda *a, **k: True, times=None):
        self.on, self.calls = True, 0
        original = getattr(store, name)

        def method(*args, **kwargs):
            if self.on and when(*args, **kwargs) and (times is None or self.calls < times):
                self.calls += 1
                raise sqlite3.OperationalError(FULL)
            return original(*args, **kwargs)

        monkeypatch.setattr(store, name, method)


def submit(client, keyframe_files, settings=FAST):
    files = [("keyframes", (p.name, p.read_bytes(), "image/png")) for p in keyframe_files]
    response = client.post("/v1/jobs", files=files, data={"settings": settings})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def wait_for(read, condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if condition(value):
            return value
        assert time.monotonic() < deadline, f"never got there; last seen: {value}"
        time.sleep(0.05)


def final(client, job_id):
    return wait_for(lambda: client.get(f"/v1/jobs/{job_id}").json(), lambda j: j["state"] in ("done", "failed", "cancelled"))


def one_line_refusal(response, status, words):
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert "\n" not in detail and words in detail, detail


def ended_normally(job):
    """Done, or (the worker process's jobs) failed because the model cannot load: never a database error."""
    return job["state"] == "done" or (job["state"] == "failed" and "cannot load model" in job["error"])


def test_the_worker_outlives_a_full_disk_and_health_says_so(daemon, keyframe_files, monkeypatch):
    fault = Fault(monkeypatch, daemon.service.store, "next_queued")
    job_id = submit(daemon, keyframe_files)
    health = wait_for(lambda: daemon.get("/v1/health").json(), lambda h: h.get("worker") == "retrying", timeout=60)
    assert health["status"] == "degraded" and FULL in health["problem"]
    assert daemon.get(f"/v1/jobs/{job_id}").json()["state"] == "queued"
    fault.on = False  # space is freed: the queued job runs without a restart
    assert ended_normally(final(daemon, job_id))
    assert fault.calls >= 1 and daemon.get("/v1/health").json()["status"] == "ok"


def test_a_job_whose_progress_cannot_be_saved_fails_alone(daemon, keyframe_files, monkeypatch):
    fault = Fault(monkeypatch, daemon.service.store, "update", when=lambda job_id, **values: set(values) == {"progress"})
    failed = final(daemon, submit(daemon, keyframe_files))
    assert failed["state"] == "failed" and failed["error"].startswith("the job database failed while saving progress")
    assert FULL in failed["error"] and fault.calls >= 1
    fault.on = False
    assert ended_normally(final(daemon, submit(daemon, keyframe_files)))


def test_a_job_whose_frames_cannot_be_recorded_fails_alone(fake, keyframe_files, monkeypatch):
    fault = Fault(monkeypatch, fake.service.store, "add_frames")
    failed = final(fake, submit(fake, keyframe_files))
    assert failed["state"] == "failed" and failed["error"].startswith("the job database failed while recording")
    assert FULL in failed["error"] and fault.calls >= 1
    fault.on = False
    assert final(fake, submit(fake, keyframe_files))["state"] == "done"


def test_the_end_of_a_job_is_recorded_once_the_database_takes_it(fake, keyframe_files, monkeypatch):
    fault = Fault(monkeypatch, fake.service.store, "update", times=3,
                  when=lambda job_id, **values: values.get("state") == "done")
    assert final(fake, submit(fake, keyframe_files))["state"] == "done"
    assert fault.calls == 3 and fake.get("/v1/health").json()["worker"] == "ok"


def test_delete_on_a_full_disk_frees_the_files_first(fake, keyframe_files, monkeypatch):
    job_id = submit(fake, keyframe_files)
    final(fake, job_id)
    Fault(monkeypatch, fake.service.store, "delete", times=1)  # fails until the files are gone
    assert fake.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert not fake.service.job_dir(job_id).exists()
    assert fake.get(f"/v1/jobs/{job_id}").status_code == 404

    other = submit(fake, keyframe_files)
    final(fake, other)
    monkeypatch.undo()
    Fault(monkeypatch, fake.service.store, "delete")  # still full after that: a clear 507, never a 500
    one_line_refusal(fake.delete(f"/v1/jobs/{other}"), 507, "disk is full")
    assert not fake.service.job_dir(other).exists()


@pytest.mark.parametrize("method, path, store_method", [
    ("GET", "/v1/jobs", "list"), ("GET", "/v1/jobs/abc", "get"), ("POST", "/v1/jobs/abc/cancel", "get")])
def test_requests_on_a_full_disk_get_one_json_line(fake, monkeypatch, method, path, store_method):
    Fault(monkeypatch, fake.service.store, store_method)
    one_line_refusal(fake.request(method, path), 507, "disk is full")


def test_a_stopped_worker_makes_health_503_and_submits_refused(fake, keyframe_files, monkeypatch):
    monkeypatch.setattr(fake.service.worker, "is_alive", lambda: False)
    health = fake.get("/v1/health")
    assert health.status_code == 503 and health.json()["status"] == "down" and health.json()["worker"] == "stopped"
    files = [("keyframes", (p.name, p.read_bytes(), "image/png")) for p in keyframe_files]
    one_line_refusal(fake.post("/v1/jobs", files=files, data={"settings": FAST}), 503, "worker has stopped")


def test_one_video_per_frame_rate_however_it_is_written(fake, keyframe_files, monkeypatch):
    import latentween.media.video

    encodes = []

    def encode(frames, path, fps):
        encodes.append(fps)
        path.write_bytes(b"video")

    monkeypatch.setattr(latentween.media.video, "encode_video", encode)
    job_id = submit(fake, keyframe_files)
    final(fake, job_id)
    for fps in ("24", "24.0", "48/2", " 24/1", "24.000"):
        assert fake.get(f"/v1/jobs/{job_id}/video", params={"fps": fps}).status_code == 200
    assert len(encodes) == 1 and len(list((fake.service.job_dir(job_id) / "video").iterdir())) == 1
    one_line_refusal(fake.get(f"/v1/jobs/{job_id}/video", params={"fps": "0/0"}), 422, "fps")


def test_a_refused_preflight_is_json(tmp_path):
    app = create_app(ServerConfig(state_dir=tmp_path, cors_origins=["http://localhost:3000"]))
    client = TestClient(app, base_url="http://127.0.0.1:8642")  # no lifespan: CORS and the guard need no engine
    response = client.options("/v1/jobs", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "PUT"})
    one_line_refusal(response, 400, "preflight refused")
    one_line_refusal(client.options("/v1/jobs", headers={"Origin": "https://attacker.example",
                                                          "Access-Control-Request-Method": "POST"}), 400, "origin")
