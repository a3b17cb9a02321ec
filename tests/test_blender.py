"""The Blender extension in real Blender: the `bpy` wheels (5.0.1, and 4.4 for the renamed VSE API) in
their own virtual environments run tests/blender/driver.py headless, which installs the built zip with
Blender's extension operator and drives the add-on against a real daemon with the tiny model.

Timers never fire in the bpy module, so the modal path is driven by sending the operator the TIMER
and ESC events itself; background mode (`bpy.app.background`) waits inside the operator."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from latentween.client import Client
from latentween.server.process import DaemonProcess

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "tests" / "blender" / "driver.py"
VENVS = {"5.0": ROOT / ".venv-blender", "4.4": ROOT / ".venv-blender-4.4"}
MOVIE_FRAMES = 30
LEVEL = 8  # movie frame i is flat grey i * LEVEL, so a frame's value names its index


def _timeline():
    """plugin/timeline.py imports no bpy, so its arithmetic is tested here without Blender."""
    name = "latentween_plugin_timeline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "plugin" / "timeline.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


# -- fixtures -------------------------------------------------------------------------------------

def blender_python(version: str) -> Path:
    """The bpy venv, made by the Makefile's rule when missing (`make test` makes it first)."""
    venv = VENVS[version]
    if not (venv / ".installed").exists():
        subprocess.run(["make", "-s", f"{venv.name}/.installed"], cwd=ROOT, check=True)
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([blender_python("5.0"), ROOT / "scripts" / "build_plugin.py", "--out", out],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    state, root = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("blender-root")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", state, "--allow-root", root], env=env) as process:
        process.root = root
        Client(process.url, timeout=60).health()
        yield process


@pytest.fixture(scope="module")
def movie(daemon) -> Path:
    import av

    path = daemon.root / "grey.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24, options={"crf": "0"})
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv444p"
        for i in range(MOVIE_FRAMES):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), i * LEVEL, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


@pytest.fixture(scope="module")
def run(extension_zip, daemon, movie):
    """run(scenario, version="5.0", url=None, **flags) -> the driver's JSON, in a fresh Blender."""
    counter = iter(range(10**6))

    def go(scenario: str, version: str = "5.0", url: str = None, env: dict = None, **flags) -> dict:
        work = daemon.root / f"{scenario}-{version}-{next(counter)}"
        (work / "samples").mkdir(parents=True)
        for name in ("toy_a.png", "toy_b.png"):  # under the daemon's --allow-root, for path mode
            (work / "samples" / name).write_bytes((ROOT / "samples" / name).read_bytes())
        command = [blender_python(version), DRIVER, scenario, "--zip", extension_zip, "--url", url or daemon.url,
                   "--work", work, "--result", work / "result.json", "--samples", work / "samples", "--movie", movie]
        for key, value in flags.items():
            command += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
        environment = dict(os.environ, BLENDER_USER_RESOURCES=str(work / "user"), TMPDIR=str(work), OMP_NUM_THREADS="1",
                           **(env or {}))
        done = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=400, env=environment)
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads((work / "result.json").read_text())
        assert "exception" not in result, result.get("exception")
        result["work"] = work
        return result

    return go


@pytest.fixture(scope="module")
def client(daemon) -> Client:
    return Client(daemon.url, timeout=30)


def job_of(strip: dict) -> str:
    return strip["folder"].rsplit("-", 1)[1]


def grey(path: Path) -> int:
    return int(cv2.imread(str(path))[32, 32, 1])


def files_match_the_daemons_frames(strip: dict, client: Client) -> bool:
    job = job_of(strip)
    indices = [int(re.search(r"(\d+)\.png$", f)[1]) for f in strip["files"]]
    return all((Path(strip["folder"]) / f).read_bytes() == client.frame(job, i) for f, i in zip(strip["files"], indices))


def final_state(client: Client, job: str) -> str:
    deadline = time.monotonic() + 60
    while (state := client.job(job)["state"]) not in ("done", "failed", "cancelled") and time.monotonic() < deadline:
        time.sleep(0.1)
    return state


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the package ----------------------------------------------------------------------------------

def test_the_zip_carries_the_manifest_and_the_engines_client_unchanged(extension_zip):
    with zipfile.ZipFile(extension_zip) as package:
        manifest = tomllib.loads(package.read("blender_manifest.toml").decode())
        client = package.read("client.py")
    assert extension_zip.name == f"latentween-{manifest['version']}.zip"
    assert manifest["schema_version"] == "1.0.0" and manifest["blender_version_min"] == "4.2.0"
    assert manifest["tags"] == ["Sequencer"] and set(manifest["permissions"]) == {"network", "files"}
    assert client == (ROOT / "engine" / "latentween" / "client.py").read_bytes()
    assert not (ROOT / "plugin" / "client.py").exists()


