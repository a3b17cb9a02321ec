"""The Blender extension in real Blender: the `bpy` wheels (5.0.1, 4.4 for the renamed VSE API, and
4.2 LTS, the oldest the manifest allows) in their own virtual environments run tests/blender/driver.py
headless, which installs the built zip with Blender's extension operator and drives the add-on against
a real daemon with the tiny model.

Timers never fire in the bpy module, so the modal path is driven by sending the operator the TIMER
and key events itself; background mode (`bpy.app.background`) waits inside the operator."""
from __future__ import annotations

import ast
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
VENVS = {"5.0": ROOT / ".venv-blender", "4.4": ROOT / ".venv-blender-4.4", "4.2": ROOT / ".venv-blender-4.2"}
# 4.2.0 cannot import on Debian 12 (libtbb.so.2); 4.2.23 installs and imports as it is.
BPY_SPECS = {"5.0": "bpy==5.0.1", "4.4": "bpy==4.4.0", "4.2": "bpy==4.2.23"}
MOVIE_FRAMES = 30
LEVEL = 8  # movie frame i is flat grey i * LEVEL, so a frame's value names its index


# -- fixtures -------------------------------------------------------------------------------------

def blender_python(version: str) -> Path:
    """The bpy venv, made by the Makefile's rule when missing (`make test` makes it first), or as that
    rule would where the Makefile has none for this version."""
    venv = VENVS[version]
    if not (venv / ".installed").exists():
        made = subprocess.run(["make", "-s", f"{venv.name}/.installed"], cwd=ROOT)
        if made.returncode != 0:
            python = os.environ.get("PYTHON311", "python3.11")
            subprocess.run([python, "-m", "venv", venv], check=True)
            subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", BPY_SPECS[version]], check=True)
            (venv / ".installed").touch()
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory) -> Path:
    """Built as `make plugin` builds it: plain Python, no bpy."""
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run([sys.executable, ROOT / "scripts" / "build_plugin.py", "--out", out],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    state, root = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("blender-root")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", state, "--allow-root", root], env=env) as process:
        process.root = root
        client, deadline = Client(process.url, timeout=60), time.monotonic() + 120
        while client.health()["device"] == "starting" and time.monotonic() < deadline:
            time.sleep(0.1)  # the worker is up: the panel's first check shows its device, whichever test runs first
        yield process


@pytest.fixture(scope="module")
def movie(daemon) -> Path:
    return grey_movie(daemon.root / "grey.mp4", 24)


@pytest.fixture(scope="module")
def movie_12fps(daemon) -> Path:
    """Half the scene's 24 fps: added by hand, each of its frames shows for two timeline frames."""
    return grey_movie(daemon.root / "grey-12fps.mp4", 12)


def grey_movie(path: Path, rate: int) -> Path:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate, options={"crf": "0"})
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


class _AnyPath:
    def __eq__(self, other) -> bool:
        return isinstance(other, Path)


ANY_PATH = _AnyPath()


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

def test_the_zip_carries_the_manifest_the_license_and_the_engines_client_unchanged(extension_zip):
    with zipfile.ZipFile(extension_zip) as package:
        manifest = tomllib.loads(package.read("blender_manifest.toml").decode())
        client = package.read("client.py")
        license_text = package.read("LICENSE")
    assert license_text == (ROOT / "LICENSE").read_bytes() and b"MIT License" in license_text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]["text"]
    assert manifest["license"] == [f"SPDX:{project}"]
    assert extension_zip.name == f"latentween-{manifest['version']}.zip"
    assert manifest["schema_version"] == "1.0.0" and manifest["blender_version_min"] == "4.2.0"
    assert manifest["tags"] == ["Sequencer"] and set(manifest["permissions"]) == {"network", "files"}
    assert client == (ROOT / "engine" / "latentween" / "client.py").read_bytes()
    assert not (ROOT / "plugin" / "client.py").exists()


