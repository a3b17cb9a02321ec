"""Helpers for the OpenFX tests: the plug-in and the test host in tests/ofx_host built with CMake, a run
of the host on a script, the keyframes, and a fake daemon on 127.0.0.1 that misbehaves on purpose."""
from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import disk_image

ROOT = Path(__file__).resolve().parents[1]
STAT_OK, STAT_FAILED = 0, 1
SIZE = 64


def cmake_build(source: Path, build: Path, *options: str) -> None:
    for command in (["cmake", "-S", source, "-B", build, "-DCMAKE_BUILD_TYPE=Release", *options],
                    ["cmake", "--build", build, "-j", str(os.cpu_count() or 2)]):
        done = subprocess.run([str(c) for c in command], capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(map(str, command))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


def build_once(tmp_path_factory, name: str = "ofx-build", *options: str) -> dict:
    """The plug-in and the test host, built once per session whichever module asks first.
    $LATENTWEEN_OFX_TEST_BUILD names a folder already holding both (plugin/, host/, done), e.g. an
    older plug-in, to check that a test fails without a fix."""
    given = os.environ.get("LATENTWEEN_OFX_TEST_BUILD") if name == "ofx-build" else None
    build = Path(given) if given else tmp_path_factory.getbasetemp() / name
    done = build / "done"
    if not done.exists():
        cmake_build(ROOT / "ofx_bridge", build / "plugin", *options)
        cmake_build(ROOT / "tests" / "ofx_host", build / "host", *options)
        done.touch()
    return {"bundle": build / "plugin" / "Latentween.ofx.bundle",
            "binary": build / "plugin" / "Latentween.ofx.bundle" / "Contents" / "Linux-x86-64" / "Latentween.ofx",
            "host": build / "host" / "ofx_test_host"}


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    return build_once(tmp_path_factory)


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict:
    """The two keyframes as RGBA, in both depths, and as the raw files the test host reads."""
    folder = tmp_path_factory.getbasetemp() / "ofx-images"
    folder.mkdir(exist_ok=True)
    opaque = np.full((SIZE, SIZE, 1), 255, np.uint8)
    byte = {"a": np.concatenate([disk_image((20, 30), (200, 30, 30)), opaque], axis=2),
            "b": np.concatenate([disk_image((44, 34), (30, 30, 200)), opaque], axis=2)}
    out = {}
    for name, pixels in byte.items():
        out[f"{name}.byte"], out[f"{name}.float"] = pixels, pixels.astype(np.float32) / np.float32(255)
        for depth in ("byte", "float"):
            out[f"{name}.{depth}"].tofile(folder / f"{name}.{depth}")
            out[f"{name}.{depth}.file"] = folder / f"{name}.{depth}"
    return out


class Run:
    """One test-host process: its events and its output images."""

    def __init__(self, events: list[dict], folder: Path, depth: str, stderr: str = ""):
        self.events, self.folder, self.depth, self.stderr = events, folder, depth, stderr

    def of(self, kind: str) -> list[dict]:
        return [e for e in self.events if e["event"] == kind]

    def output(self, name: str) -> np.ndarray:
        dtype = np.float32 if self.depth == "float" else np.uint8
        return np.fromfile(self.folder / name, dtype).reshape(SIZE, SIZE, 4)


def run_host(built, images, folder: Path, commands: list[str], context="transition", depth="float",
             duration=4, create=True, first=(), env=None, timeout=300, prefix=()) -> Run:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [*first, f"load {built['binary']}", "describe", f"describe_in_context {context}"]
    if create:
        lines += [f"create {context} {depth} {SIZE} {SIZE} {duration}",
                  f"source SourceFrom {images[f'a.{depth}.file']}", f"source SourceTo {images[f'b.{depth}.file']}"]
    script = folder / "script.txt"
    script.write_text("\n".join(lines + commands + ["unload"]) + "\n")
    done = subprocess.run([*prefix, str(built["host"]), str(script)], capture_output=True, text=True, cwd=folder,
                          timeout=timeout, env=None if env is None else dict(os.environ, **env))
    assert done.returncode == 0, f"the test host failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return Run([json.loads(line) for line in done.stdout.splitlines()], folder, depth, done.stderr)


def dissolve(images, depth: str, amount: float) -> np.ndarray:
    a, b = images[f"a.{depth}"].astype(np.float32), images[f"b.{depth}"].astype(np.float32)
    if depth == "float":
        return (np.float32(1 - amount) * a + np.float32(amount) * b).astype(np.float32)
    return np.round(((1 - amount) * a / 255 + amount * b / 255) * 255).astype(int)


FAKE_COLOR = (10, 200, 60, 255)  # every frame the fake daemon makes


class FakeDaemon:
    """The daemon's HTTP API on 127.0.0.1, misbehaving as asked. `hang`: kinds of request ("submit",
    "poll") it accepts and never answers; `frame_count`: the count it claims, whatever was asked;
    `job_answer`: "huge-length" (a Content-Length of 1 TB) or "chunked-2mb" for job polls;
    `submit_delay`: seconds before answering a submit; `submit_status`: e.g. 422 to refuse.
    `counts` counts the requests of each kind."""

    def __init__(self, hang=(), frame_count=None, job_answer=None, submit_delay=0.0, submit_status=201):
        self.hang, self.frame_count, self.job_answer = set(hang), frame_count, job_answer
        self.submit_delay, self.submit_status = submit_delay, submit_status
        self.counts: Counter = Counter()
        self.asked: dict[str, int] = {}
        self.release = threading.Event()
        self.lock = threading.Lock()
        ok, png = cv2.imencode(".png", np.full((SIZE, SIZE, 4), FAKE_COLOR, np.uint8)[..., [2, 1, 0, 3]])
        self.png = png.tobytes()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "FakeDaemon":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked answers need it

            def log_message(self, *args) -> None:
                pass

            def send(self, status: int, body: bytes, kind="application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def hang_if(self, kind: str) -> bool:
                if kind in fake.hang:
                    fake.release.wait(120)
                    self.close_connection = True
                    return True
                return False

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path.endswith("/cancel"):
                    fake.count("cancel")
                    return self.send(200, b"{}")
                fake.count("submit")
                if self.hang_if("submit"):
                    return
                fake.release.wait(fake.submit_delay)
                if fake.submit_status >= 400:
                    return self.send(fake.submit_status, b'{"detail": "refused on purpose"}')
                job = f"job{fake.counts['submit']}"
                fake.asked[job] = int(re.search(rb'"frames":(\d+)', body).group(1))
                self.send(201, json.dumps({"id": job, "state": "queued"}).encode())

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")  # v1 jobs ID [frames N]
                job = parts[2]
                if len(parts) == 5:
                    fake.count("frame")
                    return self.send(200, fake.png, "image/png")
                fake.count("poll")
                if self.hang_if("poll"):
                    return
                count = fake.asked.get(job, 5) if fake.frame_count is None else fake.frame_count
                answer = {"id": job, "state": "done", "frame_count": count, "progress": {"done": 1, "total": 1}}
                if fake.job_answer == "huge-length":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(1 << 40))
                    self.end_headers()
                    self.wfile.write(b" " * 1024)
                    self.wfile.flush()
                    fake.release.wait(120)
                    self.close_connection = True
                    return
                if fake.job_answer == "chunked-2mb":
                    answer["padding"] = "x" * (2 << 20)
                    body = json.dumps(answer).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, len(body), 65536):
                        chunk = body[start:start + 65536]
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    self.wfile.write(b"0\r\n\r\n")
                    return
                self.send(200, json.dumps(answer).encode())

        return Handler
