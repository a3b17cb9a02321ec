"""Ray farm throughput and overhead on this machine (not a test; numbers for docs/farm.md).

    python benchmarks/farm.py [--model DIR] [--keyframes 5] [--transition 15] [--steps 40]

In one run, side by side on one local Ray cluster:
1. Frames per minute of the render's transitions with the model loaded (a warm daemon's case): in
   this process one after the other, and as tasks on 1 and on 2 warm FarmActors (each computing with
   one torch thread, like this process, so 2 actors use 2 cores). Then the whole
   `latentween render K1..Kn` command without Ray and with --ray (1 and 2 actors), start-up and model
   loads included: what a user waits for on a cold cluster.
   And ONE transition on 1 and on 2 warm actors, its chunks split across the pool (farm/chunks.py),
   at --split-max-batch 2 (one frame per chunk, so a level of n frames is n chunks).
2. Ray's overhead per chunk: the submit-to-start latency of an actor task (the time from .remote()
   to the method running, on one clock), the round trip of a parent latent through the object store
   (put, then get inside an actor), and a frame's PNG bytes coming back; against the time a chunk of
   the same model takes (the render manifests' `seconds` per frame).
Ratios are what to quote: the absolute numbers move with the machine's load. The model defaults to
the tiny test checkpoint, the worst case for overhead (its chunks are milliseconds long).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def keyframes(folder: Path, count: int) -> list[Path]:
    import cv2
    import numpy as np

    paths = []
    for k in range(count):
        yy, xx = np.mgrid[:64, :64]
        img = np.full((64, 64, 3), 230, np.uint8)
        img[(xx - 12 - 10 * k) ** 2 + (yy - 30 - 4 * k) ** 2 <= 100] = (200 - 40 * k % 200, 30 + 50 * k % 200, 120)
        path = folder / f"k{k}.png"
        cv2.imwrite(str(path), img)
        paths.append(path)
    return paths


def render(model, keys, out: Path, args, extra) -> float:
    from latentween.cli import main

    started = time.perf_counter()
    assert main(["render", *map(str, keys), "--out", str(out), "--work", str(out) + ".work", "--model", str(model),
                 "--transition", str(args.transition), "--steps", str(args.steps), "--candidates", "1",
                 "--seed", "5", "--quiet", *extra]) == 0
    return time.perf_counter() - started


def chunk_seconds(work: Path) -> float:
    """Median seconds per generated frame over the render's manifests (one frame per chunk here)."""
    seconds = []
    for manifest in work.glob("transition_*/manifest.json"):
        seconds += [f["seconds"] for f in json.loads(manifest.read_text())["frames"] if f.get("source") == "generated"]
    return statistics.median(seconds)


def warm(ray, model, keys, tmp: Path, args, actors: int) -> float:
    """Seconds for every transition of the render on `actors` warm actors (model loaded before timing)."""
    from latentween.farm.actors import start_actors
    from latentween.images import decode_image
    from latentween.settings import MorphSettings, RuntimeSettings

    frames = [decode_image(k.read_bytes(), str(k)) for k in keys]
    settings = MorphSettings(model=str(model), frames=args.transition + 2, steps=args.steps, candidates=1, seed=5)
    pool = start_actors([f"bench-{actors}-{i}" for i in range(actors)], RuntimeSettings().model_dump(), restarts=0,
                        threads=1)
    ray.get([actor.preload.remote(str(model)) for actor in pool])
    started = time.perf_counter()
    refs = [pool[n % actors].run.remote("transition", f"bench-{actors}-{n}",
                                        {"keyframes": pair, "settings": settings.model_dump(mode="json"), "shared": True,
                                         "dir": str(tmp / f"warm{actors}" / f"t{n}"), "key": f"bench-{n}"})
            for n, pair in enumerate(zip(frames, frames[1:]))]
    ray.get(refs)
    seconds = time.perf_counter() - started
    for actor in pool:
        ray.kill(actor)
    return seconds


def warm_split(ray, model, keys, tmp: Path, args, actors: int) -> float:
    """Seconds for the first transition alone on `actors` warm actors, its chunks split across them."""
    from latentween.farm.actors import start_actors
    from latentween.images import decode_image
    from latentween.settings import MorphSettings, RuntimeSettings

    pair = [decode_image(k.read_bytes(), str(k)) for k in keys[:2]]
    settings = MorphSettings(model=str(model), frames=args.transition + 2, steps=args.steps, candidates=1, seed=5)
    pool = start_actors([f"split-{actors}-{i}" for i in range(actors)],
                        RuntimeSettings(max_batch=args.split_max_batch).model_dump(), restarts=0, threads=1)
    ray.get([actor.preload.remote(str(model)) for actor in pool])
    started = time.perf_counter()
    ray.get(pool[0].run.remote("transition", f"split-{actors}", {
        "keyframes": pair, "settings": settings.model_dump(mode="json"), "shared": True,
        "dir": str(tmp / f"split{actors}"), "key": f"split-{actors}", "pool": pool if actors > 1 else None}))
    seconds = time.perf_counter() - started
    for actor in pool:
        ray.kill(actor)
    return seconds


def warm_local(model, keys, tmp: Path, args) -> float:
    from latentween.images import decode_image
    from latentween.models import ModelManager
    from latentween.morph import run_morph
    from latentween.settings import MorphSettings

    frames = [decode_image(k.read_bytes(), str(k)) for k in keys]
    settings = MorphSettings(model=str(model), frames=args.transition + 2, steps=args.steps, candidates=1, seed=5)
    manager = ModelManager()
    manager.get(str(model))
    started = time.perf_counter()
    for n, pair in enumerate(zip(frames, frames[1:])):
        run_morph(pair, tmp / "warm-local" / f"t{n}", settings, manager=manager)
    return time.perf_counter() - started