def test_blenders_own_extension_tool_accepts_the_zip(extension_zip):
    done = subprocess.run([blender_python("5.0"), ROOT / "scripts" / "build_plugin.py", "--out",
                           extension_zip.parent / "validated", "--validate"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rebuilt = Path(done.stdout.strip().splitlines()[-1])
    assert rebuilt.read_bytes() == extension_zip.read_bytes()  # the same sources, the same zip


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
    # the job and its settings, seed included, stay with the strip to make it again
    job = client.job(job_of(strip))
    assert strip["recorded"]["latentween_job"] == job["id"]
    assert json.loads(strip["recorded"]["latentween_settings"]) == job["settings"]


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


def test_a_movie_playing_at_its_own_rate_is_named_by_the_frame_blender_shows(run, client, movie_12fps):
    result = run("movie_rate", send_paths=True, rate_movie=movie_12fps)  # at 29: (29 - 21) / 2 + 5, not 13
    strip = result["strips"][0]
    assert result["offset"] == 5 and abs(grey(Path(result["shown"])) - 9 * LEVEL) <= 2
    assert client.job(job_of(strip))["inputs"][0]["source"] == f"{movie_12fps}@9"
    assert abs(grey(Path(strip["folder"]) / "frame_00000.png") - 9 * LEVEL) <= 2


@pytest.mark.parametrize("version", VENVS)
def test_a_movie_playing_at_its_own_rate_is_rendered_at_the_frame_blender_shows_for_upload(run, client, movie_12fps,
                                                                                           version):
    result = run("movie_rate", version, rate_movie=movie_12fps)
    strip = result["strips"][0]
    assert (strip["channel"], strip["start"], strip["length"]) == (2, 29, 4)
    assert abs(grey(Path(result["shown"])) - 9 * LEVEL) <= 2  # Blender's own render of the scene at 29
    assert client.job(job_of(strip))["inputs"][0]["source"].endswith("-9.png")
    assert abs(grey(Path(strip["folder"]) / "frame_00000.png") - 9 * LEVEL) <= 2


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


def test_escape_passes_through_and_the_job_goes_on(escape):
    assert escape["before"] == "running" and escape["outcome"] == ["PASS_THROUGH"]
    assert escape["after_escape"] == "running"


def test_the_panels_cancel_button_cancels_its_own_morph_and_takes_back_its_files(escape, client):
    assert escape["pressed"] == ["FINISHED"] and escape["ended"] == ["CANCELLED"]
    assert final_state(client, escape["job"]) == "cancelled"
    assert escape["strips"] == [] and not escape["folder_exists"]


def test_the_panel_shows_progress_and_a_cancel_button_while_a_job_runs(escape):
    def cancel_buttons(log):
        return [c for c in log if c[0] == "operator" and c[1] == ["sequencer.latentween_cancel"]]

    assert any(c[0] == "progress" for c in escape["panel"]) and cancel_buttons(escape["panel"])
    assert ["set", "task", escape["key"]] in escape["panel"]
    assert not cancel_buttons(escape["after_panel"])


def test_a_cancel_that_names_no_morph_cancels_none(run, client):
    result = run("cancel_nothing")
    assert result["nothing"] == ["FINISHED"] and result["running"] == [result["job"]]
    assert result["everything"] == ["FINISHED"] and result["active"] == 0
    assert final_state(client, result["job"]) == "cancelled"


def test_a_morph_that_cannot_finish_cancels_its_daemon_job(run, client):
    result = run("abandon")
    assert result["outcome"] == ["CANCELLED"] and result["reports"] == [["ERROR", "the output folder went away"]]
    assert final_state(client, result["job"]) == "cancelled"


def test_opening_another_file_ends_the_running_morph_and_leaves_that_file_alone(run, client):
    result = run("load")
    assert result["active_after_load"] == 0 and "latentween A-B" in result["strips"]
    assert final_state(client, result["job"]) == "cancelled"


def test_the_panels_cancel_button_stops_the_job_and_the_modal_operator(run, client):
    result = run("cancel_button")
    assert result["pressed"] == ["FINISHED"] and result["outcome"] == ["CANCELLED"]
    assert final_state(client, result["job"]) == "cancelled" and result["strips"] == []


# -- the panel and the daemon ---------------------------------------------------------------------

def test_the_panel_lays_out_the_daemon_status_the_settings_and_the_buttons(run, daemon):
    result = run("panel")
    props = lambda log: [c[1][0] for c in log if c[0] == "prop"]  # noqa: E731
    labels = lambda log: [c[2].get("text") for c in log if c[0] == "label"]  # noqa: E731
    assert "Daemon: checking" in labels(result["before"])
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


def test_choosing_by_hand_shows_each_frames_candidates_and_keeps_the_one_pressed(run, client):
    result = run("choose")
    assert result["outcome"] == ["FINISHED"] and len(result["strips"]) == 1
    job = client.job(result["job"])
    assert job["settings"]["choose"] == "manual" and job["state"] == "done"
    assert len(result["kept"]) == 2  # a 2-frame gap: two new frames, one choice each
    for panel in result["panels"]:
        keep = [c for c in panel if c[0] == "operator" and c[1] == ["sequencer.latentween_choose"]]
        assert [c[2]["text"] for c in keep] == ["Keep 1", "Keep 2"]
        assert len([c for c in panel if c[0] == "template_icon"]) == 2
    # the kept candidate is the frame on the timeline
    strip = result["strips"][0]
    for frame, _pick, png in result["kept"]:
        assert (Path(strip["folder"]) / f"frame_{frame:05d}.png").read_bytes() == bytes.fromhex(png)
    assert result["background"]["outcome"] == ["CANCELLED"] and "needs Blender's interface" in result["background"]["error"]


def test_a_url_without_a_scheme_is_http_and_a_bad_one_is_one_line(run, daemon):
    result = run("url")
    assert result["plain"]["outcome"] == ["FINISHED"] and len(result["strips"]) == 1
    assert result["bad"]["outcome"] == ["CANCELLED"]
    assert result["bad"]["error"].strip() == ("Error: the daemon URL 'http://127.0.0.1:notaport' is not an address like "
                                              "http://127.0.0.1:8642; fix it in the add-on's preferences")


def test_without_online_access_a_daemon_elsewhere_is_not_asked(run):
    result = run("online")
    assert result["online"] is False and result["asked"] == [] and result["outcome"] == ["CANCELLED"]
    assert "online access is off" in result["error"] and "\n" not in result["error"].strip()


def test_a_workspace_without_a_sequencer_scene_morphs_nothing_outside_background_mode(run):
    assert run("scene") == {"background": True, "interface": None, "work": ANY_PATH}


def test_the_result_is_fitted_and_placed_as_its_neighbours(run):
    result = run("fit")
    assert result["outcome"] == ["FINISHED"] and result["made"] == [2.5, 2.5, 40.0, 0.25, 3]


def test_strips_inside_a_closed_meta_strip_are_not_the_selection(run):
    result = run("meta")
    assert result["inside"] and result["outcome"] == ["FINISHED"] and len(result["strips"]) == 1


def test_the_panel_checks_the_daemon_from_a_timer_when_it_first_draws(run, daemon):
    result = run("health")
    assert result["pending"] and result["asked_in_draw"] == [] and result["up"]
    labels = [c[2].get("text") for c in result["after"] if c[0] == "label"]
    assert "Daemon: cpu float32, queue 0" in labels


def test_a_local_daemon_that_is_down_can_be_started_and_stopped_from_the_panel(run, tiny_model):
    port = free_port()
    result = run("start_stop", url=f"http://127.0.0.1:{port}", serve_command=Path(sys.executable).parent / "latentween",
                 serve_model=tiny_model, env={"XDG_DATA_HOME": str(tiny_model.parent / "spawned-data")})
    try:
        operators = lambda log: [c[1][0] for c in log if c[0] == "operator"]  # noqa: E731
        assert "sequencer.latentween_daemon_start" in operators(result["down"])
        assert result["started"] == ["FINISHED"] and "sequencer.latentween_daemon_stop" in operators(result["running"])
        assert result["stopped"] == ["FINISHED"] and result["exit"] is not None and not result["up_after_stop"]
    finally:
        try:
            os.kill(result["pid"], signal.SIGKILL)
        except (ProcessLookupError, TypeError):
            pass


# -- re-roll of a frame or a range (issue 20) ------------------------------------------------------

@pytest.fixture(scope="module", params=list(VENVS))
def rerolled(run, request):
    return run("reroll_frames", request.param)


def test_rerolling_the_frame_under_the_playhead_replaces_its_file_alone(rerolled, client):
    assert rerolled["made"]["outcome"] == ["FINISHED"] and rerolled["frame"]["outcome"] == ["FINISHED"]
    before, after = rerolled["before"], rerolled["after_frame"]
    assert [name for name in before if before[name] != after[name]] == ["frame_00002.png"]
    first, second = (client.job(j) for j in rerolled["jobs"])
    assert second["settings"]["takes"] == {"2": 1} and second["settings"]["seed"] == first["settings"]["seed"]


def test_a_reroll_replaces_the_previous_take_in_the_same_strip_and_records_the_takes(rerolled, client):
    assert len(rerolled["strips"]) == 1  # no new strip, no new channel
    strip = rerolled["strips"][0]
    assert (strip["channel"], strip["start"], strip["length"]) == (1, 11, 3)
    job = client.job(strip["recorded"]["latentween_job"])
    assert json.loads(strip["recorded"]["latentween_takes"]) == {"1": 1, "2": 2, "3": 1} == job["settings"]["takes"]
    assert json.loads(strip["recorded"]["latentween_settings"]) == job["settings"]
    folder = Path(strip["folder"])
    assert all((folder / f"frame_{i:05d}.png").read_bytes() == client.frame(job["id"], i) for i in (1, 2, 3))


def test_a_range_rerolled_from_the_modal_timer_remakes_each_generated_frame_in_it(rerolled):
    assert rerolled["ranged"] == {"outcome": ["FINISHED"], "reports": [["INFO", "Latentween: re-rolled 3 frames"]]}
    after_frame, after_range = rerolled["after_frame"], rerolled["after_range"]
    assert all(after_frame[name] != after_range[name] for name in after_frame)


def test_the_panel_offers_rerolling_the_active_strip_and_refuses_without_one(rerolled):
    assert rerolled["untouched"]["outcome"] == ["CANCELLED"] and "active strip" in rerolled["untouched"]["error"]
    buttons = [c for c in rerolled["panel"] if c[0] == "operator" and c[1] == ["sequencer.latentween_reroll"]]
    assert [c[2]["text"] for c in buttons] == ["Re-roll Frame", "Re-roll Range"]
    assert ["set", "use_range", True] in rerolled["panel"]
