"""Shared fixtures: a tiny checkpoint written by `python -m latentween.testing.tiny`, loaded through the
same model manager users go through, and small keyframes with real content."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

# Tests never touch the network; the hub code paths still run, in offline mode.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TQDM_DISABLE", "1")
# Tests run the engine in this process as the CLI would: set up before anything imports torch.
from latentween.runtime import configure_runtime  # noqa: E402

configure_runtime()


def disk_image(center: tuple[int, int], color: tuple[int, int, int], size: int = 64, radius: int = 10,
               background: int = 230) -> np.ndarray:
    """uint8 RGB image of one filled disk on a light background."""
    yy, xx = np.mgrid[:size, :size]
    img = np.full((size, size, 3), background, np.uint8)
    img[(xx - center[0]) ** 2 + (yy - center[1]) ** 2 <= radius**2] = color
    return img


def write_png(path: Path, rgb: np.ndarray) -> Path:
    import cv2

    channels = rgb.shape[2] if rgb.ndim == 3 else 1
    code = {3: cv2.COLOR_RGB2BGR, 4: cv2.COLOR_RGBA2BGRA}.get(channels)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, code) if code is not None else rgb)
    return path


def unloadable_model(folder: Path) -> Path:
    """A model folder that names its parts and holds none: the daemon admits its jobs like any folder's
    (it recommends one candidate, so no CLIP is needed) and the worker fails them at once, in one line,
    without running a model. For tests of the daemon's own machinery."""
    import json

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model_index.json").write_text(json.dumps({
        "_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
        "text_encoder": ["transformers", "CLIPTextModel"]}))
    (folder / "latentween.json").write_text(json.dumps({"candidates": 1}))
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    subprocess.run([sys.executable, "-m", "latentween.testing.tiny", str(folder)], check=True,
                   capture_output=True)
    return folder


@pytest.fixture(scope="session")
def manager():
    from latentween.models import ModelManager

    return ModelManager(max_loaded=2)


@pytest.fixture(scope="session")
def components(manager, tiny_model):
    return manager.get(str(tiny_model))


@pytest.fixture
def pipe(components):
    from latentween.pipeline import InterpolationPipeline

    return InterpolationPipeline.from_components(components, max_batch=8)


@pytest.fixture(scope="session")
def keyframe_files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("keyframes")
    a = write_png(folder / "a.png", disk_image((20, 30), (200, 30, 30)))
    b = write_png(folder / "b.png", disk_image((44, 34), (30, 30, 200)))
    return a, b


@pytest.fixture(scope="session")
def three_keyframes(tmp_path_factory) -> list[Path]:
    """Keyframes for renders (two transitions)."""
    folder = tmp_path_factory.mktemp("three-keyframes")
    return [write_png(folder / f"{name}.png", disk_image(center, color))
            for name, center, color in (("a", (20, 30), (200, 30, 30)), ("b", (44, 34), (30, 30, 200)),
                                        ("c", (32, 50), (30, 200, 30)))]


@contextmanager
def daemon_threads():
    """A daemon's worker in these tests computes with one thread (OMP_NUM_THREADS=1); bit-identity is
    promised within one environment (docs/determinism.md), so a local run to compare with uses one too."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def keyframe_arrays() -> list[np.ndarray]:
    return [disk_image((20, 30), (200, 30, 30)).astype(np.float32) / 255,
            disk_image((44, 34), (30, 30, 200)).astype(np.float32) / 255]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray per test module that asks for it (2 CPUs, no dashboard); its GCS address, for daemons
    started as subprocesses to join with --ray-address. This process is a driver of it too."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, namespace="latentween", log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