def overheads(ray, latent_shape, png: bytes, repeats: int = 30) -> dict:
    import numpy as np

    @ray.remote(num_cpus=0)
    class Probe:
        def started(self, sent: float) -> float:
            return time.time() - sent

        def take(self, latent) -> int:
            return latent.nbytes

        def frame(self) -> bytes:
            return png

    probe = Probe.remote()
    ray.get(probe.started.remote(time.time()))  # started and warm
    latency = statistics.median(ray.get(probe.started.remote(time.time())) for _ in range(repeats))
    latent = np.random.default_rng(0).standard_normal(latent_shape).astype(np.float32)
    transfer = []
    for _ in range(repeats):
        t = time.perf_counter()
        ray.get(probe.take.remote(ray.put(latent)))
        transfer.append(time.perf_counter() - t)
    back = []
    for _ in range(repeats):
        t = time.perf_counter()
        ray.get(probe.frame.remote())
        back.append(time.perf_counter() - t)
    ray.kill(probe)
    return {"submit_to_start_s": latency, "latent_round_trip_s": statistics.median(transfer),
            "latent_bytes": latent.nbytes, "frame_back_s": statistics.median(back), "frame_bytes": len(png)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a diffusers folder (default: the tiny test checkpoint)")
    parser.add_argument("--keyframes", type=int, default=5)
    parser.add_argument("--transition", type=int, default=15)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--split-max-batch", type=int, default=2)
    parser.add_argument("--only-split", action="store_true", help="only the one-transition measurement")
    args = parser.parse_args()

    import ray
    import torch

    torch.set_num_threads(1)  # the local run's share: one core, as each actor's
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            import subprocess

            model = tmp / "tiny"
            subprocess.run([sys.executable, "-m", "latentween.testing.tiny", str(model)], check=True, capture_output=True)
        keys = keyframes(tmp, args.keyframes)
        frames = (args.keyframes - 1) * args.transition
        ray.init(num_cpus=2, include_dashboard=False, namespace="latentween", log_to_driver=False)
        address = ray.get_runtime_context().gcs_address
        split = {n: warm_split(ray, model, keys, tmp, args, n) for n in (1, 2)}
        print(f"one transition ({args.transition} frames, --max-batch {args.split_max_batch}), warm: frames/min "
              + ", ".join(f"{n} actor(s) {60 * args.transition / s:.1f} ({s:.1f} s)" for n, s in split.items())
              + f"; ratio 2/1: {split[1] / split[2]:.2f}", flush=True)
        if args.only_split:
            return
        warm_s = {"local": warm_local(model, keys, tmp, args), "ray-1": warm(ray, model, keys, tmp, args, 1),
                  "ray-2": warm(ray, model, keys, tmp, args, 2)}
        local = render(model, keys, tmp / "local", args, [])
        one = render(model, keys, tmp / "one", args, ["--ray", address, "--ray-actors", "1"])
        two = render(model, keys, tmp / "two", args, ["--ray", address, "--ray-actors", "2"])
        chunk = chunk_seconds(Path(str(tmp / "local") + ".work"))
        from safetensors.torch import load_file

        latent = load_file(str(next(Path(str(tmp / "local") + ".work").glob("transition_000/.latentween/*.safetensors"))))
        png = next(Path(str(tmp / "local") + ".work").glob("transition_000/frame_00001.png")).read_bytes()
        cost = overheads(ray, tuple(latent["latent"].shape), png)
        sd_cost = overheads(ray, (4, 64, 64), b"\0" * 600_000)  # SD 1.5 at 512x512: latent, a typical PNG
        ray.shutdown()

    per_chunk = cost["submit_to_start_s"] + cost["latent_round_trip_s"] + cost["frame_back_s"]
    # 2 actors can only beat 1 when a second core is free: say how busy the machine was
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"render of {args.keyframes} keyframes: {args.keyframes - 1} transitions, {frames} in-between frames, "
          f"{args.steps} steps, {'tiny model' if args.model is None else args.model}")
    for title, timed in (("warm (model loaded)", warm_s), ("whole command", {"local": local, "ray-1": one, "ray-2": two})):
        per_min = {name: 60 * frames / seconds for name, seconds in timed.items()}
        print(f"{title}: frames/min " + ", ".join(f"{n} {v:.1f} ({timed[n]:.1f} s)" for n, v in per_min.items()))
        print(f"  ratio 2 actors / 1 actor: {per_min['ray-2'] / per_min['ray-1']:.2f}; "
              f"1 actor / local: {per_min['ray-1'] / per_min['local']:.2f}")
    print(f"submit-to-start latency {cost['submit_to_start_s'] * 1e3:.2f} ms; latent ({cost['latent_bytes']} B) "
          f"round trip {cost['latent_round_trip_s'] * 1e3:.2f} ms; frame PNG ({cost['frame_bytes']} B) back "
          f"{cost['frame_back_s'] * 1e3:.2f} ms")
    print(f"one generated frame (manifest seconds, a chunk holds one or more) {chunk * 1e3:.1f} ms; "
          f"Ray overhead per chunk / one frame's time = {per_chunk / chunk:.3f}")
    print(f"SD-1.5-sized transfers: latent ({sd_cost['latent_bytes']} B) round trip "
          f"{sd_cost['latent_round_trip_s'] * 1e3:.2f} ms, 600 kB PNG back {sd_cost['frame_back_s'] * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
