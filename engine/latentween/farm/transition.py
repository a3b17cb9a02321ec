"""One transition of a render (two keyframes, run_morph) as a piece of work on a FarmActor.

The transition's folder is run_morph's output folder, so a run that Ray repeats after its actor died
resumes from what was finished and makes the rest exactly as an uninterrupted run. Without a shared
filesystem the folder is the actor's scratch folder, seeded with what the driver already has
(a re-run render resumes on any node), and frames travel back in the reports (farm/files.py).
"""
from __future__ import annotations

import shutil
from pathlib import Path

from latentween.farm.files import Shipper, frame_files, receive, scratch_dir
from latentween.outputs import OutputFolder
from latentween.progress import Progress
from latentween.reports import Frames, Progressed
from latentween.settings import MorphSettings


def run(actor, channel, payload: dict) -> dict:
    """payload: keyframes (Keyframe objects), settings (dict), dir (the driver's folder), shared (bool),
    key (the job key: the scratch folder's name), files (the driver's finished files, when not shared),
    pool (optional: the actors to split the transition's chunks across), label (names its chunk tasks)."""
    from latentween.farm.chunks import ChunkSource
    from latentween.morph import run_morph

    shared = payload["shared"]
    folder = Path(payload["dir"]) if shared else scratch_dir(payload["key"])
    shipper = None
    if not shared:
        folder.mkdir(parents=True, exist_ok=True)
        receive(folder, payload.get("files") or {})
        shipper = Shipper(folder, received=payload.get("files") or {})
    started = [False]

    def send_frames(indices: list[int]) -> None:
        channel.push(Frames(indices, shipper.files(frame_files(indices)) if shipper else {}))

    def progress(event: dict) -> None:
        if not started[0]:  # keyframes and resumed frames are final before the first step: say so once
            started[0] = True
            send_frames(OutputFolder(folder).finished_frames())
        channel.push(Progressed(Progress.of(event)))

    # With a pool (render --ray with more than one actor), the transition's chunks run across it
    frames = ChunkSource(payload["pool"], payload.get("label", "transition")) if payload.get("pool") else None
    manifest = run_morph(payload["keyframes"], folder, MorphSettings.model_validate(payload["settings"]),
                         actor.runtime, manager=actor.manager, progress=progress, should_cancel=channel.should_stop,
                         on_frame=lambda index, path: send_frames([index]), frames=frames)
    indices = [f["index"] for f in manifest["frames"] if f.get("file")]
    channel.push(Frames(indices, shipper.rest() if shipper else {}))
    if not shared:
        shutil.rmtree(folder, ignore_errors=True)
    return {"frames": len(indices), "unet": manifest.get("unet")}

