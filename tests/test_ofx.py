"""The OpenFX bridge (ofx_bridge/), built with CMake and driven by the test host in tests/ofx_host
against a real daemon with the tiny model: describe, the Transition and General contexts, renders
that show the daemon's frames, the cache, thumbnails, abort, and the cross-dissolve fallback.

Needs cmake, g++, libcurl4-openssl-dev and libpng-dev (.ci/run installs them)."""
from __future__ import annotations

import os
import socket
import subprocess

import cv2
import numpy as np
import pytest

from latentween.client import Client
from latentween.server.process import DaemonProcess
from ofx_support import ROOT, STAT_FAILED, STAT_OK, Run, built, dissolve, images, run_host  # noqa: F401 (fixtures)

TOKEN = "ofx-test-token-0123456789"
FAST = ["set steps 4", "set candidates 1"]
LONG = ["set steps 400", "set candidates 1", "set frames 17"]  # seconds of work: time to abort


@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", tmp_path_factory.mktemp("ofx-state"),
                        "--token", TOKEN], env=env) as process:
        process.client = Client(process.url, token=TOKEN)
        yield process


def daemon_frame(daemon, job_id: str, index: int) -> np.ndarray:
    png = cv2.imdecode(np.frombuffer(daemon.client.frame(job_id, index), np.uint8), cv2.IMREAD_UNCHANGED)
    return cv2.cvtColor(png, cv2.COLOR_BGRA2RGBA)


def new_jobs(daemon, before: list[dict]) -> list[dict]:
    seen = {j["id"] for j in before}
    return [j for j in daemon.client.jobs() if j["id"] not in seen]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def daemon_settings(daemon) -> list[str]:
    return [f"set daemonUrl {daemon.url}", f"set token {TOKEN}"]


# -- the bundle and its descriptions -----------------------------------------------------------------

@pytest.fixture(scope="module")
def described(built, images, tmp_path_factory) -> Run:
    folder = tmp_path_factory.mktemp("described")
    return run_host(built, images, folder, ["describe_in_context general"], create=False)


def test_the_build_is_a_standard_bundle_exporting_only_the_entry_points(built):
    assert built["binary"].is_file()
    listing = subprocess.run(["nm", "-D", "--defined-only", built["binary"]], capture_output=True, text=True,
                             check=True).stdout
    assert {line.split()[-1] for line in listing.splitlines()} == {"OfxGetNumberOfPlugins", "OfxGetPlugin"}


ABI_DRIFTS = {  # one mistake each, in a copy of our header: the build must stop
    "swapped suite members": ("OfxStatus (*propGetDouble)(OfxPropertySetHandle, const char* property, int index, double* value);\n"
                              "  OfxStatus (*propGetInt)(OfxPropertySetHandle, const char* property, int index, int* value);",
                              "OfxStatus (*propGetInt)(OfxPropertySetHandle, const char* property, int index, int* value);\n"
                              "  OfxStatus (*propGetDouble)(OfxPropertySetHandle, const char* property, int index, double* value);"),
    "a mistyped string": ('"OfxImageEffectPropMultipleClipDepths"', '"OfxImageEffectPropSupportsMultipleClipDepths"'),
    "a wrong status": ("#define kOfxStatErrImageFormat 1000", "#define kOfxStatErrImageFormat 100"),
    "a member too many": ("  OfxStatus (*progressEnd)(void* effectInstance);",
                          "  OfxStatus (*progressEnd)(void* effectInstance);\n  void* more;"),
    "a narrower version": ("  unsigned int pluginVersionMinor;", "  unsigned short pluginVersionMinor;"),
}


@pytest.mark.parametrize("drift", [None, *ABI_DRIFTS])
def test_the_build_pins_the_abi_to_the_official_openfx_values(tmp_path, drift):
    header = (ROOT / "ofx_bridge" / "include" / "ofx_minimal.h").read_text()
    if drift:
        old, new = ABI_DRIFTS[drift]
        assert header.count(old) == 1
        header = header.replace(old, new)
    (tmp_path / "ofx_minimal.h").write_text(header)
    done = subprocess.run(["g++", "-std=c++17", "-fsyntax-only", "-I", str(tmp_path),
                           str(ROOT / "ofx_bridge" / "src" / "abi_pins.cpp")], capture_output=True, text=True)
    assert (done.returncode == 0) == (drift is None), done.stderr[-2000:]
    if drift:
        assert "static assertion failed" in done.stderr


def test_the_host_loads_one_image_effect_plugin(described):
    loaded = described.of("loaded")[0]
    assert (loaded["plugins"], loaded["api"], loaded["api_version"]) == (1, "OfxImageEffectPluginAPI", 1)
    assert described.of("action")[0] == {"event": "action", "action": "OfxActionLoad", "status": STAT_OK}


