"""Security defaults of a real daemon: token, Host and Origin checks, path containment, limits, and
malformed input. Every refusal is a 4xx with a one-line detail, and the daemon stays healthy."""
import os
import struct
import subprocess
import sys
import zlib

import httpx
import pytest

from latentween.server.process import DaemonProcess

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD_LIMIT = 300_000
FAST = '{"frames": 3, "steps": 4, "candidates": 1}'


@pytest.fixture(scope="module")
def daemon(tiny_model, keyframe_files, tmp_path_factory):
    state, root = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("root")
    for source, name in zip(keyframe_files, ("in_a.png", "in_b.png")):
        (root / name).write_bytes(source.read_bytes())
    # the token comes from the environment, as users are told to pass it (not on the command line)
    env = dict(os.environ, LATENTWEEN_TOKEN=TOKEN, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    args = ["--model", tiny_model, "--state-dir", state, "--allow-root", root, "--max-upload-bytes", UPLOAD_LIMIT,
            "--max-json-bytes", 4096, "--max-pixels", 1_000_000, "--max-frames", 20, "--max-queue", 2]
    with DaemonProcess(args, env=env) as process:
        process.root = root
        yield process


@pytest.fixture
def http(daemon):
    with httpx.Client(base_url=daemon.url, headers=AUTH, timeout=60) as client:
        yield client


@pytest.fixture
def refused(http):
    """Check a refusal: its status, that `detail` is one line with the words, and that the daemon still answers."""
    def check(response, status, words=""):
        detail = response.json()["detail"]
        assert response.status_code == status, detail
        assert isinstance(detail, str) and "\n" not in detail and words in detail
        assert http.get("/v1/health").status_code == 200
    return check


def upload(http, a, b, settings=FAST, **kwargs):
    files = [("keyframes", ("a.png", a, "image/png")), ("keyframes", ("b.png", b, "image/png"))]
    return http.post("/v1/jobs", files=files, data={"settings": settings}, **kwargs)


def png_header(width, height):
    """A small PNG whose header claims a huge image (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def pngs(keyframe_files):
    return [p.read_bytes() for p in keyframe_files]


# -- who may talk to the daemon ----------------------------------------------------------------

def test_a_request_without_the_token_is_refused(daemon, refused):
    response = httpx.get(f"{daemon.url}/v1/health")
    assert response.headers["www-authenticate"] == "Bearer"
    refused(response, 401, "token")


def test_a_wrong_token_is_refused(daemon, refused):
    refused(httpx.get(f"{daemon.url}/v1/jobs", headers={"Authorization": "Bearer " + "x" * len(TOKEN)}), 401, "token")


def test_the_right_token_is_accepted(http):
    assert http.get("/v1/health").json()["status"] == "ok"


def test_a_foreign_host_header_is_refused(http, refused):
    # what a web page gets after rebinding its own DNS name to 127.0.0.1
    refused(http.get("/v1/jobs", headers={"Host": "attacker.example:8642"}), 403, "Host")


def test_a_cross_origin_post_is_refused(http, pngs, refused):
    refused(upload(http, *pngs, headers={"Origin": "https://attacker.example"}), 403, "cross-origin")


def test_a_cross_site_fetch_without_origin_is_refused(http, refused):
    refused(http.get("/v1/jobs", headers={"Sec-Fetch-Site": "cross-site"}), 403, "cross-site")


def test_no_cors_headers_are_sent_unless_configured(http):
    preflight = http.options("/v1/jobs", headers={"Origin": "https://attacker.example",
                                                   "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 403 and "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("extra_env, args, words", [
    ({}, ["--host", "0.0.0.0"], "without a token"),
    ({"LATENTWEEN_TOKEN": "short"}, ["--host", "127.0.0.1"], "at least 16 characters"),
])
def test_an_unsafe_start_is_refused_with_one_line(tmp_path, extra_env, args, words):
    env = {k: v for k, v in os.environ.items() if k != "LATENTWEEN_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "latentween", "serve", "--port", "0", "--state-dir", str(tmp_path), *args],
                          env={**env, **extra_env}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith("error: ") and words in proc.stderr


# -- paths on the server -----------------------------------------------------------------------

def test_a_keyframe_path_inside_the_allowed_root_is_accepted(daemon, http):
    inside = [daemon.root / "in_a.png", daemon.root / "in_b.png"]
    response = http.post("/v1/jobs", json={"keyframes": list(map(str, inside)),
                                           "settings": {"frames": 3, "steps": 4, "candidates": 1}})
    assert response.status_code == 201, response.text
    http.post(f"/v1/jobs/{response.json()['id']}/cancel")


@pytest.mark.parametrize("make_path, status", [
    (lambda root: "/etc/passwd", 403),
    (lambda root: f"{root}/../outside.png", 403),
    (lambda root: f"{root}/link-out.png", 403),
    (lambda root: f"{root}/../outside.mp4@3", 403),
    (lambda root: "in_a.png", 422),
    (lambda root: f"{root}/missing.png", 404),
])
def test_paths_cannot_escape_the_allowed_roots(daemon, http, keyframe_files, refused, make_path, status):
    outside = daemon.root.parent / "outside.png"
    outside.write_bytes(keyframe_files[0].read_bytes())
    link = daemon.root / "link-out.png"
    if not link.is_symlink():
        link.symlink_to(outside)
    response = http.post("/v1/jobs", json={"keyframes": [make_path(daemon.root), str(daemon.root / "in_b.png")]})
    refused(response, status)


@pytest.mark.parametrize("settings", ['{"model": "/usr/lib"}', '{"pose": "/etc/a.json,/etc/b.json"}',
                                      '{"controlnet": "../../cn.safetensors"}', '{"lora": ["/etc/lora.safetensors:0.5"]}',
                                      '{"lora": ["owner/style", "/root/x.safetensors"]}', '{"preview_vae": "/usr/taesd"}'])
def test_files_named_in_settings_outside_the_allowed_roots_are_refused(http, pngs, refused, settings):
    refused(upload(http, *pngs, settings=settings), 403, "outside")


# -- limits and malformed input ----------------------------------------------------------------

def test_an_upload_over_the_file_limit_is_413(http, pngs, refused):
    refused(upload(http, pngs[0], b"\x89PNG" + os.urandom(UPLOAD_LIMIT)), 413, f"{UPLOAD_LIMIT:,}-byte limit")


def test_a_body_over_the_request_limit_is_413(http, refused):
    big = b"x" * (3 * UPLOAD_LIMIT)
    refused(http.post("/v1/jobs", content=big, headers={"Content-Type": "application/json"}), 413, "limit")


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(http, refused):
    def chunks():
        for _ in range(40):
            yield b"y" * 20_000
    refused(http.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"}), 413, "limit")


@pytest.mark.parametrize("size", [(5_000, 5_000), (40_000, 40_000)])
def test_a_decompression_bomb_is_refused_before_decoding(http, pngs, refused, size):
    refused(upload(http, pngs[0], png_header(*size)), 413, "pixel")


@pytest.mark.parametrize("make_bad, words", [
    (lambda png: b"", "empty"),
    (lambda png: b"hello, not an image", "not a readable image"),
    (lambda png: png[:-40], "truncated"),
])
def test_a_broken_keyframe_is_422(http, pngs, refused, make_bad, words):
    refused(upload(http, pngs[0], make_bad(pngs[1])), 422, words)


@pytest.mark.parametrize("settings, status, words", [
    ('{"frames": 1}', 422, "settings.frames"),
    ('{"frames": 50}', 422, "at most 20"),
    ('{"no_such_option": 3}', 422, "no_such_option"),
    ("{not json", 422, "settings"),
])
def test_bad_settings_are_refused(http, pngs, refused, settings, status, words):
    refused(upload(http, *pngs, settings=settings), status, words)


@pytest.mark.parametrize("body, content_type, status", [
    (b"--nope\r\ngarbage", "multipart/form-data; boundary=xyz", 400),
    (b"garbage", "multipart/form-data", 400),
    (b"{not json", "application/json", 422),
    (b'{"keyframes": ["/a.png"]}', "application/json", 422),
    (b"a=1", "text/plain", 415),
])
def test_malformed_requests_are_refused(http, refused, body, content_type, status):
    response = http.post("/v1/jobs", content=body, headers={"Content-Type": content_type})
    refused(response, status, "multipart" if status == 400 else "")


def test_one_keyframe_only_is_refused(http, pngs, refused):
    response = http.post("/v1/jobs", files=[("keyframes", ("a.png", pngs[0], "image/png"))])
    refused(response, 422, "exactly 2")


def test_a_json_body_over_its_limit_is_413(http, refused):
    refused(http.post("/v1/jobs/x/choose", json={"frame": 1, "candidate": 0, "pad": "z" * 10_000}), 413, "limit")


def test_a_full_queue_refuses_more_jobs_with_429(http, pngs, refused):
    slow = '{"frames": 17, "steps": 400, "candidates": 1}'
    ids = [upload(http, *pngs, settings=slow).json()["id"]]
    while http.get(f"/v1/jobs/{ids[0]}").json()["state"] == "queued":
        pass
    ids += [upload(http, *pngs, settings=slow).json()["id"] for _ in range(2)]  # one runs, two wait (--max-queue 2)
    try:
        refused(upload(http, *pngs), 429, "queue is full")
    finally:
        for job_id in ids:
            http.post(f"/v1/jobs/{job_id}/cancel")


def test_an_origin_allowed_with_cors_origin_gets_its_preflight_and_its_answers(tmp_path):
    from fastapi.testclient import TestClient

    from latentween.server import ServerConfig, create_app

    app = create_app(ServerConfig(state_dir=tmp_path, cors_origins=["http://localhost:3000"]))
    client = TestClient(app, base_url="http://127.0.0.1:8642")  # no lifespan: the guard needs no engine
    preflight = client.options("/v1/jobs", headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "http://localhost:3000"
    allowed = client.get("/v1/openapi.json", headers={"Origin": "http://localhost:3000"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert client.get("/v1/openapi.json", headers={"Origin": "https://attacker.example"}).status_code == 403
