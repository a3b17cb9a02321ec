"""Work folders in the user cache, and which seed a re-run uses.

A video, an animation or a pipe is fed from an engine folder (frames, latents, manifest). Those
folders live under the user cache (`$LATENTWEEN_CACHE_DIR`, else the platform's, e.g.
~/.cache/latentween) in `work/`, not beside the output, unless `--work DIR` names one;
`latentween cache clean` removes them.

A morph's folder is named by what fixes its frames apart from the seed (the inputs' content and the
effective settings), with one sub-folder per seed. So the same job written to another format, or
run again after an interrupt, finds its frames: a job without `--seed` takes the seed of its most
recent run, and a finished job is delivered again without loading the model (morph.run_morph).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Optional, Sequence

from latentween.images import Keyframe
from latentween.settings import MorphSettings

WORK = "work"


def cache_root() -> Path:
    """latentween's user cache: inverted prompts, work folders."""
    folder = os.environ.get("LATENTWEEN_CACHE_DIR")
    if folder is None:
        import platformdirs

        folder = platformdirs.user_cache_dir("latentween")
    return Path(folder)


def work_root() -> Path:
    return cache_root() / WORK


def _digest(payload) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def morph_family(keyframes: Sequence[Keyframe], settings: MorphSettings, kind: str = "morph") -> Path:
    """The cache folder of one job's seeds (a morph, or a render: every keyframe, one settings for all
    transitions): inputs' content and effective settings, seed left out."""
    from latentween.morph import effective_settings

    effective = effective_settings(settings).model_dump(mode="json", exclude={"seed"})
    return work_root() / kind / _digest({"inputs": [k.sha256 for k in keyframes], "settings": effective})


def seed_folder(family: Path, seed: int) -> Path:
    return family / f"seed-{seed}"


def reuse_seed(settings: MorphSettings, keyframes: Sequence[Keyframe], folders: Iterable[Path]) -> MorphSettings:
    """`settings` with its seed fixed: the user's, else that of the newest of `folders` whose manifest
    is this same job (so running the command again resumes or re-delivers), else a random one."""
    if settings.seed is not None:
        return settings
    from latentween.morph import base_key, effective_settings

    effective = effective_settings(settings)
    from latentween.outputs import OutputFolder

    runs = []
    for folder in folders:
        output = OutputFolder(folder)
        manifest = output.manifest()
        if manifest is None:
            continue
        try:
            seed = int((manifest.settings or {})["seed"])
            when = output.manifest_path.stat().st_mtime
        except (OSError, ValueError, KeyError, TypeError):
            continue
        # takes aside (base_key): `--takes 3:1` re-rolls the last run in place with its seed
        if manifest.run_key == base_key(keyframes, effective.model_copy(update={"seed": seed})):
            runs.append((when, seed))
    if runs:
        return settings.model_copy(update={"seed": max(runs)[1]})
    return settings.with_seed()


def family_seeds(family: Path) -> list[Path]:
    return sorted(family.glob("seed-*")) if family.is_dir() else []


def usage(root: Optional[Path] = None) -> tuple[int, int]:
    """(work folders, bytes) under the cache's work/."""
    root = root or work_root()
    folders = [p for p in root.glob("*/*") if p.is_dir()] if root.is_dir() else []
    size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) if root.is_dir() else 0
    return len(folders), size


def clean(root: Optional[Path] = None) -> tuple[int, int]:
    """Remove every work folder; returns what `usage` counted before."""
    root = root or work_root()
    counted = usage(root)
    shutil.rmtree(root, ignore_errors=True)
    return counted
