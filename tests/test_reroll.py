"""Re-roll of one frame or a range (issue 20): `takes` in the engine, and POST /v1/jobs/{id}/reroll.

Nine frames plan as level 1: 4; level 2: 2, 6; level 3: 1, 3, 5, 7. Frame 2 is a parent of frame 3.
"""
from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch

from latentween.images import read_image
from latentween.method import frame_generator, randn
from latentween.morph import KEY_WHEN_SET, job_key, run_morph
from latentween.settings import MorphSettings, RuntimeSettings

FAST = dict(frames=9, steps=4, seed=11, candidates=1, align="none")


def frames(out) -> dict:
    return {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))}


def changed(a: dict, b: dict) -> list[str]:
    return sorted(name for name in a if a[name] != b[name])


@pytest.fixture(scope="module")
def morph(tiny_model, keyframe_files, manager):
    keyframes = [read_image(p) for p in keyframe_files]

    def go(out, **settings):
        return run_morph(keyframes, out, MorphSettings(model=str(tiny_model), **{**FAST, **settings}),
                         RuntimeSettings(max_batch=4), manager=manager)

    return go


@pytest.fixture(scope="module")
def first(morph, tmp_path_factory):
    out = tmp_path_factory.mktemp("first") / "out"
    morph(out)
    return out


def reroll(first, folder, morph, **settings):
    shutil.copytree(first, folder)
    return morph(folder, **settings)


# -- noise ----------------------------------------------------------------------------------------

def test_take_zero_draws_the_noise_of_before_and_a_take_draws_other_noise():
    plain = randn((4, 8, 8), frame_generator(7, 0.5, 0))
    assert torch.equal(plain, randn((4, 8, 8), frame_generator(7, 0.5, 0, take=0)))
    assert not torch.equal(plain, randn((4, 8, 8), frame_generator(7, 0.5, 0, take=1)))


# -- settings -------------------------------------------------------------------------------------

def test_takes_are_read_from_frame_colon_take_text_and_take_zero_is_dropped():
    assert MorphSettings(frames=9, takes="3:2, 5:1,6:0").takes == {3: 2, 5: 1}


@pytest.mark.parametrize("takes, words", [("0:1", "frame 0 is not a generated frame"),
                                          ("8:1", "frame 8 is not a generated frame"),
                                          ("3:-1", "takes are 0 or more"), ("3", "must look like 3:1,5:2")])
def test_a_take_of_a_keyframe_or_below_zero_is_refused(takes, words):
    with pytest.raises(ValueError, match=words):
        MorphSettings(frames=9, takes=takes)


def test_a_job_not_using_later_settings_keeps_the_job_key_it_had_before_they_existed(keyframe_files):
    keyframes = [read_image(p) for p in keyframe_files]
    settings = MorphSettings(seed=3)
    later = {"takes": {3: 1}, "true_cfg": 2.0, "consistency_weight": 2.0, "appearance": "stats"}
    assert set(later) == set(KEY_WHEN_SET)
    before = settings.model_dump(exclude=set(later))
    payload = {"inputs": [k.sha256 for k in keyframes], "settings": before, "extra": {}}
    assert job_key(keyframes, settings) == hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    for name, value in later.items():  # set, each one is part of the job's identity
        assert job_key(keyframes, settings.model_copy(update={name: value})) != job_key(keyframes, settings), name


# -- the engine -----------------------------------------------------------------------------------

def test_rerolling_a_frame_changes_that_frame_alone(first, morph, tmp_path):
    manifest = reroll(first, tmp_path / "out", morph, takes={3: 1})
    assert changed(frames(first), frames(tmp_path / "out")) == ["frame_00003.png"]
    assert [f["index"] for f in manifest["frames"] if f.get("take")] == [3]
    assert [f["index"] for f in manifest["frames"] if f.get("resumed")] == [1, 2, 4, 5, 6, 7]


def test_a_reroll_keeps_the_first_takes_latents_for_the_children(first, morph, tmp_path):
    reroll(first, tmp_path / "out", morph, takes={4: 1})
    latent = ".latentween/latent_00004.safetensors"
    assert (tmp_path / "out" / latent).read_bytes() == (first / latent).read_bytes()


