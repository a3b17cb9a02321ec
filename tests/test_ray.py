"""Jobs and renders on a real local Ray cluster (2 CPUs, no dashboard) with the tiny model: the same
bytes as without Ray, also when an actor is killed mid-job; an actor that dies past its restarts fails
its job with Ray's error; actors have names Ray's own tools show. (The daemon's whole API with the
Ray executor: tests/test_server_jobs.py, parametrised over executors.)"""
import json
import os
import signal
import threading
import time

import pytest

from conftest import daemon_threads
from latentween.cli import main
from latentween.client import Client, JobFailed
from latentween.server.process import DaemonProcess

# 9 frames, one sample per UNet call: seconds of work, so a kill lands mid-job (as test_server_resume.py)
SETTINGS = {"frames": 9, "steps": 12, "candidates": 1, "seed": 7}
RENDER = ["--steps", "4", "--candidates", "1", "--seed", "3", "--quiet", "--transition", "3"]


@pytest.fixture(scope="module")
def local_render(tiny_model, three_keyframes, tmp_path_factory):
    out = tmp_path_factory.mktemp("local-render") / "film.mp4"
    assert main(["render", *map(str, three_keyframes), "--out", str(out), "--model", str(tiny_model), *RENDER,
                 "--work", str(out.parent / "work")]) == 0
    return out


@pytest.fixture(scope="module")
def local_frames(tiny_model, keyframe_files, tmp_path_factory):
    """The daemon's job below as `latentween morph` in this process."""
    out = tmp_path_factory.mktemp("local-morph")
    with daemon_threads():
        assert main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--quiet",
                     "--max-batch", "1", *[f"--{k}={v}" for k, v in SETTINGS.items()]]) == 0
    return [(out / f"frame_{i:05d}.png").read_bytes() for i in range(9)]


@pytest.fixture(scope="module")
def daemon(ray_cluster, tiny_model, tmp_path_factory):
    """One actor that Ray restarts once: the kill test uses the restart, the last test kills it for good."""
    state = tmp_path_factory.mktemp("ray-state")
    env = dict(os.environ, OMP_NUM_THREADS="1")  # what daemon_threads() computes the reference with
    args = ["--model", tiny_model, "--state-dir", state, "--max-batch", "1", "--executor", "ray",
            "--ray-address", ray_cluster, "--ray-actors", "1", "--ray-restarts", "1"]
    with DaemonProcess(args, env=env) as process:
        process.state = state
        yield process


def job_frames(daemon, job_id):
    return [(daemon.state / "jobs" / job_id / "output" / f"frame_{i:05d}.png").read_bytes() for i in range(9)]


def actor_of(client):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        actor = client.health()["actors"][0]
        if actor["state"] == "alive" and actor["pid"]:
            return actor
        time.sleep(0.1)
    raise AssertionError(f"the actor never came up: {actor}")


def wait_for_frames(client, job_id, count):
    deadline = time.monotonic() + 120
    while len(client.job(job_id)["frames"]) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return client.job(job_id)


def test_render_with_ray_makes_the_same_frames_and_a_video_of_them_as_render(ray_cluster, tiny_model, three_keyframes,
                                                                            local_render, tmp_path):
    out = tmp_path / "film.mp4"
    assert main(["render", *map(str, three_keyframes), "--out", str(out), "--model", str(tiny_model), *RENDER,
                 "--work", str(tmp_path / "work"), "--ray", ray_cluster, "--ray-actors", "2"]) == 0
    for transition in ("transition_000", "transition_001"):  # the environment, then frames: a failure says which
        manifests = [json.loads((root / "work" / transition / "manifest.json").read_text())
                     for root in (tmp_path, local_render.parent)]
        assert manifests[0]["reproducibility"] == manifests[1]["reproducibility"]
        for i in range(5):
            name = f"{transition}/frame_{i:05d}.png"
            assert (tmp_path / "work" / name).read_bytes() == (local_render.parent / "work" / name).read_bytes(), name
    # The video: same stream and length. Its bytes matched in most full-suite runs but not all (x264 gave
    # other B-frames for identical PNGs, cause not found yet), so bytes are not promised here.
    from media_support import decode_all

    ours, theirs = decode_all(out)[0], decode_all(local_render)[0]
    assert len(ours) == len(theirs) == 9 and all(a.shape == b.shape == (64, 64, 3) for a, b in zip(ours, theirs))


def test_render_with_ray_and_a_shared_dir_writes_the_frames_there(ray_cluster, tiny_model, three_keyframes,
                                                                   local_render, tmp_path):
    shared = tmp_path / "shared"
    assert main(["render", *map(str, three_keyframes), "--out", str(tmp_path / "seq"), "--model", str(tiny_model),
                 *RENDER, "--ray", ray_cluster, "--ray-actors", "1", "--shared-dir", str(shared)]) == 0
    for i in range(5):
        name = f"transition_001/frame_{i:05d}.png"
        assert (shared / name).read_bytes() == (local_render.parent / "work" / name).read_bytes()
    assert len(list((tmp_path / "seq").glob("*.png"))) == 3 + 2 * 3


