"""One daemon job seen from the add-on: submit, poll with short time-outs, fetch finished frames.

No `bpy` here: Blender calls `poll()` from a modal timer (or a loop in background mode), and each
call is a few short HTTP requests, so the interface never freezes for long and no thread is needed.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlsplit

from . import client as daemon
from .timeline import MorphError, stand_ins

FRAME_NAME = "frame_{:05d}.png"
POLL_TIMEOUT = 2.0       # one poll may stall the interface this long at most
PATIENCE = 30.0          # a daemon that stops answering for this long has gone away
_spawned: Optional[subprocess.Popen] = None

SUBMIT_TIMEOUT = 20.0  # seconds; two keyframes upload in well under that on loopback or a LAN


def normal_url(url: str) -> str:
    """What the editor typed, as the client takes it: `127.0.0.1:8642` means http://127.0.0.1:8642."""
    url = (url or "").strip() or daemon.DEFAULT_URL
    return url if "://" in url else f"http://{url}"


def connect(url: str, token: str = "", online: bool = True) -> daemon.Client:
    """A client for the daemon at `url`. `online`: Blender's "Allow Online Access"; without it only a
    daemon on this machine is asked (Blender's rule for extensions)."""
    url = normal_url(url)
    try:
        client = daemon.Client(url, token or None, timeout=POLL_TIMEOUT)
    except ValueError:
        raise MorphError(f"the daemon URL {url!r} is not an address like http://127.0.0.1:8642; "
                         f"fix it in the add-on's preferences") from None
    if not online and not is_local(url):
        raise MorphError(f"Blender's online access is off, and the daemon at {url} is on another machine: "
                         f"allow online access (Preferences > System > Network) or use a local daemon")
    return client


def health(client: daemon.Client) -> dict:
    try:
        return client.health()
    except daemon.DaemonError as exc:
        raise MorphError(str(exc)) from None


def is_local(url: str) -> bool:
    host = urlsplit(normal_url(url)).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def spawn_daemon(command: str, url: str, model: str = "") -> subprocess.Popen:
    """Start `latentween serve` on the URL's port; its output goes to a log file named in errors."""
    global _spawned
    if _spawned is not None and _spawned.poll() is None:
        return _spawned
    url = normal_url(url)
    parts = urlsplit(url)
    if not is_local(url):
        raise MorphError(f"cannot start a daemon for {url}: only a local address (127.0.0.1) can be started here")
    args = [command or "latentween", "serve", "--host", parts.hostname, "--port", str(parts.port or 8642)]
    if model:
        args += ["--model", model]
    fd, log = tempfile.mkstemp(prefix="latentween-serve-", suffix=".log")
    try:
        # its own session: Blender's Ctrl-C must not take the daemon (and its running jobs) with it
        _spawned = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd, start_new_session=True)
    except OSError as exc:
        raise MorphError(f"cannot start the daemon with {args[0]!r}: {exc.strerror or exc}; "
                         f"set the command in the add-on's preferences") from None
    finally:
        os.close(fd)
    _spawned.log = log
    return _spawned


def spawned() -> Optional[subprocess.Popen]:
    """The daemon this Blender started, while it runs."""
    return _spawned if _spawned is not None and _spawned.poll() is None else None


def stop_daemon(timeout: float = 10.0) -> bool:
    """Stop the daemon this Blender started (its jobs are resumed when one starts again)."""
    process = spawned()
    if process is None:
        return False
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)
    return True


