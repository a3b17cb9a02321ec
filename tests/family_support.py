"""Helpers shared by the model-family tests (test_families.py, test_flux.py): a short CLI morph, pixel
equality of two PNGs, and one job through a daemon serving the family's model."""
from __future__ import annotations

import numpy as np

from latentween.cli import main


def morph(model, keyframe_files, out, *extra) -> int:
    return main(["morph", *map(str, keyframe_files), "--out", str(out), "--model", str(model), "--frames", "5",
                 "--steps", "6", "--quiet", *map(str, extra)])


def same_pixels(a, b) -> bool:
    import cv2

    return np.array_equal(cv2.imread(str(a), cv2.IMREAD_UNCHANGED), cv2.imread(str(b), cv2.IMREAD_UNCHANGED))


def daemon_manifest(model, keyframe_files, state_dir) -> dict:
    """The manifest of a 3-frame job submitted to a daemon started with `--model model`; asserts it finished."""
    from latentween.client import Client
    from latentween.server.process import DaemonProcess

    with DaemonProcess(["--model", model, "--state-dir", state_dir]) as daemon:
        client = Client(daemon.url)
        job = client.wait(client.submit(keyframe_files, {"frames": 3, "steps": 4, "candidates": 1, "seed": 5})["id"],
                          interval=0.05)
        assert job["state"] == "done", job
        return client.manifest(job["id"])