# One transition (2 keyframes) of 7 frames in 3 levels, one frame per chunk: 7 chunks to spread
SPLIT = ["--steps", "24", "--candidates", "1", "--seed", "5", "--quiet", "--transition", "7", "--max-batch", "1"]


@pytest.fixture(scope="module")
def local_transition(tiny_model, keyframe_files, tmp_path_factory):
    work = tmp_path_factory.mktemp("local-transition")
    assert main(["render", *map(str, keyframe_files), "--out", str(work / "seq"), "--model", str(tiny_model),
                 *SPLIT, "--work", str(work / "work")]) == 0
    return [(work / "work" / "transition_000" / f"frame_{i:05d}.png").read_bytes() for i in range(9)]


def render_one_transition(tiny_model, keyframe_files, ray_cluster, tmp_path):
    assert main(["render", *map(str, keyframe_files), "--out", str(tmp_path / "seq"), "--model", str(tiny_model),
                 *SPLIT, "--work", str(tmp_path / "work"), "--ray", ray_cluster, "--ray-actors", "2"]) == 0
    folder = tmp_path / "work" / "transition_000"
    return [(folder / f"frame_{i:05d}.png").read_bytes() for i in range(9)], json.loads(
        (folder / "manifest.json").read_text())


def test_one_transition_on_two_actors_runs_its_chunks_on_both_and_makes_the_same_frames(
        ray_cluster, tiny_model, keyframe_files, local_transition, tmp_path):
    frames, manifest = render_one_transition(tiny_model, keyframe_files, ray_cluster, tmp_path)
    assert frames == local_transition
    actors = {f.get("actor") for f in manifest["frames"] if f.get("source") == "generated"}
    assert actors == {f"render-{os.getpid()}-actor-0", f"render-{os.getpid()}-actor-1"}


@pytest.mark.parametrize("whose", ["helper", "owner"])
def test_an_actor_killed_mid_chunk_is_restarted_and_the_transition_ends_with_identical_frames(
        whose, ray_cluster, tiny_model, keyframe_files, local_transition, tmp_path):
    import ray

    killed = []

    def kill_when_it_runs_a_chunk():
        # Either actor may own the transition (the first to start does); both run chunks. Kill the
        # helper (only its chunk is re-run) or the owner (its whole transition is re-run, resuming
        # from the frames it made, some of which never travelled to the driver).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for name in (f"render-{os.getpid()}-actor-{i}" for i in range(2)):
                try:
                    info = ray.get(ray.get_actor(name, namespace="latentween").info.remote(), timeout=5)
                except Exception:
                    continue
                owner = info["running"] is not None
                if info["chunk"] is not None and owner == (whose == "owner"):
                    os.kill(info["pid"], signal.SIGKILL)
                    killed.append(info["chunk"])
                    break
            time.sleep(0.02)

    killer = threading.Thread(target=kill_when_it_runs_a_chunk, daemon=True)
    killer.start()
    frames, manifest = render_one_transition(tiny_model, keyframe_files, ray_cluster, tmp_path)
    killer.join(timeout=5)
    assert killed, f"the {whose} must be killed while it runs a chunk"
    assert frames == local_transition


def test_a_job_on_a_daemon_with_two_actors_runs_its_chunks_on_both_and_makes_the_same_frames(
        ray_cluster, tiny_model, keyframe_files, local_frames, tmp_path):
    # before the tests of the one-actor daemon below: the cluster's 2 CPUs hold 2 actors at a time
    env = dict(os.environ, OMP_NUM_THREADS="1")  # what daemon_threads() computes the reference with
    args = ["--model", tiny_model, "--state-dir", tmp_path, "--max-batch", "1", "--executor", "ray",
            "--ray-address", ray_cluster, "--ray-actors", "2"]
    with DaemonProcess(args, env=env) as process:
        process.state = tmp_path
        client = Client(process.url)
        job = client.wait(client.submit(keyframe_files, SETTINGS)["id"], interval=0.05)
        frames = job_frames(process, job["id"])
    manifest = json.loads((tmp_path / "jobs" / job["id"] / "output" / "manifest.json").read_text())
    assert frames == local_frames
    actors = {f.get("actor") for f in manifest["frames"] if f.get("source") == "generated"}
    assert len(actors) == 2 and all(name.endswith(("-actor-0", "-actor-1")) for name in actors), actors


def test_a_job_on_a_ray_actor_makes_the_same_frames_as_a_local_run(daemon, keyframe_files, local_frames):
    client = Client(daemon.url)
    job = client.wait(client.submit(keyframe_files, SETTINGS)["id"], interval=0.05)
    assert job_frames(daemon, job["id"]) == local_frames


def test_ray_knows_the_daemons_actors_by_the_names_health_lists(daemon):
    import ray

    health = Client(daemon.url).health()
    assert health["executor"] == "ray" and [a["state"] for a in health["actors"]] == ["alive"]
    actor = ray.get_actor(health["actors"][0]["name"], namespace="latentween")
    assert ray.get(actor.info.remote())["pid"] == health["actors"][0]["pid"]


