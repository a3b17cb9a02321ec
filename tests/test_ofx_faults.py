"""The OpenFX bridge against a daemon that misbehaves (tests/ofx_support.py's FakeDaemon on 127.0.0.1):
one that hangs, lies about frame_count, answers too much, answers slowly while several renders race,
or refuses; and hosts that are strict about frames or leave the Transition parameter to the plug-in.
The plug-in must stay abortable, ask a silent daemon once, submit one job per transition, and keep
every answer within bounds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ofx_support import (FAKE_COLOR, STAT_FAILED, STAT_OK, FakeDaemon, build_once, built, dissolve,  # noqa: F401
                         images, run_host)

# A hung daemon used to cost 15 s a render, 75 s for these five; the fix gives up after ~5 s once.
HOST_TIMEOUT = 60


def fake_settings(fake: FakeDaemon) -> list[str]:
    return [f"set daemonUrl {fake.url}", "set steps 4"]


def messages(run) -> list[str]:
    return [m["text"] for m in run.of("message") if "text" in m]


@pytest.mark.parametrize("hang", ["submit", "poll"])
def test_a_hung_daemon_is_asked_once_and_renders_go_on_with_a_dissolve(built, images, tmp_path, hang):
    with FakeDaemon(hang=[hang]) as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + [f"render {t} 0.5 out{t}.raw" for t in range(5)],
                       timeout=HOST_TIMEOUT)
    renders = run.of("render")
    assert [r["status"] for r in renders] == [STAT_OK] * 5
    assert fake.counts[hang] == 1  # the other four renders did not ask the silent daemon again
    assert sum(r["ms"] for r in renders) < 15000
    np.testing.assert_allclose(run.output("out4.raw"), dissolve(images, "float", 0.5), atol=1e-6)
    assert any("cannot reach the latentween daemon" in m for m in messages(run))


@pytest.mark.parametrize("hang", ["submit", "poll"])
def test_the_hosts_abort_is_honoured_while_a_request_waits(built, images, tmp_path, hang):
    with FakeDaemon(hang=[hang]) as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["abort_after_ms 1000", "render 2 0.5 out.raw"],
                       timeout=HOST_TIMEOUT)
    (render,) = run.of("render")
    assert fake.counts[hang] == 1  # the abort came while that request waited
    # libcurl asks about once a second while it waits; before, only the request's time-out ended it
    assert render["status"] == STAT_FAILED and render["ms"] < 1000 + 2500


def test_concurrent_renders_of_one_transition_submit_one_job_and_download_it_once(built, images, tmp_path):
    with FakeDaemon(submit_delay=0.5) as fake:  # a slow answer: every render asks before the first is back
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["concurrent 3 2 0.5 out"],
                       timeout=HOST_TIMEOUT)
    assert [r["status"] for r in run.of("render")] == [STAT_OK] * 3
    assert fake.counts["submit"] == 1 and fake.counts["frame"] == 3  # 5 frames: the three between the keyframes
    for k in range(3):
        np.testing.assert_allclose(run.output(f"out{k}.raw")[0, 0], np.float32(FAKE_COLOR) / 255, atol=1e-6)


@pytest.mark.parametrize("claimed", [1000, 1e300, 3])
def test_the_daemons_frame_count_is_checked_against_the_request(built, images, tmp_path, claimed):
    with FakeDaemon(frame_count=claimed) as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["render 2 0.5 out.raw", "render 1 0.25 b.raw"],
                       timeout=HOST_TIMEOUT)
    assert [r["status"] for r in run.of("render")] == [STAT_OK, STAT_OK]
    assert fake.counts["frame"] == 0 and fake.counts["submit"] == 1  # the lie is remembered for the key
    np.testing.assert_allclose(run.output("out.raw"), dissolve(images, "float", 0.5), atol=1e-6)
    assert any(f"made {claimed:.6g} frames where 5 were asked" in m for m in messages(run))


@pytest.mark.parametrize("answer", ["huge-length", "chunked-2mb"])
def test_an_answer_over_the_size_cap_is_refused_at_once(built, images, tmp_path, answer):
    with FakeDaemon(job_answer=answer) as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["render 2 0.5 out.raw"], timeout=HOST_TIMEOUT)
    (render,) = run.of("render")
    assert render["status"] == STAT_OK and render["ms"] < 4000 and fake.counts["frame"] == 0
    assert any("is larger than 1 MB" in m for m in messages(run))


def test_a_host_that_leaves_transition_to_the_plugin_still_morphs(built, images, tmp_path):
    with FakeDaemon() as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["render 2 0.5 out.raw"],
                       first=["host_transition 0"], timeout=HOST_TIMEOUT)
    assert run.of("error") == []  # the host found the parameter to set
    frame = run.output("out.raw")
    np.testing.assert_array_equal(frame[0, 0], np.float32(FAKE_COLOR) / np.float32(255))


def test_a_host_that_fetches_only_the_frames_needed_gets_one_job_per_transition(built, images, tmp_path):
    with FakeDaemon() as fake:
        run = run_host(built, images, tmp_path, fake_settings(fake) + ["render 1 0.25 a.raw", "render 2 0.5 b.raw"],
                       first=["strict_frames 1", "moving 1"], timeout=HOST_TIMEOUT)
    needed = run.of("frames_needed")
    assert [n["status"] for n in needed] == [STAT_OK, STAT_OK]
    assert needed[0]["ranges"]["OfxImageClipPropFrameRange_SourceFrom"] == [1.0, 1.0, 0.0, 0.0]
    assert needed[0]["ranges"]["OfxImageClipPropFrameRange_SourceTo"] == [1.0, 1.0, 3.0, 3.0]
    # the keyframes at the transition's ends were fetched: both renders share their job
    assert fake.counts["submit"] == 1 and [r["status"] for r in run.of("render")] == [STAT_OK, STAT_OK]


def test_a_remembered_failure_expires_and_the_key_is_tried_again(built, images, tmp_path):
    with FakeDaemon(submit_status=422) as fake:
        run = run_host(built, images, tmp_path,
                       fake_settings(fake) + ["render 2 0.5 a.raw", "render 2 0.5 b.raw", "sleep 1300",
                                              "render 2 0.5 c.raw"],
                       env={"LATENTWEEN_OFX_RETRY_S": "1"}, timeout=HOST_TIMEOUT)
    assert [r["status"] for r in run.of("render")] == [STAT_OK] * 3
    assert fake.counts["submit"] == 2  # not at once, but once the memory of the refusal expired
    assert any("HTTP 422" in m for m in messages(run))


@pytest.fixture(scope="module")
def tsan_built(tmp_path_factory) -> dict:
    """The plug-in and the host under ThreadSanitizer: a data race is a report, not a rare crash."""
    return build_once(tmp_path_factory, "ofx-tsan", "-DCMAKE_BUILD_TYPE=Sanitize",  # no flags of a build type
                      "-DCMAKE_CXX_FLAGS=-fsanitize=thread -O1", "-DLATENTWEEN_STATIC_RUNTIME=OFF")


def test_purging_caches_while_renders_run_races_on_nothing(tsan_built, images, tmp_path):
    # gcc 12's ThreadSanitizer cannot map its shadow memory under the widest address randomisation
    bits = Path("/proc/sys/vm/mmap_rnd_bits")
    prefix = ["setarch", "x86_64", "-R"] if bits.exists() and int(bits.read_text()) > 28 else []
    with FakeDaemon() as fake:
        run = run_host(tsan_built, images, tmp_path,
                       fake_settings(fake) + ["purge_while_rendering 20 2 0.5 out.raw", "concurrent 3 1 0.25 c"],
                       env={"TSAN_OPTIONS": "exitcode=0 report_signal_unsafe=0"}, timeout=120, prefix=prefix)
    assert run.of("purged")[0]["count"] > 0
    assert [r["status"] for r in run.of("render")] == [STAT_OK] * 23
    assert "ThreadSanitizer" not in run.stderr, run.stderr[:4000]
