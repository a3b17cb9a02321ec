"""The stdlib-only client and `latentween submit`: light to import, clear when the daemon is away,
and the same files as `latentween morph` when it is there."""
import json
import os
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import daemon_threads
from latentween.cli import main
from latentween.client import Client, RequestFailed, Unreachable
from latentween.server.process import DaemonProcess

JOB = ["--frames", "5", "--steps", "4", "--candidates", "1", "--seed", "9"]


@pytest.fixture(scope="module")
def daemon(tiny_model, tmp_path_factory):
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    with DaemonProcess(["--model", tiny_model, "--state-dir", tmp_path_factory.mktemp("state")], env=env) as process:
        yield process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def submit(*args):
    return subprocess.run([sys.executable, "-m", "latentween", "submit", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "LATENTWEEN_TOKEN"})


def test_the_client_imports_only_the_standard_library():
    code = ("import sys; before = set(sys.modules); import latentween.client; "
            "new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new - set(sys.stdlib_module_names) - {'latentween'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_an_absent_daemon_is_one_clear_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unreachable) as error:
        Client(url, timeout=2).health()
    assert str(error.value).startswith(f"cannot reach the latentween daemon at {url}: ") and "\n" not in str(error.value)


def test_a_refusal_carries_the_status_and_the_daemons_detail(daemon):
    with pytest.raises(RequestFailed) as error:
        Client(daemon.url).job("nosuchjob")
    assert error.value.status == 404 and "no job 'nosuchjob'" in error.value.detail


def test_the_client_sends_its_token_and_uploads_as_multipart(tmp_path, keyframe_files):
    seen = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            seen["auth"] = self.headers["Authorization"]
            seen["type"] = self.headers["Content-Type"]
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps({"id": "x"}).encode()
            self.send_response(201)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        Client(f"http://127.0.0.1:{server.server_port}", token="s3cret").submit(keyframe_files, {"frames": 3})
    finally:
        server.server_close()
    assert seen["auth"] == "Bearer s3cret" and seen["type"].startswith("multipart/form-data; boundary=")
    assert seen["body"].count(b'name="keyframes"') == 2 and b'{"frames": 3}' in seen["body"]
    assert keyframe_files[0].read_bytes() in seen["body"]


def local_morph(tiny_model, keyframe_files, out):
    with daemon_threads():
        return main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(tiny_model), *JOB, "--quiet"])


def test_submit_writes_the_same_files_as_morph(daemon, tiny_model, keyframe_files, tmp_path):
    remote, local = tmp_path / "remote", tmp_path / "local"
    proc = submit(*keyframe_files, "--server", daemon.url, *JOB, "--out", remote, "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"wrote 5 frames to {remote} (seed 9)"
    assert local_morph(tiny_model, keyframe_files, local) == 0
    names = sorted(p.name for p in local.iterdir() if p.is_file())
    assert sorted(p.name for p in remote.iterdir() if p.is_file()) == names
    for name in names:
        if name.endswith(".png"):
            assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    manifests = [json.loads((d / "manifest.json").read_text()) for d in (remote, local)]
    assert manifests[0]["job_key"] == manifests[1]["job_key"] and manifests[0]["settings"] == manifests[1]["settings"]
    assert manifests[0]["reproducibility"] == manifests[1]["reproducibility"]


def test_morph_with_server_runs_on_the_daemon_and_writes_the_same_frames(daemon, tiny_model, keyframe_files, tmp_path):
    remote, local = tmp_path / "remote", tmp_path / "local"
    assert main(["morph", *map(str, keyframe_files), "--server", daemon.url, *JOB, "--out", str(remote), "--quiet"]) == 0
    assert local_morph(tiny_model, keyframe_files, local) == 0
    for name in sorted(p.name for p in local.glob("frame_*.png")):
        assert (remote / name).read_bytes() == (local / name).read_bytes(), name
    assert Client(daemon.url).jobs(), "the job ran on the daemon"


def test_submit_without_wait_prints_the_job_id_and_returns(daemon, keyframe_files):
    proc = submit(*keyframe_files, "--server", daemon.url, *JOB)
    assert proc.returncode == 0, proc.stderr
    assert Client(daemon.url).job(proc.stdout.strip())["frame_count"] == 5


def test_submit_exits_2_with_one_line_when_the_daemon_is_down(keyframe_files, tmp_path):
    proc = submit(*keyframe_files, "--server", f"http://127.0.0.1:{free_port()}", *JOB, "--out", tmp_path / "o")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: cannot reach the latentween daemon at")


def test_submit_checks_the_options_as_morph_does_before_sending(keyframe_files, capsys):
    assert main(["submit", *map(str, keyframe_files), "--server", f"http://127.0.0.1:{free_port()}", "--frames", "1"]) == 2
    assert "--frames" in capsys.readouterr().err