def test_a_reroll_made_from_scratch_gives_the_same_frames_as_one_made_in_place(first, morph, tmp_path):
    reroll(first, tmp_path / "in-place", morph, takes={2: 1, 3: 1})  # a parent and its child
    morph(tmp_path / "scratch", takes={2: 1, 3: 1})
    assert frames(tmp_path / "scratch") == frames(tmp_path / "in-place")
    assert changed(frames(first), frames(tmp_path / "in-place")) == ["frame_00002.png", "frame_00003.png"]


def test_going_back_to_an_earlier_take_gives_its_bytes_again(first, morph, tmp_path):
    out = tmp_path / "out"
    reroll(first, out, morph, takes={3: 1})
    take_one = frames(out)
    morph(out, takes={3: 2})
    assert changed(take_one, frames(out)) == ["frame_00003.png"]
    morph(out, takes={3: 1})
    assert frames(out) == take_one
    morph(out)
    assert frames(out) == frames(first)


# -- the daemon -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    import os

    from latentween.server.process import DaemonProcess

    state = tmp_path_factory.mktemp("state")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", state], env=env) as process:
        yield process


@pytest.fixture(scope="module")
def client(daemon):
    from latentween.client import Client

    return Client(daemon.url, timeout=30)


@pytest.fixture(scope="module")
def finished(client, keyframe_files):
    job = client.submit(keyframe_files, {k: v for k, v in FAST.items() if k != "align"} | {"frames": 5})
    return client.wait(job["id"], timeout=120)


def job_frames(client, job) -> list[bytes]:
    return [client.frame(job["id"], i) for i in range(job["frame_count"])]


def test_a_reroll_job_makes_the_named_frame_again_and_keeps_the_others(client, finished):
    before = job_frames(client, finished)
    job = client.wait(client.reroll(finished["id"], [2])["id"], timeout=120)
    after = job_frames(client, job)
    assert [i for i in range(5) if after[i] != before[i]] == [2]
    assert job["settings"]["takes"] == {"2": 1} and job["settings"]["seed"] == finished["settings"]["seed"]
    assert job_frames(client, finished) == before  # the first job's files stay as they were


def test_a_reroll_of_a_reroll_raises_the_take_again(client, finished):
    once = client.wait(client.reroll(finished["id"], [2])["id"], timeout=120)
    twice = client.wait(client.reroll(once["id"], [1, 2])["id"], timeout=120)
    assert twice["settings"]["takes"] == {"1": 1, "2": 2}
    assert client.frame(twice["id"], 3) == client.frame(finished["id"], 3)


def test_rerolling_an_unknown_job_is_a_404_in_one_line(client):
    from latentween.client import RequestFailed

    with pytest.raises(RequestFailed) as caught:
        client.reroll("0123456789ab", [1])
    assert caught.value.status == 404 and caught.value.detail == "no job '0123456789ab' on this daemon"


def test_rerolling_a_keyframe_is_refused_in_one_line(client, finished):
    from latentween.client import RequestFailed

    with pytest.raises(RequestFailed) as caught:
        client.reroll(finished["id"], [4])
    assert caught.value.status == 422
    assert caught.value.detail == f"frames: 4 is not a generated frame of job {finished['id']} (1..3)"


def test_a_job_that_did_not_finish_cannot_be_rerolled(client, keyframe_files):
    from latentween.client import RequestFailed

    job = client.submit(keyframe_files, {"frames": 17, "steps": 400, "candidates": 1})
    client.cancel(job["id"])
    with pytest.raises(RequestFailed) as caught:
        client.reroll(job["id"], [1])
    assert caught.value.status == 409 and "only a finished job can be re-rolled" in caught.value.detail


# -- the CLI --------------------------------------------------------------------------------------

def test_the_cli_rerolls_a_frame_of_its_last_run_in_place_with_that_runs_seed(tiny_model, keyframe_files, tmp_path):
    from latentween.cli import main

    out = tmp_path / "out"
    args = ["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), "--frames", "5",
            "--steps", "4", "--candidates", "1", "--align", "none", "--quiet"]  # no --seed: the run picks one
    main(args)
    before = frames(out)
    main([*args, "--takes", "2:1"])
    assert changed(before, frames(out)) == ["frame_00002.png"]