def test_the_extension_imports_only_the_standard_library_and_bpy(extension_zip):
    allowed = set(sys.stdlib_module_names) | {"bpy", "__future__"}
    with zipfile.ZipFile(extension_zip) as package:
        for name in (n for n in package.namelist() if n.endswith(".py")):
            for node in ast.walk(ast.parse(package.read(name))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    modules = [node.module]
                else:
                    continue
                assert {m.split(".")[0] for m in modules} <= allowed, f"{name} imports {modules}"


# -- installing -----------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VENVS)
def test_blenders_extension_operator_installs_and_enables_it(run, version):
    result = run("install", version)
    assert result["blender"].startswith(version)
    assert result["enabled"] and result["operator"] and result["panel"]
    assert result["default_url"] == "http://127.0.0.1:8642"
    assert result["client"] == (ROOT / "engine" / "latentween" / "client.py").read_text()


# -- the two modes --------------------------------------------------------------------------------

@pytest.mark.parametrize("version", VENVS)
def test_filling_a_gap_adds_exactly_the_gap_on_the_strips_channel(run, client, version):
    result = run("gap", version)  # A shows 1-10, B 16-25: a gap of 5 frames, 11-15
    assert result["outcome"] == ["FINISHED"] and len(result["strips"]) == 1
    strip = result["strips"][0]
    assert (strip["channel"], strip["start"], strip["length"]) == (1, 11, 5)
    assert strip["files"] == [f"frame_{i:05d}.png" for i in range(1, 6)]
    assert Path(strip["folder"]).parent == result["work"] / "latentween"
    assert strip["directory"].startswith("//latentween/")
    assert files_match_the_daemons_frames(strip, client)


def test_a_transition_is_centred_on_the_cut_on_the_first_free_channel_above(run, client):
    result = run("cut")  # cut at 13; channel 2 is busy over it
    strip = result["strips"][0]
    assert (strip["channel"], strip["start"], strip["length"]) == (3, 10, 6)
    assert strip["files"] == [f"frame_{i:05d}.png" for i in range(6)]
    assert files_match_the_daemons_frames(strip, client)


def test_reroll_sends_the_same_settings_with_a_new_seed(run, client):
    result = run("reroll")
    assert [o["outcome"] for o in result["outcomes"]] == [["FINISHED"], ["FINISHED"]]
    first, second = (client.job(job_of(s))["settings"] for s in result["strips"])
    assert result["seeds"][0] != result["seeds"][1] == second["seed"]
    assert {k: v for k, v in first.items() if k != "seed"} == {k: v for k, v in second.items() if k != "seed"}
    assert [s["channel"] for s in result["strips"]] == [1, 2]  # the first result fills the gap on 1


# -- keyframes from movies ------------------------------------------------------------------------

def test_a_movie_frame_is_named_path_at_frame_for_a_local_daemon(run, client, movie):
    result = run("movie", send_paths=True)  # the strip shows movie frame 27 where the transition starts
    strip = result["strips"][0]
    inputs = client.job(job_of(strip))["inputs"]
    assert [i["source"] for i in inputs] == [f"{movie}@27", str(result["work"] / "samples" / "toy_b.png")]
    assert abs(grey(Path(strip["folder"]) / "frame_00000.png") - 27 * LEVEL) <= 2


@pytest.mark.parametrize("version", VENVS)
def test_a_movie_frame_is_rendered_by_blender_for_upload(run, client, version):
    result = run("movie", version)
    strip = result["strips"][0]
    assert (strip["channel"], strip["start"], strip["length"]) == (2, 38, 6)
    assert client.job(job_of(strip))["inputs"][0]["source"].endswith("-27.png")
    assert abs(grey(Path(strip["folder"]) / "frame_00000.png") - 27 * LEVEL) <= 2


# -- the modal operator ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def ticks(run):
    return run("ticks", steps=60)


def test_timer_ticks_put_coarse_frames_on_the_timeline_before_the_job_is_done(ticks):
    early = [s for s in ticks["seen"] if s["state"] == "running" and s["fetched"]]
    assert early and all(s["strip"] for s in early)
    assert not any(s["strip"] for s in ticks["seen"] if not s["fetched"])


def test_timer_ticks_end_with_the_daemons_own_frames_in_every_file(ticks, client):
    assert ticks["outcome"] == ["FINISHED"]
    assert ticks["reports"] == [["INFO", "Latentween: 7 frames on channel 1"]]
    strip = ticks["strips"][0]
    assert (strip["start"], strip["length"]) == (11, 7) and files_match_the_daemons_frames(strip, client)


@pytest.fixture(scope="module")
def escape(run):
    return run("escape")


def test_escape_cancels_the_daemon_job(escape, client):
    assert escape["before"] == "running" and escape["outcome"] == ["CANCELLED"]
    assert escape["reports"] == [["WARNING", "Latentween: cancelled"]]
    assert final_state(client, escape["job"]) == "cancelled"


def test_escape_takes_back_the_strip_and_its_files(escape):
    assert escape["strips"] == [] and not escape["folder_exists"]


def test_the_panel_shows_progress_and_a_cancel_button_while_a_job_runs(escape):
    def cancel_buttons(log):
        return [c for c in log if c[0] == "operator" and c[1] == ["sequencer.latentween_cancel"]]

    assert any(c[0] == "progress" for c in escape["panel"]) and cancel_buttons(escape["panel"])
    assert ["set", "job", escape["job"]] in escape["panel"]
    assert not cancel_buttons(escape["after_panel"])


def test_the_panels_cancel_button_stops_the_job_and_the_modal_operator(run, client):
    result = run("cancel_button")
    assert result["pressed"] == ["FINISHED"] and result["outcome"] == ["CANCELLED"]
    assert final_state(client, result["job"]) == "cancelled" and result["strips"] == []


# -- the panel and the daemon ---------------------------------------------------------------------

def test_the_panel_lays_out_the_daemon_status_the_settings_and_the_buttons(run, daemon):
    result = run("panel")
    props = lambda log: [c[1][0] for c in log if c[0] == "prop"]  # noqa: E731
    labels = lambda log: [c[2].get("text") for c in log if c[0] == "label"]  # noqa: E731
    assert "Daemon: not checked yet" in labels(result["before"])
    assert "Daemon: cpu float32, queue 0" in labels(result["after"]) and result["checked"] == ["FINISHED"]
    assert "frames" not in props(result["before"]) and "frames" in props(result["after"])
    assert {"prompt", "negative", "mode", "candidates", "seed", "pose", "invert_steps", "min_noise", "max_noise",
            "ease"} <= set(props(result["before"]))
    morph = [c for c in result["before"] if c[0] == "operator" and c[1] == ["sequencer.latentween_morph"]]
    assert [c[2]["text"] for c in morph] == ["Morph", "Re-roll"] and ["set", "reroll", True] in result["before"]


def test_a_daemon_that_is_down_is_one_line_and_adds_nothing(run):
    url = f"http://127.0.0.1:{free_port()}"
    result = run("down", url=url)
    assert result["outcome"] == ["CANCELLED"] and result["strips"] == [] and not result["output_exists"]
    assert result["error"].strip() == f"Error: cannot reach the latentween daemon at {url}: Connection refused"


def test_a_local_daemon_is_started_when_none_answers(run, tiny_model):
    port = free_port()
    result = run("spawn", url=f"http://127.0.0.1:{port}", serve_command=Path(sys.executable).parent / "latentween",
                 serve_model=tiny_model, env={"XDG_DATA_HOME": str(tiny_model.parent / "spawned-data")})
    try:
        assert result["outcome"] == ["FINISHED"] and result["strips"][0]["length"] == 5
        assert Client(f"http://127.0.0.1:{port}").health()["loaded"] == [str(tiny_model)]
    finally:
        if result.get("pid"):
            os.kill(result["pid"], signal.SIGTERM)


# -- timeline arithmetic (plain Python, no Blender) -----------------------------------------------

def test_a_gap_is_filled_with_exactly_its_frames_between_the_two_keyframes():
    t = _timeline()
    a, b = t.Span("A", 2, 1, 11), t.Span("B", 1, 16, 26)
    p = t.fill_gap(b, a, [a, b, t.Span("C", 1, 12, 13)])
    assert (p.first_at, p.last_at, p.frames, list(p.keep), p.start) == (10, 16, 7, [1, 2, 3, 4, 5], 11)
    assert p.channel == 2  # channel 1 has C inside the gap


def test_a_transition_needs_the_strips_to_meet_and_show_enough_frames():
    t = _timeline()
    a, b = t.Span("A", 1, 1, 13), t.Span("B", 1, 13, 25)
    p = t.transition(a, b, 7, [a, b])
    assert (p.start, p.first_at, p.last_at, p.length, p.channel) == (10, 10, 16, 7, 2)
    for args, words in (((a, t.Span("B", 1, 15, 25), 6), "2 frames apart"),
                        ((a, b, 30), "'A' shows 12 frames before the cut"),
                        ((a, t.Span("B", 1, 13, 14), 6), "'B' shows 1 frames after the cut")):
        with pytest.raises(t.MorphError, match=words):
            t.transition(*args, [])


def test_a_gap_between_touching_strips_is_refused_in_one_line():
    t = _timeline()
    with pytest.raises(t.MorphError, match="leave no gap to fill; use Transition"):
        t.fill_gap(t.Span("A", 1, 1, 13), t.Span("B", 1, 13, 25), [])


def test_a_movie_frame_counts_from_the_uncut_start_plus_the_split_offset():
    assert _timeline().movie_frame(at=38, frame_start=21, animation_offset_start=10) == 27


def test_unfinished_frames_show_the_nearest_finished_one():
    assert _timeline().stand_ins(range(1, 8), [4]) == {i: 4 for i in (1, 2, 3, 5, 6, 7)}
    assert _timeline().stand_ins(range(1, 8), [2, 4, 6]) == {1: 2, 3: 2, 5: 4, 7: 6}
    assert _timeline().stand_ins(range(1, 8), []) == {}
