"""The daemon's process under hostile conditions (issue 21): start-up failures are one line, not a
traceback; half-open connections against a daemon with a low file limit do not lock out a client
with the token; non-ASCII tokens are refused at start and by the client; image bombs and library
noise never reach a decoder or the terminal. Network traffic goes to 127.0.0.1 only."""
import os
import resource
import socket
import struct
import subprocess
import sys
import time
import zlib

import httpx
import pytest

from latentween.cli import main
from latentween.client import Client, DaemonError
from latentween.server.process import DaemonProcess

TOKEN = "start-token-0123456789abcdef"
FD_LIMIT = 128
HEADER_TIMEOUT = 2


def serve(*args, env=None):
    base = {k: v for k, v in os.environ.items() if k != "LATENTWEEN_TOKEN"}
    return subprocess.run([sys.executable, "-m", "latentween", "serve", "--port", "0", *map(str, args)],
                          env={**base, **(env or {})}, capture_output=True, text=True, timeout=120)


def assert_one_line_error(proc, words):
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1 and words in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    """A daemon limited to FD_LIMIT open files, as a small `ulimit -n` leaves it."""
    def low_file_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))

    state = tmp_path_factory.mktemp("state")
    env = dict(os.environ, LATENTWEEN_TOKEN=TOKEN, OMP_NUM_THREADS="1")
    with DaemonProcess(["--state-dir", state, "--no-preload", "--header-timeout", HEADER_TIMEOUT], env=env,
                       preexec_fn=low_file_limit) as process:
        process.state = state
        yield process


def test_a_second_daemon_on_the_same_state_dir_is_one_line(daemon):
    assert_one_line_error(serve("--state-dir", daemon.state, "--no-preload"), "another latentween daemon")


@pytest.mark.parametrize("state_dir, words", [("/dev/null/state", "Not a directory"),
                                               ("/proc/latentween-state", "cannot use the state directory")])
def test_an_unusable_state_dir_is_one_line(state_dir, words):
    assert_one_line_error(serve("--state-dir", state_dir, "--no-preload"), words)


def test_a_read_only_state_dir_is_one_line(tmp_path):
    mount = tmp_path / "read-only"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only file system here (needs root)")
    try:
        assert_one_line_error(serve("--state-dir", mount / "state", "--no-preload"), "Read-only file system")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_non_ascii_token_is_refused_at_start(tmp_path):
    assert_one_line_error(serve("--state-dir", tmp_path, env={"LATENTWEEN_TOKEN": "tökén-0123456789abcdef"}), "ASCII")


def test_a_non_ascii_token_is_one_line_from_the_client_and_submit(keyframe_files, capsys):
    with pytest.raises(DaemonError, match="ASCII"):
        Client("http://127.0.0.1:9", token="tökén-0123456789abcdef").health()
    assert main(["submit", *map(str, keyframe_files), "--server", "http://127.0.0.1:9",
                 "--token", "tökén-0123456789abcdef"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "ASCII" in err


def test_half_open_connections_do_not_lock_out_a_client_with_the_token(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    held, deadline = [], time.monotonic() + 20
    try:
        for i in range(3 * FD_LIMIT):  # more than the daemon has file descriptors
            if time.monotonic() > deadline:
                break
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue
            if i % 2:
                sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # a head that never ends
            held.append(sock)
        started = time.monotonic()
        with httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
            assert http.get("/v1/health").status_code == 200
        answered_in = time.monotonic() - started
        # and the daemon lets go of every one of them: refused at once (503) or after the head timeout (408)
        refusals = [_answer(sock, HEADER_TIMEOUT + 5) for sock in held]
    finally:
        for sock in held:
            sock.close()
    assert answered_in < HEADER_TIMEOUT + 3, answered_in
    assert all(r in ("408", "503", "closed") for r in refusals), sorted(set(refusals))
    assert "408" in refusals and "Traceback" not in "\n".join(daemon.log)
    with httpx.Client(base_url=daemon.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5) as http:
        assert http.get("/v1/health").json()["status"] == "ok"


def _answer(sock, timeout):
    """What the daemon did with a connection it did not serve: its status code, or 'closed'."""
    sock.settimeout(timeout)
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return "closed"
    except TimeoutError:
        return "still open"
    if not data:
        return "closed"
    status = data.split(b" ", 2)[1].decode()
    assert b"application/json" in data and b'"detail"' in data, data
    return status


def test_a_stalled_request_head_gets_408_json(daemon):
    port = int(daemon.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=HEADER_TIMEOUT + 5) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\n")
        assert _answer(sock, HEADER_TIMEOUT + 5) == "408"


# -- images: sizes from the header, before any decoder -------------------------------------------

def png_header(width, height):
    """A small PNG whose header claims a huge image."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("data", [
    png_header(14_000, 14_000),  # over Pillow's own bomb limit, which used to skip the check
    png_header(9_000, 9_000),
    b"#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 32768 +X 32768\n" + b"\x02\x02\x80\x00" * 64,
    b"PF\n20000 20000\n-1\n" + b"\0" * 64,
    b"P7\nWIDTH 20000\nHEIGHT 20000\nDEPTH 3\nMAXVAL 255\nTUPLTYPE RGB\nENDHDR\n" + b"\0" * 64,
], ids=["png-14000", "png-9000", "hdr", "pfm", "pam"])
def test_an_image_bomb_is_refused_from_its_header(data, monkeypatch):
    import cv2

    from latentween.images import ImageTooLarge, decode_image

    monkeypatch.setattr(cv2, "imdecode", lambda *a: pytest.fail("decoded a bomb"))
    with pytest.raises(ImageTooLarge, match="pixel"):
        decode_image(data, "bomb")


def test_the_cli_says_one_line_about_a_bomb_or_a_corrupt_keyframe(tmp_path, keyframe_files):
    big, corrupt = tmp_path / "big.png", tmp_path / "corrupt.png"
    big.write_bytes(png_header(14_000, 14_000))
    good = bytearray(keyframe_files[0].read_bytes())
    good[60] ^= 0xFF  # inside IDAT: libpng prints "IDAT: CRC error" from C
    corrupt.write_bytes(bytes(good))
    for keyframe, words in ((big, "14000x14000"), (corrupt, "not a readable image")):
        proc = subprocess.run([sys.executable, "-m", "latentween", "morph", str(keyframe), str(keyframe_files[1]),
                               "--frames", "3", "--out", str(tmp_path / "out"), "--model", "toy"],
                              capture_output=True, text=True, timeout=120)
        assert_one_line_error(proc, words)