def test_an_actor_killed_mid_job_is_restarted_and_the_job_ends_with_identical_frames(daemon, keyframe_files,
                                                                                   local_frames):
    client = Client(daemon.url)
    job = client.submit(keyframe_files, SETTINGS)
    running = wait_for_frames(client, job["id"], 4)  # both keyframes and two made frames
    assert running["state"] == "running" and len(running["frames"]) < 9, "the job must be killed mid-way"
    victim = actor_of(client)["pid"]
    os.kill(victim, signal.SIGKILL)
    done = client.wait(job["id"], interval=0.05, timeout=180)
    assert done["state"] == "done" and job_frames(daemon, job["id"]) == local_frames
    assert actor_of(client)["pid"] != victim  # a new process: Ray restarted the actor


def test_a_job_whose_actor_dies_past_its_restarts_fails_with_the_actors_error(daemon, keyframe_files):
    client = Client(daemon.url)
    job = client.submit(keyframe_files, {**SETTINGS, "steps": 400})
    wait_for_frames(client, job["id"], 2)
    for _ in range(2):  # the daemon's actor has one restart (unless the test above spent it): kill it past that
        victim = actor_of(client)["pid"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and client.job(job["id"])["state"] == "running" and \
                client.health()["actors"][0]["pid"] == victim:
            time.sleep(0.05)
        if client.job(job["id"])["state"] != "running":
            break
    with pytest.raises(JobFailed) as failed:
        client.wait(job["id"], interval=0.05, timeout=120)
    error = failed.value.job["error"]
    assert error.startswith("the Ray actor daemon-") and "Actor" in error and "\n" not in error
    assert client.health()["actors"][0]["state"] == "dead"


def test_files_an_actor_sends_cannot_land_outside_the_drivers_folder(tmp_path):
    from latentween.farm.files import receive

    receive(tmp_path / "job", {"output/frame_00001.png": b"png"})
    for evil in ("../escape.png", "/etc/escape.png", "output/../../escape.png"):
        with pytest.raises(ValueError):
            receive(tmp_path / "job", {evil: b"x"})
    assert (tmp_path / "job" / "output" / "frame_00001.png").read_bytes() == b"png"
    assert not (tmp_path / "escape.png").exists()


def test_a_rerun_sends_the_frames_its_killed_predecessor_left_unsent_and_not_what_the_driver_has(tmp_path):
    from latentween.farm.files import Shipper, frame_files, receive

    scratch = tmp_path / "scratch"
    receive(scratch, {"frame_00001.png": b"one"})  # the killed run made 1 and 2, and 2 never travelled
    receive(scratch, {"frame_00002.png": b"two"})
    driver_has = {"frame_00001.png": b"one"}
    receive(scratch, driver_has)  # the re-run starts from what the driver sent
    shipper = Shipper(scratch, received=driver_has)
    assert shipper.files(frame_files([1, 2])) == {"frame_00002.png": b"two"}


def test_ray_options_without_the_ray_executor_are_refused():
    from pydantic import ValidationError

    from latentween.server.config import ServerConfig

    with pytest.raises(ValidationError, match="--ray-actors go with --executor ray"):
        ServerConfig(ray_actors=2)
    assert ServerConfig(executor="ray", ray_actors=2, shared_dir="/mnt/farm").jobs_dir.as_posix() == "/mnt/farm/jobs"


def test_each_chunk_run_alone_from_its_parents_gives_the_frames_generate_makes(components, keyframe_arrays):
    """The engine entry point the farm runs (no Ray here): run_chunk is generate's code, chunk by chunk."""
    import numpy as np
    import torch

    from latentween.pipeline import InterpolationPipeline, InterpolationRequest

    request = InterpolationRequest(fractions=[i / 8 for i in range(9)], seed=3, steps=20, prompt="a red disk")
    pipe = InterpolationPipeline.from_components(components, max_batch=4)
    whole = {r.index: r for r in pipe(keyframe_arrays, request)}
    schedule = pipe.schedule(request)
    for level, chunks in enumerate(schedule.chunks, start=1):
        for number, chunk in enumerate(chunks):
            mine = {row.frame.index for row in chunk}
            known = {i: r.latent for i, r in whole.items() if i not in mine}
            for result in pipe.run_chunk(keyframe_arrays, request, level, number, known):
                assert torch.equal(result.latent, whole[result.index].latent)
                assert np.array_equal(result.image, whole[result.index].image)


def test_a_chunk_without_its_parents_latents_is_refused(pipe, keyframe_arrays):
    from latentween.pipeline import InterpolationRequest

    request = InterpolationRequest(fractions=[i / 8 for i in range(9)], seed=3, steps=20)
    with pytest.raises(ValueError, match="needs the latents of frames"):
        pipe.run_chunk(keyframe_arrays, request, 2, 0, {})
