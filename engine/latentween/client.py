"""Talk to a latentween daemon with the standard library alone: `latentween submit`, the Blender add-on
and scripts all use this module.

It imports nothing outside the standard library (no torch, no pydantic), so any Python host can
import it as it is. Every call is one short HTTP request with a timeout, on a kept-alive connection;
watching a job is polling (`job`, or `wait` in a loop), which works in hosts that cannot hold a
thread or a stream. No proxy is used: the daemon is on this machine or a known box.

    client = Client("http://127.0.0.1:8642")
    job = client.submit(["a.png", "b.png"], {"frames": 9, "prompt": "a red disk"})
    job = client.wait(job["id"])
    client.download(job["id"], "out/")
"""
from __future__ import annotations

import http.client
import json
import mimetypes
import os
import select
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8642"
FINAL_STATES = ("done", "failed", "cancelled")


class DaemonError(Exception):
    """Anything that went wrong talking to the daemon; the message is one line for the user."""


class Unreachable(DaemonError):
    """No answer: the daemon is not running, the address is wrong, or it timed out."""


class RequestFailed(DaemonError):
    """The daemon answered with an error status; `status` and `detail` say which and why."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"the daemon refused the request (HTTP {status}): {detail}")
        self.status = status
        self.detail = detail


class JobFailed(DaemonError):
    def __init__(self, job: dict):
        super().__init__(f"job {job['id']} {job['state']}" + (f": {job['error']}" if job.get("error") else ""))
        self.job = job


class Client:
    """One daemon. `url` defaults to $LATENTWEEN_SERVER, then http://127.0.0.1:8642; `token` to $LATENTWEEN_TOKEN."""

    def __init__(self, url: Optional[str] = None, token: Optional[str] = None, timeout: float = 10.0):
        self.url = (url or os.environ.get("LATENTWEEN_SERVER") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("LATENTWEEN_TOKEN")
        self.timeout = timeout
        parts = urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"daemon address must look like http://HOST:PORT, got {self.url!r}")
        self._https = parts.scheme == "https"
        self._host, self._port, self._prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self._kept: Optional[http.client.HTTPConnection] = None
        self._lock = threading.Lock()  # one request at a time on the kept connection

    # -- the daemon -----------------------------------------------------------------------------

    def health(self) -> dict:
        return self._json("GET", "/v1/health")

    def models(self) -> dict:
        return self._json("GET", "/v1/models")

    # -- jobs -----------------------------------------------------------------------------------

    def submit(self, keyframes: Sequence[str | os.PathLike], settings: Optional[dict] = None,
               timeout: Optional[float] = None) -> dict:
        """Upload two image files from this machine and queue a job; returns the job. `timeout`
        defaults to at least 60 s for large uploads; a UI that must not block passes a short one."""
        if len(keyframes) != 2:
            raise ValueError(f"two keyframes are needed, got {len(keyframes)}")
        fields = [("settings", None, json.dumps(settings or {}).encode(), "application/json")]
        for path in keyframes:
            path = Path(path)
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DaemonError(f"cannot read keyframe {str(path)!r}: {exc.strerror or exc}") from exc
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            fields.append(("keyframes", path.name, data, kind))
        body, content_type = _multipart(fields)
        return self._json("POST", "/v1/jobs", body, content_type, timeout=timeout or max(self.timeout, 60.0))

    def submit_paths(self, keyframes: Sequence[str], settings: Optional[dict] = None,
                     timeout: Optional[float] = None) -> dict:
        """Queue a job on files the daemon's machine has (under its --allow-root folders);
        `path@frame` names a frame of a video."""
        body = json.dumps({"keyframes": [str(k) for k in keyframes], "settings": settings or {}}).encode()
        return self._json("POST", "/v1/jobs", body, "application/json", timeout=timeout or max(self.timeout, 60.0))

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{quote(job_id)}")

    def jobs(self, state: Optional[str] = None) -> list[dict]:
        query = f"?{urlencode({'state': state})}" if state else ""
        return self._json("GET", f"/v1/jobs{query}")["jobs"]

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/v1/jobs/{quote(job_id)}/cancel")

    def delete(self, job_id: str) -> None:
        self._request("DELETE", f"/v1/jobs/{quote(job_id)}")

    def candidates(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{quote(job_id)}/candidates")

    def candidate(self, job_id: str, index: int) -> bytes:
        return self._request("GET", f"/v1/jobs/{quote(job_id)}/candidates/{int(index)}")

    def choose(self, job_id: str, frame: int, candidate: int) -> dict:
        body = json.dumps({"frame": int(frame), "candidate": int(candidate)}).encode()
        return self._json("POST", f"/v1/jobs/{quote(job_id)}/choose", body, "application/json")

    def reroll(self, job_id: str, frames: Sequence[int]) -> dict:
        """Queue a new job: a finished job with `frames` made again (each its next take), the rest kept."""
        body = json.dumps({"frames": [int(f) for f in frames]}).encode()
        return self._json("POST", f"/v1/jobs/{quote(job_id)}/reroll", body, "application/json")

    def frame(self, job_id: str, index: int) -> bytes:
        return self._request("GET", f"/v1/jobs/{quote(job_id)}/frames/{int(index)}")

    def manifest(self, job_id: str) -> dict:
        return self._json("GET", f"/v1/jobs/{quote(job_id)}/manifest")

    def video(self, job_id: str, format: str = "mp4", fps: str = "24") -> bytes:
        query = urlencode({"format": format, "fps": fps})
        return self._request("GET", f"/v1/jobs/{quote(job_id)}/video?{query}", timeout=max(self.timeout, 600.0))

    def wait(self, job_id: str, interval: float = 0.5, timeout: Optional[float] = None,
             on_update: Optional[Callable[[dict], None]] = None) -> dict:
        """Poll until the job is done; returns it. Raises JobFailed if it failed or was cancelled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if on_update is not None:
                on_update(job)
            if job["state"] == "done":
                return job
            if job["state"] in FINAL_STATES:
                raise JobFailed(job)
            if deadline is not None and time.monotonic() > deadline:
                raise DaemonError(f"job {job_id} is still {job['state']} after {timeout:g} s")
            time.sleep(interval)

    def download(self, job_id: str, out_dir: str | os.PathLike) -> list[Path]:
        """Write the job's frames and manifest.json into `out_dir`, as `latentween morph` does."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        manifest = self.manifest(job_id)
        written = []
        for entry in manifest["frames"]:
            name = entry.get("file")
            if not name or Path(name).name != name:  # only plain file names: never write outside out_dir
                continue
            _write_atomic(out / name, self.frame(job_id, entry["index"]))
            written.append(out / name)
        _write_atomic(out / "manifest.json", json.dumps(manifest, indent=2).encode())
        return written

    # -- HTTP -----------------------------------------------------------------------------------

    def _json(self, method: str, path: str, body: Optional[bytes] = None, content_type: Optional[str] = None,
              timeout: Optional[float] = None):
        data = self._request(method, path, body, content_type, timeout)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise DaemonError(f"the daemon at {self.url} sent something that is not JSON for {method} {path}") from exc

    def _request(self, method: str, path: str, body: Optional[bytes] = None, content_type: Optional[str] = None,
                 timeout: Optional[float] = None) -> bytes:
        """One request on the kept-alive connection (a new connection per poll costs the daemon twice
        the CPU); a GET whose reused connection turns out closed is sent once more on a new one."""
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.token:
            if not all(" " < c < "\x7f" for c in self.token):  # http.client would raise UnicodeEncodeError
                raise DaemonError("the token must be printable ASCII without spaces, as daemons require; "
                                  "check --token or $LATENTWEEN_TOKEN")
            headers["Authorization"] = f"Bearer {self.token}"
        timeout = timeout or self.timeout
        with self._lock:
            for attempt in (1, 2):
                connection, reused = self._connection(timeout)
                try:
                    connection.request(method, self._prefix + path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                    self._close()
                    if reused and attempt == 1 and method in ("GET", "HEAD", "DELETE"):
                        continue
                    raise Unreachable(f"cannot reach the latentween daemon at {self.url}: {_reason(exc)}") from None
                except (socket.timeout, TimeoutError):
                    self._close()
                    raise Unreachable(f"cannot reach the latentween daemon at {self.url}: no answer within "
                                      f"{timeout:g} s") from None
                except (OSError, http.client.HTTPException) as exc:
                    self._close()
                    raise Unreachable(f"cannot reach the latentween daemon at {self.url}: {_reason(exc)}") from None
                if response.will_close:
                    self._close()
                if response.status >= 400:
                    raise RequestFailed(response.status, _detail(data, response.reason))
                return data
        raise AssertionError("unreachable")

    def _connection(self, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        connection = self._kept
        if connection is not None and connection.sock is not None and not _closed_by_peer(connection.sock):
            connection.sock.settimeout(timeout)
            return connection, True
        self._close()
        kind = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        self._kept = kind(self._host, self._port, timeout=timeout)
        return self._kept, False

    def _close(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def close(self) -> None:
        with self._lock:
            self._close()


def _closed_by_peer(sock) -> bool:
    """An idle kept-alive socket that is readable has been closed by the daemon (or holds junk)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _detail(body: bytes, reason: str) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return body.decode("utf-8", "replace")[:300] or reason
    if isinstance(detail, str):
        return detail
    return json.dumps(detail) if detail is not None else reason


def _reason(reason) -> str:
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__


def _multipart(fields: list[tuple[str, Optional[str], bytes, str]]) -> tuple[bytes, str]:
    """(name, file name or None, data, content type) -> a multipart/form-data body and its content type."""
    boundary = f"latentween-{uuid.uuid4().hex}"
    parts = []
    for name, filename, data, kind in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            safe = filename.replace('"', "_").replace("\r", "_").replace("\n", "_")
            disposition += f'; filename="{safe}"'
        head = f"--{boundary}\r\nContent-Disposition: {disposition}\r\nContent-Type: {kind}\r\n\r\n"
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _write_atomic(path: Path, data: bytes) -> None:
    # latentween.atomic's writer, kept here because this file travels alone (the Blender add-on)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600 files; downloaded frames get the usual mode
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    """The process's umask: from /proc where there is one (reading it there changes nothing), else set
    and put back, at the first download rather than at import."""
    try:
        with open("/proc/self/status") as status:
            return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask
