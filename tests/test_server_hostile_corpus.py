"""The hostile corpus (issue 21): scripted requests by category against a real daemon, each checked
for its status, a JSON body whose `detail` is one short line, no traceback in the daemon's log, and
a daemon still healthy after it. Then the bounds the issue asked for, timed: a long path, and bodies
over the JSON limit with and without Content-Length. Traffic goes to 127.0.0.1 only."""
import json
import os
import socket
import struct
import time
import zlib

import httpx
import pytest

from conftest import unloadable_model
from latentween.server.process import DaemonProcess

TOKEN = "corpus-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD_LIMIT = 300_000
JSON_LIMIT = 2**20  # the default: the issue's 320 KB long-path body fits under it
BODY_TIMEOUT = 2


@pytest.fixture(scope="module")
def daemon(keyframe_files, tmp_path_factory):
    state, root = tmp_path_factory.mktemp("state"), tmp_path_factory.mktemp("root")
    for source, name in zip(keyframe_files, ("in_a.png", "in_b.png")):
        (root / name).write_bytes(source.read_bytes())
    (root.parent / "outside.png").write_bytes(keyframe_files[0].read_bytes())
    (root / "link-out.png").symlink_to(root.parent / "outside.png")
    env = dict(os.environ, LATENTWEEN_TOKEN=TOKEN, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    model = unloadable_model(tmp_path_factory.mktemp("unloadable"))  # accepted jobs fail at once, no model runs
    args = ["--model", model, "--no-preload", "--state-dir", state, "--allow-root", root, "--max-upload-bytes",
            UPLOAD_LIMIT, "--max-pixels", 1_000_000, "--max-frames", 20, "--max-queue", 2, "--body-timeout", BODY_TIMEOUT]
    with DaemonProcess(args, env=env) as process:
        process.root, process.state = root, state
        process.port = int(process.url.rsplit(":", 1)[1])
        with httpx.Client(base_url=process.url, headers=AUTH, timeout=30) as http:
            files = [("keyframes", (n, (root / n).read_bytes(), "image/png")) for n in ("in_a.png", "in_b.png")]
            # a job cancelled at once, in a final state at no cost. The worker may take it first and fail it
            # (its model cannot load) before the cancel lands: then another, until one ends cancelled.
            for _ in range(20):
                job = http.post("/v1/jobs", files=files).json()
                http.post(f"/v1/jobs/{job['id']}/cancel")
                while (state := http.get(f"/v1/jobs/{job['id']}").json()["state"]) not in ("cancelled", "failed"):
                    time.sleep(0.05)
                if state == "cancelled":
                    break
            assert state == "cancelled"
        process.ended = job["id"]
        yield process


@pytest.fixture(scope="module")
def http(daemon):
    with httpx.Client(base_url=daemon.url, headers=AUTH, timeout=30) as client:
        yield client


class Raw:
    """A response read off a socket, for requests httpx will not send."""

    def __init__(self, data: bytes):
        head, _, self.content = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_code = int(lines[0].split(" ")[1])
        self.headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        self.content = self.content[:int(self.headers.get("content-length", len(self.content)))]  # the first answer

    def json(self):
        return json.loads(self.content)


def raw(daemon, data: bytes, pause: float = 0.0, rest: bytes = b"") -> Raw:
    with socket.create_connection(("127.0.0.1", daemon.port), timeout=BODY_TIMEOUT + 10) as sock:
        sock.sendall(data)
        if pause:
            time.sleep(pause)
        try:
            sock.sendall(rest)
        except OSError:
            pass  # answered and closed before the rest
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    return Raw(b"".join(chunks))


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def request(line: str, *headers: str, body: bytes = b"", host: str = "127.0.0.1") -> bytes:
    lines = [line, f"Host: {host}", f"Authorization: Bearer {TOKEN}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# -- what clients may send: small builders -----------------------------------------------------

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(width, height):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def exr(width, height):
    window = struct.pack("<4i", 0, 0, width - 1, height - 1)
    return b"\x76\x2f\x31\x01\x02\0\0\0" + b"dataWindow\0box2i\0" + struct.pack("<i", 16) + window + b"\0" + b"\0" * 64


IMAGES = {
    "png-5000": (png(5_000, 5_000), 413, "pixel"),
    "png-14000": (png(14_000, 14_000), 413, "pixel"),
    "png-65535": (png(65_535, 65_535), 413, "pixel"),
    "hdr-32768": (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 32768 +X 32768\n" + b"\2\2\x80\0" * 64, 413, "pixel"),
    "hdr-8200": (b"#?RGBE\n\n+X 8200 -Y 8200\n" + b"\0" * 64, 413, "pixel"),
    "hdr-no-size": (b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n" + b"A" * 5000, 422, "Radiance HDR"),
    "pfm": (b"PF\n30000 30000\n-1\n" + b"\0" * 64, 413, "pixel"),
    "pam": (b"P7\nWIDTH 30000\nHEIGHT 30000\nDEPTH 3\nMAXVAL 255\nENDHDR\n" + b"\0" * 64, 413, "pixel"),
    "exr": (exr(40_000, 40_000), 413, "pixel"),
    "exr-no-window": (b"\x76\x2f\x31\x01\x02\0\0\0" + b"\0" * 64, 422, "OpenEXR"),
    "gif": (b"GIF89a" + struct.pack("<HH", 65_535, 65_535) + bytes.fromhex("80000000000000ffffff2c00000000010001000002024401003b"),
            413, "pixel"),
    "bmp": (b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 30_000, 30_000, 1, 24, 0, 0, 0, 0, 0, 0),
            413, "pixel"),
    "empty": (b"", 422, "empty"),
    "text": (b"hello, not an image", 422, "not a readable image"),
    "jpeg-junk": (b"\xff\xd8\xff" + b"junk" * 20 + b"\xff\xd9", 422, "not a readable image"),
    "riff-avi": (b"RIFF\0\0\0\0AVI LIST" + b"\0" * 64, 422, "unsupported format"),
    "png-zero": (png(0, 10), 422, ""),
}


def form(a: bytes, b: bytes, settings: str = "{}", names=("a.png", "b.png")):
    return {"files": [("keyframes", (names[0], a, "image/png")), ("keyframes", (names[1], b, "image/png"))],
            "data": {"settings": settings}}


def paths(*specs, settings=None):
    return {"json": {"keyframes": list(specs), **({"settings": settings} if settings is not None else {})}}


def in_root(name):
    return lambda d: f"{d.root}/{name}"


A, B = in_root("in_a.png"), in_root("in_b.png")

# (category, name, method, path, what to send (a function of the daemon), status, words in detail)
CASES = [
    # who may talk to the daemon
    ("auth", "no-token", "GET", "/v1/health", lambda d: {"headers": {"Authorization": ""}}, 401, "token"),
    ("auth", "wrong-token", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": "Bearer " + "x" * len(TOKEN)}}, 401, "token"),
    ("auth", "basic-scheme", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": "Basic " + TOKEN}}, 401, "token"),
    ("auth", "token-scheme", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": "Token " + TOKEN}}, 401, "token"),
    ("auth", "bare-bearer", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": "Bearer"}}, 401, "token"),
    ("auth", "longer", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": f"Bearer {TOKEN}x"}}, 401, "token"),
    ("auth", "shorter", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": f"Bearer {TOKEN[:-1]}"}}, 401, "token"),
    ("auth", "latin-1", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": b"Bearer " + "é".encode("latin-1") * 30}}, 401, "token"),
    ("auth", "10k-token", "GET", "/v1/jobs", lambda d: {"headers": {"Authorization": "Bearer " + "x" * 10_000}}, 401, "token"),
    ("auth", "in-query", "GET", f"/v1/jobs?token={TOKEN}", lambda d: {"headers": {"Authorization": ""}}, 401, "token"),
    ("auth", "no-token-submit", "POST", "/v1/jobs", lambda d: {"headers": {"Authorization": ""}, **paths("/a", "/b")}, 401, "token"),
    ("auth", "no-token-delete", "DELETE", "/v1/jobs/abc", lambda d: {"headers": {"Authorization": ""}}, 401, "token"),
    ("auth", "lower-case-scheme", "GET", "/v1/health", lambda d: {"headers": {"Authorization": f"bearer {TOKEN}"}}, 200, ""),
    # the browser's ways in
    ("origin", "foreign-host", "GET", "/v1/jobs", lambda d: {"headers": {"Host": "attacker.example"}}, 403, "Host"),
    ("origin", "foreign-host-port", "GET", "/v1/jobs", lambda d: {"headers": {"Host": "attacker.example:8642"}}, 403, "Host"),
    ("origin", "suffix-host", "GET", "/v1/jobs", lambda d: {"headers": {"Host": "127.0.0.1.attacker.example"}}, 403, "Host"),
    ("origin", "ipv6-host", "GET", "/v1/jobs", lambda d: {"headers": {"Host": "[::2]:8642"}}, 403, "Host"),
    ("origin", "long-host", "GET", "/v1/jobs", lambda d: {"headers": {"Host": "h" * 5000}}, 403, "characters"),
    ("origin", "localhost", "GET", "/v1/health", lambda d: {"headers": {"Host": "localhost"}}, 200, ""),
    ("origin", "foreign-origin", "GET", "/v1/jobs", lambda d: {"headers": {"Origin": "https://attacker.example"}}, 403, "cross-origin"),
    ("origin", "null-origin", "GET", "/v1/jobs", lambda d: {"headers": {"Origin": "null"}}, 403, "cross-origin"),
    ("origin", "own-origin", "GET", "/v1/jobs", lambda d: {"headers": {"Origin": d.url}}, 403, "cross-origin"),
    ("origin", "form-post", "POST", "/v1/jobs", lambda d: {"headers": {"Origin": "https://a.example"}, **paths("/a", "/b")}, 403, "cross-origin"),
    ("origin", "cross-site", "GET", "/v1/jobs", lambda d: {"headers": {"Sec-Fetch-Site": "cross-site"}}, 403, "cross-site"),
    ("origin", "same-site", "GET", "/v1/jobs", lambda d: {"headers": {"Sec-Fetch-Site": "same-site"}}, 403, "cross-site"),
    ("origin", "preflight", "OPTIONS", "/v1/jobs", lambda d: {"headers": {"Origin": "https://a.example",
                                                                          "Access-Control-Request-Method": "POST"}}, 403, "cross-origin"),
    # routes and methods
    ("route", "unknown", "GET", "/nope", lambda d: {}, 404, "Not Found"),
    ("route", "v1", "GET", "/v1", lambda d: {}, 404, "Not Found"),
    ("route", "put-jobs", "PUT", "/v1/jobs", lambda d: {}, 405, "Method Not Allowed"),
    ("route", "delete-jobs", "DELETE", "/v1/jobs", lambda d: {}, 405, "Method Not Allowed"),
    ("route", "patch-job", "PATCH", "/v1/jobs/abc", lambda d: {}, 405, "Method Not Allowed"),
    ("route", "post-health", "POST", "/v1/health", lambda d: {}, 405, "Method Not Allowed"),
    ("route", "unknown-job", "GET", "/v1/jobs/abc", lambda d: {}, 404, "no job"),
    ("route", "traversal-id", "GET", "/v1/jobs/..%2F..%2Fetc%2Fpasswd", lambda d: {}, 404, ""),
    ("route", "long-id", "GET", "/v1/jobs/" + "a" * 5000, lambda d: {}, 404, "no job"),
    ("route", "nul-id", "GET", "/v1/jobs/%00", lambda d: {}, 404, "no job"),
    ("route", "emoji-id", "GET", "/v1/jobs/%F0%9F%92%A5", lambda d: {}, 404, "no job"),
    ("route", "frame-negative", "GET", "/v1/jobs/abc/frames/-1", lambda d: {}, 404, "no job"),
    ("route", "frame-text", "GET", "/v1/jobs/abc/frames/one", lambda d: {}, 422, "index"),
    ("route", "frame-huge", "GET", "/v1/jobs/abc/frames/" + "9" * 30, lambda d: {}, 404, "no job"),
    ("route", "manifest", "GET", "/v1/jobs/abc/manifest", lambda d: {}, 404, "no job"),
    ("route", "video", "GET", "/v1/jobs/abc/video", lambda d: {}, 404, "no job"),
    ("route", "events", "GET", "/v1/jobs/abc/events", lambda d: {}, 404, "no job"),
    ("route", "candidates", "GET", "/v1/jobs/abc/candidates", lambda d: {}, 404, "no job"),
    ("route", "candidate", "GET", "/v1/jobs/abc/candidates/1", lambda d: {}, 404, "no job"),
    ("route", "cancel", "POST", "/v1/jobs/abc/cancel", lambda d: {}, 404, "no job"),
    ("route", "delete", "DELETE", "/v1/jobs/abc", lambda d: {}, 404, "no job"),
    ("route", "choose", "POST", "/v1/jobs/abc/choose", lambda d: {"json": {"frame": 1, "candidate": 0}}, 404, "no job"),
    # query parameters
    ("query", "limit-0", "GET", "/v1/jobs?limit=0", lambda d: {}, 422, "limit"),
    ("query", "limit-huge", "GET", "/v1/jobs?limit=100000", lambda d: {}, 422, "limit"),
    ("query", "limit-text", "GET", "/v1/jobs?limit=abc", lambda d: {}, 422, "limit"),
    ("query", "limit-negative", "GET", "/v1/jobs?limit=-1", lambda d: {}, 422, "limit"),
    ("query", "limit-float", "GET", "/v1/jobs?limit=1.5", lambda d: {}, 422, "limit"),
    ("query", "state-bogus", "GET", "/v1/jobs?state=bogus", lambda d: {}, 422, "state"),
    ("query", "state-long", "GET", "/v1/jobs?state=" + "s" * 5000, lambda d: {}, 422, "state"),
    ("query", "video-format", "GET", "/v1/jobs/abc/video?format=avi", lambda d: {}, 422, "format"),
    ("query", "video-fps-long", "GET", "/v1/jobs/abc/video?fps=" + "2" * 30, lambda d: {}, 422, "fps"),
    # a job that ended: what its state does not allow
    ("state", "cancel-ended", "POST", "/v1/jobs/{ended}/cancel", lambda d: {}, 409, "already cancelled"),
    ("state", "choose-ended", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": 1, "candidate": 0}}, 409, "not waiting"),
    ("state", "candidates-ended", "GET", "/v1/jobs/{ended}/candidates", lambda d: {}, 409, "not waiting"),
    ("state", "candidate-ended", "GET", "/v1/jobs/{ended}/candidates/0", lambda d: {}, 409, "not waiting"),
    ("state", "frame-unfinished", "GET", "/v1/jobs/{ended}/frames/1", lambda d: {}, 404, "not finished"),
    ("state", "frame-out-of-range", "GET", "/v1/jobs/{ended}/frames/17", lambda d: {}, 404, "frames 0..16"),
    ("state", "manifest-none", "GET", "/v1/jobs/{ended}/manifest", lambda d: {}, 404, "manifest"),
    ("state", "video-cancelled", "GET", "/v1/jobs/{ended}/video", lambda d: {}, 409, "cancelled"),
    ("state", "video-fps-bad", "GET", "/v1/jobs/{ended}/video?fps=abc", lambda d: {}, 409, "cancelled"),
    ("choose", "not-json", "POST", "/v1/jobs/{ended}/choose", lambda d: {"content": b"{x", "headers": {"Content-Type": "application/json"}}, 422, "body"),
    ("choose", "negative", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": -1, "candidate": 0}}, 422, "frame"),
    ("choose", "extra", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": 1, "candidate": 0, "x": 1}}, 422, "x"),
    ("choose", "text", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": "a", "candidate": 0}}, 422, "frame"),
    ("choose", "huge", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": 10**30, "candidate": 0}}, 409, "not waiting"),
    ("choose", "over-limit", "POST", "/v1/jobs/{ended}/choose", lambda d: {"json": {"frame": 1, "pad": "z" * (JSON_LIMIT + 10)}}, 413, "limit"),
    # JSON submits: bodies and settings
    ("json", "not-json", "POST", "/v1/jobs", lambda d: {"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ("json", "empty", "POST", "/v1/jobs", lambda d: {"content": b"", "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ("json", "array", "POST", "/v1/jobs", lambda d: {"json": []}, 422, "body"),
    ("json", "null", "POST", "/v1/jobs", lambda d: {"content": b"null", "headers": {"Content-Type": "application/json"}}, 422, "body"),
    ("json", "string", "POST", "/v1/jobs", lambda d: {"json": "x"}, 422, "body"),
    ("json", "no-keyframes", "POST", "/v1/jobs", lambda d: {"json": {}}, 422, "keyframes"),
    ("json", "one-keyframe", "POST", "/v1/jobs", lambda d: paths(A(d)), 422, "keyframes"),
    ("json", "three-keyframes", "POST", "/v1/jobs", lambda d: paths(A(d), A(d), B(d)), 422, "keyframes"),
    ("json", "numbers", "POST", "/v1/jobs", lambda d: {"json": {"keyframes": [1, 2]}}, 422, "keyframes"),
    ("json", "extra-field", "POST", "/v1/jobs", lambda d: {"json": {"keyframes": [A(d), B(d)], "x": 1}}, 422, "x"),
    ("json", "deep-nesting", "POST", "/v1/jobs", lambda d: {"content": b"[" * 100_000, "headers": {"Content-Type": "application/json"}}, 422, ""),
    ("json", "utf-16", "POST", "/v1/jobs", lambda d: {"content": json.dumps({"keyframes": []}).encode("utf-16"),
                                                      "headers": {"Content-Type": "application/json; charset=utf-16"}}, 422, ""),
    ("json", "over-limit", "POST", "/v1/jobs", lambda d: {"content": b"[" + b"1," * (JSON_LIMIT // 2 + 10) + b"1]",
                                                          "headers": {"Content-Type": "application/json"}}, 413, "limit"),
    ("json", "chunked-over-limit", "POST", "/v1/jobs", lambda d: {"content": iter([b" " * 65536] * 20),
                                                                  "headers": {"Content-Type": "application/json"}}, 413, "limit"),
    ("json", "infinity", "POST", "/v1/jobs", lambda d: {"content": b'{"keyframes": ["/a", "/b"], "settings": {"guidance": 1e400}}',
                                                        "headers": {"Content-Type": "application/json"}}, 422, "guidance"),
    ("json", "surrogate", "POST", "/v1/jobs", lambda d: {"content": f'{{"keyframes": ["{d.root}/\\ud800.png", "/b"]}}'.encode(),
                                                         "headers": {"Content-Type": "application/json"}}, 422, "JSON"),
    ("json", "text-plain", "POST", "/v1/jobs", lambda d: {"content": b"a=1", "headers": {"Content-Type": "text/plain"}}, 415, "multipart"),
    ("json", "no-type", "POST", "/v1/jobs", lambda d: {"content": b"a=1"}, 415, "no content type"),
    ("json", "long-type", "POST", "/v1/jobs", lambda d: {"content": b"a", "headers": {"Content-Type": "t/" + "x" * 5000}}, 415, "characters"),
    *[("settings", name, "POST", "/v1/jobs", (lambda s: lambda d: paths(A(d), B(d), settings=s))(settings), status, words)
      for name, settings, status, words in [
          ("not-object", [], 422, "settings"),
          ("frames-1", {"frames": 1}, 422, "frames"),
          ("frames-huge", {"frames": 10**9}, 422, "frames"),
          ("frames-text", {"frames": "many"}, 422, "frames"),
          ("frames-over-daemon", {"frames": 50}, 422, "at most 20"),
          ("steps-negative", {"steps": -1}, 422, "steps"),
          ("guidance-nan", {"guidance": -0.0, "eta": 2}, 422, "eta"),
          ("prompt-long", {"prompt": "p" * 3000}, 422, "prompt"),
          ("seed-huge", {"seed": 2**70}, 422, "seed"),
          ("unknown", {"no_such_option": 3}, 422, "no_such_option"),
          ("fractions", {"fractions": [0, 2]}, 422, "fractions"),
          ("ease", {"ease": "cubic-bezier(junk"}, 422, "ease"),
          ("size-text", {"size": "abc"}, 422, "size"),
          ("size-tiny", {"size": "1x1"}, 422, "size"),
          ("size-long", {"size": "x" * 60_000}, 422, "size"),
          ("size-over-pixels", {"size": "8192x8192"}, 422, "pixel limit"),
          ("size-over-pixels-2", {"size": "1001x1000"}, 422, "pixel limit"),
          ("work-size-over-pixels", {"work_size": 8192}, 422, "work_size"),
          ("model-file-url", {"model": "file:///etc/passwd"}, 422, "URL"),
          ("model-http-url", {"model": "http://attacker.example/m.safetensors"}, 422, "URL"),
          ("model-hf-url", {"model": "hf://org/name"}, 422, "URL"),
          ("model-system-dir", {"model": "/etc"}, 403, "outside"),
          ("model-relative", {"model": "../x.safetensors"}, 403, "outside"),
          ("model-home", {"model": "~root/.cache/m.ckpt"}, 403, "outside"),
          ("model-long-name", {"model": "a" * 300}, 422, "name longer than 255"),
          ("model-long-path", {"model": "/" + "a/" * 160_000}, 422, "longer than 4096"),
          ("model-three-parts", {"model": "org/name/../../x"}, 422, "hub id"),
          ("model-windows", {"model": "C:\\models\\x"}, 422, "hub id"),
          ("model-nul", {"model": "/a\x00b"}, 422, "NUL"),
          ("controlnet-url", {"controlnet": "https://attacker.example/cn"}, 422, "URL"),
          ("pose-outside", {"pose": "/etc/a.json,/etc/b.json"}, 403, "outside"),
          ("pose-model-home", {"pose_model": "~/models"}, 403, "outside"),
          ("points-outside", {"points": "/etc/passwd"}, 403, "outside"),
          ("clip-traversal", {"clip_model": "ViT-L-14:openai/../../x"}, 422, "hub id"),
          ("controlnet-outside", {"controlnet": "/etc/cn.safetensors"}, 403, "outside"),
          ("runtime-setting", {"checkpoint_config": "/etc"}, 422, "checkpoint_config"),
      ]],
    # keyframes named by path
    *[("paths", name, "POST", "/v1/jobs", (lambda p: lambda d: paths(p(d), B(d)))(make), status, words)
      for name, make, status, words in [
          ("etc-passwd", lambda d: "/etc/passwd", 403, "outside"),
          ("proc", lambda d: "/proc/self/environ", 403, "outside"),
          ("dot-dot", lambda d: f"{d.root}/../outside.png", 403, "outside"),
          ("deep-dot-dot", lambda d: f"{d.root}" + "/.." * 40 + "/etc/passwd", 403, "outside"),
          ("symlink-out", lambda d: f"{d.root}/link-out.png", 403, "outside"),
          ("video-escape", lambda d: f"{d.root}/../outside.png@0", 403, "outside"),
          ("relative", lambda d: "in_a.png", 422, "absolute"),
          ("dot-relative", lambda d: "./in_a.png", 422, "absolute"),
          ("url", lambda d: "file:///etc/passwd", 422, "absolute"),
          ("unc", lambda d: "\\\\server\\share\\a.png", 422, "absolute"),
          ("home", lambda d: "~/in_a.png", 403, "outside"),
          ("nul", lambda d: f"{d.root}/a\x00.png", 422, "NUL"),
          ("long-name", lambda d: f"{d.root}/" + "a" * 300, 422, "longer than 255"),
          ("long-utf8-name", lambda d: f"{d.root}/" + "é" * 130, 422, "longer than 255"),
          ("long-path", lambda d: f"{d.root}/" + "a/" * 2100, 422, "longer than 4096"),
          ("issue-long-path", lambda d: "/" + "a/" * 160_000, 422, "longer than 4096"),
          ("name-255", lambda d: f"{d.root}/" + "a" * 255, 404, "does not exist"),
          ("missing", lambda d: f"{d.root}/missing.png", 404, "does not exist"),
          ("folder", lambda d: str(d.root), 404, "does not exist"),
          ("image-at-frame", lambda d: f"{d.root}/in_a.png@abc", 422, ""),
          ("missing-at-frame", lambda d: f"{d.root}/missing.mov@3", 404, "does not exist"),
      ]],
    # uploads
    *[("upload", name, "POST", "/v1/jobs", (lambda b: lambda d: form((d.root / "in_a.png").read_bytes(), b))(data), status, words)
      for name, (data, status, words) in IMAGES.items()],
    ("upload", "over-file-limit", "POST", "/v1/jobs", lambda d: form(b"\x89PNG" + b"\0" * UPLOAD_LIMIT, b"x"), 413, "byte limit"),
    ("upload", "chunked-over-limit", "POST", "/v1/jobs", lambda d: {"content": iter(
        [b'--b\r\nContent-Disposition: form-data; name="keyframes"; filename="a.png"\r\n\r\n'] + [b"x" * 65536] * 40),
        "headers": {"Content-Type": "multipart/form-data; boundary=b"}}, 413, "limit"),
    ("upload", "truncated-png", "POST", "/v1/jobs", lambda d: form((d.root / "in_a.png").read_bytes(), (d.root / "in_b.png").read_bytes()[:-40]), 422, "truncated"),
    ("upload", "bomb-named-traversal", "POST", "/v1/jobs", lambda d: form(png(9000, 9000), png(9000, 9000), names=("../../etc/a.png", "b")), 413, "'a.png'"),
    ("upload", "bomb-long-name", "POST", "/v1/jobs", lambda d: form(png(9000, 9000), png(9000, 9000), names=("n" * 5000, "b")), 400, "multipart"),
    ("upload", "text-part-outside", "POST", "/v1/jobs", lambda d: {"files": [("keyframes", (None, "/etc/passwd")), ("keyframes", (None, "/etc/hosts"))]}, 403, "outside"),
    ("upload", "text-part-long", "POST", "/v1/jobs", lambda d: {"files": [("keyframes", (None, "/" + "a/" * 30_000)), ("keyframes", (None, "/b"))]}, 422, "longer than 4096"),
    ("upload", "text-part-bad-utf8", "POST", "/v1/jobs", lambda d: {"files": [("keyframes", (None, b"/\xed\xa0\x80.png")),
                                                                             ("keyframes", (None, b"/\xff.png"))]}, 403, "outside"),
    ("upload", "settings-url", "POST", "/v1/jobs", lambda d: form(b"x", b"y", settings=json.dumps({"model": "file:///etc/passwd"})), 422, "URL"),
    ("upload", "settings-long-model", "POST", "/v1/jobs", lambda d: form(b"x", b"y", settings=json.dumps({"model": "/" + "a/" * 100_000})), 422, "longer than 4096"),
    ("upload", "settings-bad-json", "POST", "/v1/jobs", lambda d: form(b"x", b"y", settings="{not json"), 422, "settings"),
    ("upload", "settings-huge", "POST", "/v1/jobs", lambda d: form(b"x", b"y", settings=json.dumps({"prompt": "p" * (JSON_LIMIT + 1)})), 400, "multipart"),
    ("upload", "one-part", "POST", "/v1/jobs", lambda d: {"files": [("keyframes", ("a.png", b"x", "image/png"))]}, 422, "exactly 2"),
    ("upload", "three-parts", "POST", "/v1/jobs", lambda d: {"files": [("keyframes", (f"{i}.png", b"x", "image/png")) for i in range(3)]}, 400, "multipart"),
    ("upload", "wrong-part-name", "POST", "/v1/jobs", lambda d: {"files": [("frames", ("a.png", b"x", "image/png"))] * 2}, 422, "exactly 2"),
    ("upload", "no-boundary", "POST", "/v1/jobs", lambda d: {"content": b"garbage", "headers": {"Content-Type": "multipart/form-data"}}, 400, "multipart"),
    ("upload", "garbage", "POST", "/v1/jobs", lambda d: {"content": b"--nope\r\ngarbage", "headers": {"Content-Type": "multipart/form-data; boundary=xyz"}}, 400, "multipart"),
    # accepted, then removed: the hostile parts are only names
    ("accepted", "paths", "POST", "/v1/jobs", lambda d: paths(A(d), B(d), settings={"frames": 3}), 201, ""),
    ("accepted", "odd-file-names", "POST", "/v1/jobs", lambda d: form((d.root / "in_a.png").read_bytes(), (d.root / "in_b.png").read_bytes(),
                                                                     names=("../../../etc/passwd", "\u202eevil.png")), 201, ""),
]

RAW = [
    ("garbage-line", lambda d: b"GARBAGE\r\n\r\n", 400, "malformed"),
    ("header-without-colon", lambda d: request("GET /v1/health HTTP/1.1", "Bad Header"), 400, "malformed"),
    ("header-20k", lambda d: request("GET /v1/health HTTP/1.1", "X-Pad: " + "p" * 20_000), 200, ""),
    ("url-100k", lambda d: request("GET /v1/jobs/" + "a" * 100_000 + " HTTP/1.1"), 404, "characters"),
    ("length-text", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Length: abc"), 400, "malformed"),
    ("length-negative", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Length: -5"), 400, "malformed"),
    ("length-twice", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Length: 5", "Content-Length: 6", body=b"12345"), 400, "malformed"),
    ("length-and-chunked", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Length: 5", "Transfer-Encoding: chunked",
                                             body=b"0\r\n\r\n"), 415, "no content type"),
    ("gzip-encoding", lambda d: request("POST /v1/jobs HTTP/1.1", "Transfer-Encoding: gzip", body=b"x"), 400, "malformed"),
    ("nul-in-header", lambda d: request("GET /v1/health HTTP/1.1", "X-A: a\x00b"), 400, "malformed"),
    ("obs-fold", lambda d: request("GET /v1/health HTTP/1.1", "X-A: a", " folded"), 200, ""),
    ("http2-preface", lambda d: b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 403, "Host"),
    ("bad-method", lambda d: request("G(T /v1/health HTTP/1.1"), 400, "malformed"),
    ("http-1.0-no-host", lambda d: f"GET /v1/health HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode(), 403, "Host"),
    ("absolute-target", lambda d: request("GET http://attacker.example/v1/health HTTP/1.1"), 404, "Not Found"),
    ("huge-length", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Type: application/json", "Content-Length: 10000000000",
                                      "Expect: 100-continue"), 413, "limit"),
    ("huge-upload-length", lambda d: request("POST /v1/jobs HTTP/1.1", "Content-Type: multipart/form-data; boundary=b",
                                             "Content-Length: 10000000000"), 413, "limit"),
]


def check(daemon, response, status, words):
    """The refusal (or answer) the corpus expects, then the daemon's health and log."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    if status != 204:
        assert response.headers.get("content-type", "").startswith("application/json"), response.headers
        body = response.json()
        if status >= 400:
            detail = body["detail"]
            assert isinstance(detail, str) and "\n" not in detail and len(detail) <= 500, detail
            assert words in detail, detail
            assert os.getcwd() not in detail  # relative names are never shown resolved
    with httpx.Client(base_url=daemon.url, headers=AUTH, timeout=30) as http:
        assert http.get("/v1/health").json()["status"] == "ok"
    assert "Traceback" not in "\n".join(daemon.log), "\n".join(daemon.log)


@pytest.mark.parametrize("category, name, method, path, send, status, words", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_corpus(daemon, http, category, name, method, path, send, status, words):
    response = http.request(method, path.format(ended=daemon.ended), **send(daemon))
    check(daemon, response, status, words)
    if status == 201:
        assert http.delete(f"/v1/jobs/{response.json()['id']}").status_code == 204


@pytest.mark.parametrize("name, send, status, words", RAW, ids=[f"raw-{r[0]}" for r in RAW])
def test_corpus_raw(daemon, name, send, status, words):
    check(daemon, raw(daemon, send(daemon)), status, words)


def test_the_corpus_is_large_enough():
    assert len(CASES) + len(RAW) + 2 >= 150, len(CASES) + len(RAW)


# -- bounds with a time on them ----------------------------------------------------------------

def test_the_issue_long_path_is_refused_within_seconds(daemon, http):
    body = {"keyframes": ["/" + "a/" * 160_000, "/x"]}  # 320 KB: held a thread for minutes before
    started = time.monotonic()
    response = http.post("/v1/jobs", json=body)
    assert response.status_code == 422 and time.monotonic() - started < 5


def test_a_json_submit_gets_the_json_limit_not_the_upload_limit(daemon, http):
    big = {"keyframes": ["/a", "/b"], "settings": {"prompt": "p" * (JSON_LIMIT + 1000)}}
    for extra in ({}, {"headers": {"Transfer-Encoding": "chunked"}}):
        data = json.dumps(big).encode()
        started = time.monotonic()
        response = http.post("/v1/jobs", content=iter([data[:65536], data[65536:]]) if extra else data,
                             headers={"Content-Type": "application/json"})
        check(daemon, response, 413, f"{JSON_LIMIT:,} bytes")
        assert time.monotonic() - started < 5


def test_a_stalled_body_gets_408(daemon):
    head = request("POST /v1/jobs HTTP/1.1", "Content-Type: application/json", "Content-Length: 1000", body=b'{"keyf')
    started = time.monotonic()
    check(daemon, raw(daemon, head), 408, "stalled")
    assert BODY_TIMEOUT <= time.monotonic() - started < BODY_TIMEOUT + 5
