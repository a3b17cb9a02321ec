"""Files between an actor's folder and the driver's, when the cluster shares no filesystem.

Frames travel as their PNG bytes (with the latent a resume needs and the manifest), inside the
reports the driver polls; they are written on the driver's side atomically under the same relative
path, so the driver's folder ends up as if the engine had run there. With `--shared-dir` nothing
travels: the actor writes into the driver's folder itself.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Iterable

from latentween.atomic import write_atomic

SCRATCH = "latentween-farm"


def scratch_dir(key: str) -> Path:
    """An actor's folder for one piece of work on its node: the same key finds it again after a restart,
    so a re-run task resumes from what the killed actor finished."""
    return Path(tempfile.gettempdir()) / SCRATCH / key


class Shipper:
    """What of `root` still has to travel: files are sent once, and again only when they change."""

    # The manifest grows with every frame and is rewritten after each: sent with every frame, a
    # 1000-frame job would move it a thousand times. Between frames it goes at most this often; the
    # final sweep (rest) sends the last one.
    MANIFEST_EVERY_S = 2.0

    def __init__(self, root: Path, received: Iterable[str] = (), exclude: tuple[str, ...] = ()):
        """`received`: the files the driver sent to resume from, which it has. Anything else in `root`
        was left by an earlier run on this node that died before its files travelled: it is sent."""
        self.root = Path(root)
        self.exclude = exclude
        self.sent: dict[str, tuple[int, int]] = {}
        for rel in received:
            stat = (self.root / rel).stat()
            self.sent[rel] = (stat.st_mtime_ns, stat.st_size)
        self.manifest_sent = 0.0

    def files(self, relpaths: Iterable[str], final: bool = False) -> dict[str, bytes]:
        out = {}
        for rel in relpaths:
            if rel.endswith("manifest.json") and not final:
                if time.monotonic() - self.manifest_sent < self.MANIFEST_EVERY_S:
                    continue
                self.manifest_sent = time.monotonic()
            path = self.root / rel
            try:
                stat = path.stat()
                if self.sent.get(rel) == (stat.st_mtime_ns, stat.st_size):
                    continue
                out[rel] = path.read_bytes()
            except OSError:  # not written (yet): the final sweep sends it
                continue
            self.sent[rel] = (stat.st_mtime_ns, stat.st_size)
        return out

    def rest(self) -> dict[str, bytes]:
        """Everything not sent yet or changed since (the final manifest, poses, a resumed frame)."""
        return self.files(self._listing(), final=True)

    def _listing(self) -> list[str]:
        rels = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                rel = Path(folder, name).relative_to(self.root).as_posix()
                if not rel.startswith(self.exclude) and not name.startswith("."):  # temp files are hidden
                    rels.append(rel)
        return sorted(rels)


def receive(root: Path, files: dict[str, bytes]) -> None:
    """Write what an actor sent under `root`; a path that would leave `root` is refused."""
    for rel, data in files.items():
        parts = PurePosixPath(rel).parts
        if not parts or PurePosixPath(rel).is_absolute() or ".." in parts:
            raise ValueError(f"refusing to write {rel!r} outside {root}")
        path = Path(root, *parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data)


def frame_files(indices: Iterable[int], prefix: str = "") -> list[str]:
    """Relative paths of frames with their latents and the manifest that lists them."""
    from latentween.outputs import OutputFolder

    folder = OutputFolder(prefix)  # relative: "" is the folder itself
    rels = []
    for index in indices:
        rels += [folder.frame_path(index).as_posix(), folder.latent_path(index).as_posix()]
    return rels + [folder.manifest_path.as_posix()]