class MorphJob:
    """A submitted job and the frames of it that are on disk in `folder`."""

    def __init__(self, client: daemon.Client, keep: range):
        self.client = client
        self.keep = keep
        self.id: Optional[str] = None
        self.job: Optional[dict] = None
        self.folder: Optional[Path] = None
        self.fetched: set[int] = set()    # kept frames written from the daemon's own pixels
        self.shown: dict[int, int] = {}   # kept frame -> the finished frame its file holds now
        self._silent_since: Optional[float] = None

    def submit(self, keyframes: Sequence[str], settings: dict, as_paths: bool, out_root: Path, name: str) -> None:
        try:
            # the editor waits on this call: a stuck daemon must not freeze Blender for a minute
            if as_paths:
                self.job = self.client.submit_paths(list(keyframes), settings, timeout=SUBMIT_TIMEOUT)
            else:
                self.job = self.client.submit(list(keyframes), settings, timeout=SUBMIT_TIMEOUT)
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        self.id = self.job["id"]
        self.folder = out_root / f"{name}-{self.id}"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.cancel()
            raise MorphError(f"cannot create the output folder {str(self.folder)!r}: {exc.strerror or exc}") from None

    @property
    def files(self) -> list[str]:
        return [FRAME_NAME.format(i) for i in self.keep]

    @property
    def done(self) -> bool:
        return self.job is not None and self.job["state"] == "done" and self.fetched >= set(self.keep)

    def poll(self) -> bool:
        """One look at the job; writes newly finished kept frames. True when files changed."""
        try:
            self.job = self.client.job(self.id)
            self._silent_since = None
        except daemon.Unreachable as exc:
            now = time.monotonic()
            self._silent_since = self._silent_since or now
            if now - self._silent_since > PATIENCE:
                raise MorphError(str(exc)) from None
            return False
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        if self.job["state"] in ("failed", "cancelled"):
            raise MorphError(str(daemon.JobFailed(self.job)))
        new = [i for i in self.job["frames"] if i in self.keep and i not in self.fetched]
        if not new:
            return False
        for index in new:
            self._write(index)
        self._fill_holes()
        return True

    def _write(self, index: int) -> None:
        try:
            data = self.client.frame(self.id, index)
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        self._save(self.folder / FRAME_NAME.format(index), data)
        self.fetched.add(index)
        self.shown[index] = index

    def _fill_holes(self) -> None:
        """Frames not made yet show a copy of the nearest finished one (see timeline.stand_ins)."""
        for index, source in stand_ins(self.keep, self.fetched).items():
            if self.shown.get(index) != source:
                src, dst = self.folder / FRAME_NAME.format(source), self.folder / FRAME_NAME.format(index)
                try:
                    shutil.copyfile(src, dst)
                except OSError as exc:
                    raise MorphError(f"cannot write {str(dst)!r}: {exc.strerror or exc}") from None
                self.shown[index] = source

    @staticmethod
    def _save(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.part")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError as exc:
            raise MorphError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from None

    def candidates(self) -> tuple[int, list[Path]]:
        """The frame the daemon waits on a choice for, and its candidates as files in the job's folder."""
        try:
            listing = self.client.candidates(self.id)
            frame, paths = listing["frame"], []
            for candidate in listing["candidates"]:
                path = self.folder / "candidates" / f"frame{frame:05d}_{candidate['index']}.png"
                if not path.exists():
                    path.parent.mkdir(exist_ok=True)
                    self._save(path, self.client.candidate(self.id, candidate["index"]))
                paths.append(path)
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None
        except OSError as exc:
            raise MorphError(f"cannot write the candidates into {str(self.folder)!r}: {exc.strerror or exc}") from None
        return frame, paths

    def choose(self, frame: int, candidate: int) -> None:
        try:
            self.job = self.client.choose(self.id, frame, candidate)
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None

    def cancel(self) -> None:
        """Ask the daemon to stop; a job that already ended needs nothing."""
        if self.id is None:
            return
        try:
            self.client.cancel(self.id)
        except daemon.RequestFailed as exc:
            if exc.status not in (404, 409):
                raise MorphError(str(exc)) from None
        except daemon.DaemonError as exc:
            raise MorphError(str(exc)) from None

    def discard(self) -> None:
        """Remove the files of a job that will not finish: half of them are stand-ins."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
