"""The settings `latentween eval` shares with a morph job, and where its defaults differ.

Meaning, type and help of a shared setting come from the job's own settings (MorphSettings,
RuntimeSettings); only the defaults below are eval's, and every other shared default is the job's.
Light: imported by the CLI parser, so no numpy or torch here.
"""
from __future__ import annotations

from typing import Any

from latentween.settings import MorphSettings, RuntimeSettings

# The comparison runs every scheme as the paper does: DDIM at enough steps for the baselines, an
# empty prompt (so guidance has nothing to do), a fixed seed, the world's shipped toy model (None:
# toy or toy-shapes, worlds.py) and short sequences.
EVAL_DEFAULTS: dict[str, Any] = {"model": None, "frames": 9, "steps": 50, "scheduler": "ddim", "guidance": 1.0,
                                 "seed": 0}
# Job settings an evaluation sets on every run, in the order of `latentween eval --help`
SHARED_MORPH = ("model", "frames", "steps", "scheduler", "guidance", "seed", "min_noise", "max_noise")
SHARED_RUNTIME = ("dtype",)
WORLD_NAMES = ("disks", "shapes")  # worlds.WORLDS, named here so that the CLI parser loads no numpy


def shared_field(name: str):
    """The settings model's field behind a shared setting."""
    return (RuntimeSettings if name in SHARED_RUNTIME else MorphSettings).model_fields[name]


def shared_default(name: str) -> Any:
    """Eval's default of a shared setting: its own where it differs, else the job's."""
    return EVAL_DEFAULTS[name] if name in EVAL_DEFAULTS else shared_field(name).default
