"""A job's output folder: frame_00000.png ..., manifest.json and .latentween/ (the latents a resume needs).

Everything that reads such a folder (the daemon, the ordered sink, the progress bar, the contact sheet,
the farm's file shipping) goes through OutputFolder, so there is one rule for which frames are final.
The manifest is written as the engine builds it (a plain dict: its bytes on disk must not change);
`Manifest` is the typed view for reading it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, ValidationError

from latentween.atomic import write_atomic
from latentween.errors import InputError

FRAME_PATTERN = "frame_{:05d}.png"
FRAME_GLOB = "frame_*.png"
MANIFEST = "manifest.json"
STATE_DIR = ".latentween"


class FrameRecord(BaseModel):
    """One frame's entry in the manifest; the fields the readers rely on, the rest kept as they are."""

    model_config = ConfigDict(extra="allow", frozen=True)

    index: int
    fraction: Optional[float] = None
    file: Optional[str] = None  # set once the frame's file is final
    source: Optional[str] = None  # "keyframe" or "generated"
    resumed: bool = False  # kept from an interrupted run; its `file` may be unset (a kill before the write)


class Manifest(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    job_key: Optional[str] = None
    base_key: Optional[str] = None  # the job's key with its takes left out (latentween.takes)
    status: Optional[str] = None
    settings: Optional[dict] = None  # the job's effective settings (MorphSettings.model_dump)
    frames: list[FrameRecord] = []

    @property
    def run_key(self) -> Optional[str]:
        """What a re-roll keeps: the base key, or the job key of manifests from before takes existed."""
        return self.base_key or self.job_key


class OutputFolder:
    """Frames, latents and the manifest of one job, all written atomically."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.state = self.path / STATE_DIR

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def check_writable(self) -> None:
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            probe = self.state / ".probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise InputError(f"output folder {str(self.path)!r} is not writable: {exc.strerror or exc}") from exc

    def frame_path(self, index: int) -> Path:
        return self.path / FRAME_PATTERN.format(index)

    def frame_files(self) -> list[Path]:
        """The frame files on disk, by name (listed in the manifest or not)."""
        return sorted(self.path.glob(FRAME_GLOB))

    def latent_path(self, index: int) -> Path:
        return self.state / f"latent_{index:05d}.safetensors"

    def write_frame(self, index: int, pixels) -> Path:
        """`pixels`: the output's integer array, or its PNG bytes as encoded elsewhere (frame_png)."""
        from latentween.images import encode_png

        path = self.frame_path(index)
        write_atomic(path, pixels if isinstance(pixels, bytes) else encode_png(pixels))
        return path

    def write_latent(self, index: int, latent) -> None:
        from safetensors.torch import save

        write_atomic(self.latent_path(index), save({"latent": latent.contiguous()}))

    def write_pose(self, index: int, pose, size: tuple[int, int]) -> None:
        """pose_00000.png (the skeleton the ControlNet saw, at the output size) and pose_00000.json."""
        from latentween.images import encode_png
        from latentween.pose import render_pose

        stem = Path(FRAME_PATTERN.format(index)).stem.replace("frame", "pose")
        write_atomic(self.path / f"{stem}.png", encode_png(render_pose(pose, size)))
        write_atomic(self.path / f"{stem}.json", json.dumps(pose.to_openpose_json()).encode())

    def write_manifest(self, manifest: dict) -> None:
        write_atomic(self.manifest_path, json.dumps(manifest, indent=2).encode())

    def read_manifest(self) -> Optional[dict]:
        """The manifest as written, every field (the engine resumes from it and rewrites it)."""
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            return None

    def manifest(self, key: Optional[str] = None) -> Optional[Manifest]:
        """The manifest, typed; None when there is none readable or it is another job's than `key`."""
        raw = self.read_manifest()
        if not isinstance(raw, dict):
            return None
        try:
            manifest = Manifest.model_validate(raw)
        except ValidationError:
            return None
        if key is not None and manifest.job_key != key:
            return None
        return manifest

    def finished_frames(self, manifest: Optional[Manifest] = None) -> list[int]:
        """Frames that are final: listed as written (or resumed) by the manifest, and on disk."""
        manifest = manifest if manifest is not None else self.manifest()
        if manifest is None:
            return []
        return [f.index for f in manifest.frames if (f.file or f.resumed) and self.frame_path(f.index).is_file()]

    def finished_latents(self, base_key: str, count: int) -> dict:
        """Take-0 latents a previous run of the same job (takes aside: `base_key`) finished; whether a
        frame's file is final is for takes.plan_takes to say."""
        from safetensors.torch import load_file

        old = self.read_manifest()
        if not old or old.get("base_key", old.get("job_key")) != base_key:
            self._forget(old)
            return {}
        done = {}
        for i in range(1, count - 1):
            if self.latent_path(i).is_file():
                try:
                    done[i] = load_file(str(self.latent_path(i)))["latent"]
                except Exception:  # a damaged latent file just means the frame is made again
                    continue
        return done

    def _forget(self, old: Optional[dict]) -> None:
        """A different job ran here before: remove its frames (only files it listed) and latents."""
        if not old:
            return
        for entry in old.get("frames", []):
            name = Path(str(entry.get("file", ""))).name
            if name and name == entry.get("file"):
                (self.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.state, ignore_errors=True)
        self.state.mkdir(parents=True, exist_ok=True)