def test_describe_offers_the_transition_and_general_contexts_for_float_and_8bit(described):
    props = described.of("described")[0]["props"]
    assert props["OfxImageEffectPropSupportedContexts"] == ["OfxImageEffectContextTransition",
                                                            "OfxImageEffectContextGeneral"]
    assert set(props["OfxImageEffectPropSupportedPixelDepths"]) == {"OfxBitDepthFloat", "OfxBitDepthByte"}
    assert props["OfxImageEffectPropSupportsTiles"] == [0] and props["OfxImageEffectPluginPropHostFrameThreading"] == [0]


def test_the_transition_context_has_the_standard_clips_and_declares_the_mandated_transition(described):
    context = described.of("described_in_context")[0]
    assert context["context"] == "OfxImageEffectContextTransition" and context["status"] == STAT_OK
    assert list(context["clips"]) == ["SourceFrom", "SourceTo", "Output"]
    # The specification mandates it and lets the host alone label and drive it.
    transition = context["params"]["Transition"]
    assert transition["OfxParamPropType"] == ["OfxParamTypeDouble"] and "OfxPropLabel" not in transition


def test_the_general_context_takes_two_inputs_and_defines_its_own_transition(described):
    context = described.of("described_in_context")[1]
    assert context["context"] == "OfxImageEffectContextGeneral" and context["status"] == STAT_OK
    assert list(context["clips"]) == ["SourceFrom", "SourceTo", "Output"]
    transition = context["params"]["Transition"]
    assert transition["OfxParamPropType"] == ["OfxParamTypeDouble"]
    assert (transition["OfxParamPropMin"], transition["OfxParamPropMax"]) == ([0.0], [1.0])


def test_the_parameters_are_the_job_settings_and_the_daemons_address(described):
    params = described.of("described_in_context")[0]["params"]
    assert list(params) == ["Transition", "prompt", "negative", "seed", "frames", "steps", "candidates", "pose",
                            "daemonUrl", "token"]
    assert params["frames"]["OfxParamPropDefault"] == [0]  # 0: from the host's time information
    assert params["daemonUrl"]["OfxParamPropDefault"] == ["http://127.0.0.1:8642"]
    for name in ("seed", "frames", "steps", "candidates"):  # Resolve needs both ranges on integers
        assert {"OfxParamPropMin", "OfxParamPropMax", "OfxParamPropDisplayMin", "OfxParamPropDisplayMax"} <= set(params[name])


# -- rendering against the daemon ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def float_run(built, images, daemon, tmp_path_factory) -> tuple[Run, list[dict]]:
    before = daemon.client.jobs()
    renders = [f"render {t} {v} out{t}.raw" for t, v in ((0, 0), (1, 0.25), (2, 0.5), (3, 1))]
    run = run_host(built, images, tmp_path_factory.mktemp("float"),
                   daemon_settings(daemon) + FAST + ["set seed 3", "set prompt a disk", *renders,
                                                     "render 2 0.5 again.raw", "destroy"])
    return run, new_jobs(daemon, before)


def test_renders_between_the_ends_show_the_daemons_frames(float_run, daemon):
    run, jobs = float_run
    for name, index in (("out1.raw", 1), ("out2.raw", 2), ("again.raw", 2)):
        expected = daemon_frame(daemon, jobs[0]["id"], index)
        assert expected.dtype == np.uint16  # float keyframes travel as 16-bit PNGs
        np.testing.assert_array_equal(run.output(name), expected.astype(np.float32) / np.float32(65535))


def test_renders_at_0_and_1_show_the_inputs(float_run, images):
    run, _ = float_run
    np.testing.assert_array_equal(run.output("out0.raw"), images["a.float"])
    np.testing.assert_array_equal(run.output("out3.raw"), images["b.float"])


def test_a_transition_is_sent_to_the_daemon_once_and_later_renders_hit_the_cache(float_run):
    run, jobs = float_run
    assert len(jobs) == 1 and jobs[0]["state"] == "done"
    assert [e["status"] for e in run.of("render")] == [STAT_OK] * 5
    assert len([e for e in run.of("progress") if e["call"] == "start"]) == 1


def test_frames_default_to_the_transitions_length_plus_one_and_settings_reach_the_job(float_run):
    _, jobs = float_run
    settings = jobs[0]["settings"]
    assert jobs[0]["frame_count"] == 5  # a 4-frame transition
    assert (settings["seed"], settings["steps"], settings["candidates"], settings["prompt"]) == (3, 4, 1, "a disk")
    assert settings["pose"] == "none"


def test_the_first_render_shows_progress_through_the_hosts_progress_suite(float_run):
    run, _ = float_run
    calls = run.of("progress")
    values = [e["value"] for e in calls if e["call"] == "update"]
    assert calls[0]["call"] == "start" and calls[-1]["call"] == "end"
    assert values == sorted(values) and 0.0 <= values[0] and values[-1] <= 1.0 and values[-1] > 0.9


def test_renders_release_every_image_and_break_no_api_rule(float_run):
    run, _ = float_run
    assert all(e["live_images"] == 0 for e in run.of("render"))
    assert run.of("unloaded")[0] == {"event": "unloaded", "live_images": 0, "problems": []}


def test_8bit_images_show_the_daemons_8bit_frames(built, images, daemon, tmp_path):
    before = daemon.client.jobs()
    run = run_host(built, images, tmp_path, daemon_settings(daemon) + FAST + ["set frames 3", "render 1 0.5 mid.raw"],
                   depth="byte")
    (job,) = new_jobs(daemon, before)
    assert job["frame_count"] == 3
    np.testing.assert_array_equal(run.output("mid.raw"), daemon_frame(daemon, job["id"], 1))


def test_the_general_context_morphs_by_its_own_transition_parameter(built, images, daemon, tmp_path):
    before = daemon.client.jobs()
    run = run_host(built, images, tmp_path, daemon_settings(daemon) + FAST + ["set frames 3", "render 7 0.5 mid.raw"],
                   context="general")
    (job,) = new_jobs(daemon, before)
    expected = daemon_frame(daemon, job["id"], 1).astype(np.float32) / np.float32(65535)
    np.testing.assert_array_equal(run.output("mid.raw"), expected)


# -- previews, failures and abort ----------------------------------------------------------------------------

def test_a_thumbnail_render_starts_no_job(built, images, daemon, tmp_path):
    before = daemon.client.jobs()
    run = run_host(built, images, tmp_path, daemon_settings(daemon) + FAST + ["thumbnail 1", "render 2 0.5 thumb.raw"])
    assert new_jobs(daemon, before) == [] and run.of("progress") == []
    np.testing.assert_allclose(run.output("thumb.raw"), dissolve(images, "float", 0.5), atol=1e-6)


def test_a_scaled_down_preview_starts_no_job(built, images, daemon, tmp_path):
    before = daemon.client.jobs()
    run = run_host(built, images, tmp_path, daemon_settings(daemon) + FAST + ["render_scale 0.25", "render 2 0.5 p.raw"])
    assert new_jobs(daemon, before) == [] and run.of("render")[0]["status"] == STAT_OK


def test_daemon_down_gives_a_cross_dissolve_and_a_message(built, images, tmp_path):
    run = run_host(built, images, tmp_path, [f"set daemonUrl http://127.0.0.1:{closed_port()}", "render 1 0.25 out.raw"],
                   depth="byte")
    assert run.of("render")[0]["status"] == STAT_OK
    np.testing.assert_allclose(run.output("out.raw").astype(int), dissolve(images, "byte", 0.25), atol=1)  # rounding
    (message,) = run.of("message")
    assert message["kind"] == "persistent" and message["type"] == "OfxMessageWarning"
    assert "cannot reach the latentween daemon" in message["text"] and "cross-dissolve" in message["text"]


def test_a_host_without_persistent_messages_is_told_once(built, images, tmp_path):
    run = run_host(built, images, tmp_path, [f"set daemonUrl http://127.0.0.1:{closed_port()}",
                                             "render 1 0.25 a.raw", "render 2 0.5 b.raw"], first=["persistent 0"])
    (message,) = run.of("message")
    assert message["kind"] == "transient" and "cannot reach the latentween daemon" in message["text"]


def test_a_wrong_token_gives_a_cross_dissolve_and_the_daemons_refusal(built, images, daemon, tmp_path):
    run = run_host(built, images, tmp_path, [f"set daemonUrl {daemon.url}", "set token wrong-token-0000000000",
                                             "render 2 0.5 out.raw"])
    np.testing.assert_allclose(run.output("out.raw"), dissolve(images, "float", 0.5), atol=1e-6)
    assert "HTTP 401" in run.of("message")[0]["text"]


@pytest.fixture(scope="module")
def aborted_run(built, images, daemon, tmp_path_factory) -> tuple[Run, list[dict]]:
    before = daemon.client.jobs()
    run = run_host(built, images, tmp_path_factory.mktemp("abort"),
                   daemon_settings(daemon) + LONG + ["abort_after_ms 1000", "render 2 0.5 a.raw", "render 2 0.5 b.raw",
                                                     "destroy"])
    return run, new_jobs(daemon, before)


def test_an_aborted_render_stops_at_the_hosts_abort_and_fails(aborted_run):
    run, _ = aborted_run
    first = run.of("render")[0]
    assert first["status"] == STAT_FAILED and first["ms"] < 1000 + 1500
    assert [e["call"] for e in run.of("progress")][-1] == "end"


def test_a_render_after_an_abort_waits_on_the_same_job(aborted_run):
    run, jobs = aborted_run
    assert [e["status"] for e in run.of("render")] == [STAT_FAILED, STAT_FAILED] and len(jobs) == 1


def test_destroying_the_instance_cancels_its_unfinished_job(aborted_run, daemon):
    _, (job,) = aborted_run
    job = daemon.client.job(job["id"])
    assert job["state"] == "cancelled" or (job["state"] == "running" and job["cancel_requested"])
