"""A job beside other programs (issue 19, point 1): seconds with and without a competing CPU load,
before and after latentween's thread policy (latentween.threads), side by side in one run.

    python benchmarks/busy_cpu.py [--load 2] [--frames 9] [--skip-sd] [--quick]

The load is `--load` processes spinning on the CPU, as an editor, a browser and a compile would.

1. The toy model: `latentween morph a.png b.png --model toy --frames 9` as a user types it, in a fresh
   process and a fresh output folder each time; wall seconds (imports and model load included) and
   the manifest's generate_s (the part threads act on); then each half of the policy alone. "before" is torch's defaults (OpenMP's spinning wait policy, one thread per core):
   OMP_WAIT_POLICY set blank so the CLI keeps it, and --threads at torch's default count.
2. A randomly initialised SD-1.5-architecture UNet (860M parameters), one forward at batch 2 and
   32x32 latents (256 px), best of 3; "after" uses the thread count the policy picks for it.

Prints one table per model and the loaded/unloaded ratio of each variant.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))


@contextmanager
def cpu_load(processes: int):
    """`processes` Python processes spinning until the block ends."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    time.sleep(0.5)
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait()


def torch_default_threads() -> int:
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         env=_clean_env(), capture_output=True, text=True, check=True)
    return int(out.stdout)


def _clean_env() -> dict:
    return {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}


def variants(default_threads: int) -> dict:
    """name -> (environment, extra CLI arguments)."""
    # a blank OMP_WAIT_POLICY is OpenMP's default and keeps the CLI from setting PASSIVE
    before = {**_clean_env(), "OMP_WAIT_POLICY": ""}
    return {"before (torch defaults)": (before, ["--threads", str(default_threads)]),
            "after (latentween policy)": (_clean_env(), [])}


def parts(default_threads: int) -> dict:
    """Each half of the policy alone, to see which one does the work."""
    return {"only the wait policy (PASSIVE, torch's threads)": (_clean_env(), ["--threads", str(default_threads)]),
            "only the thread count (spinning wait)": ({**_clean_env(), "OMP_WAIT_POLICY": ""}, [])}


def keyframes(folder: Path) -> list[str]:
    import numpy as np
    from PIL import Image

    paths = []
    for name, (cx, cy), colour in (("a", (20, 30), (200, 30, 30)), ("b", (44, 34), (30, 30, 200))):
        yy, xx = np.mgrid[:64, :64]
        image = np.full((64, 64, 3), 230, np.uint8)
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= 100] = colour
        Image.fromarray(image).save(folder / f"{name}.png")
        paths.append(str(folder / f"{name}.png"))
    return paths


def toy_job(env: dict, extra: list, frames: int, folder: Path, keys: list[str]) -> tuple[float, float, dict]:
    out = Path(tempfile.mkdtemp(dir=folder))
    command = [sys.executable, "-m", "latentween", "morph", *keys, "--model", "toy", "--frames", str(frames),
               "--seed", "1", "--out", str(out), "--quiet", *extra]
    start = time.perf_counter()
    subprocess.run(command, env={**env, "HF_HUB_OFFLINE": "1"}, check=True, capture_output=True)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "manifest.json").read_text())
    pixels = {p.name: p.read_bytes() for p in sorted(out.glob("frame_*.png"))}
    return wall, manifest["timings"]["generate_s"], pixels


_FORWARD = r"""
import sys, time
import torch
from diffusers import UNet2DConditionModel
threads = int(sys.argv[1])
if threads:
    torch.set_num_threads(threads)
torch.manual_seed(0)
u = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8).eval()
x, c = torch.randn(2, 4, 32, 32), torch.randn(2, 77, 768)
with torch.inference_mode():
    u(x, 500, c)
    times = []
    for _ in range(3):
        t0 = time.perf_counter(); u(x, 500, c); times.append(time.perf_counter() - t0)
print(torch.get_num_threads(), min(times))
"""


def sd_forward(env: dict, threads: int) -> float:
    out = subprocess.run([sys.executable, "-c", _FORWARD, str(threads)], env=env, capture_output=True, text=True,
                         check=True)
    return float(out.stdout.split()[-1])


def table(title: str, rows: dict) -> None:
    print(f"## {title}")
    print("| variant | unloaded s | loaded s | loaded/unloaded |")
    print("|---|---|---|---|")
    for name, (idle, busy) in rows.items():
        print(f"| {name} | {idle:.2f} | {busy:.2f} | {busy / idle:.2f}x |")
    print()


def main() -> None:
    from latentween.threads import SMALL_UNET_PARAMETERS, WAIT_POLICY, choose_threads, physical_cores

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", type=int, default=2, help="spinning processes beside the job")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--skip-sd", action="store_true")
    parser.add_argument("--quick", action="store_true", help="toy model: before and after only, not each half")
    args = parser.parse_args()
    default = torch_default_threads()
    print(f"# busy CPU: {os.cpu_count()} logical / {physical_cores()} physical cores, torch default {default} "
          f"threads, load {args.load} spinning processes; policy {WAIT_POLICY}")
    print()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        keys = keyframes(folder)
        rows, totals, same = {}, {}, {}
        toy_variants = {**variants(default), **({} if args.quick else parts(default))}
        for name, (env, extra) in toy_variants.items():
            idle = toy_job(env, extra, args.frames, folder, keys)
            with cpu_load(args.load):
                busy = toy_job(env, extra, args.frames, folder, keys)
            rows[name] = (idle[0], busy[0])
            totals[name] = (idle[1], busy[1])
            same[name] = idle[2] == busy[2]
        table(f"toy model, {args.frames}-frame `latentween morph --model toy`, wall seconds with imports", rows)
        table("toy model, the same runs, manifest generate_s (after the model is loaded)", totals)
        print("frames byte-identical loaded and unloaded: " + ", ".join(f"{n}: {s}" for n, s in same.items()))
        print()
    if args.skip_sd:
        return
    sd_threads = choose_threads(None, 860_000_000) or default
    rows = {}
    for name, (env, _) in variants(default).items():
        threads = default if name.startswith("before") else sd_threads
        if not name.startswith("before"):
            env = {**env, **WAIT_POLICY}  # what the CLI sets before torch loads; this script has no CLI
        idle = sd_forward(env, threads)
        with cpu_load(args.load):
            busy = sd_forward(env, threads)
        rows[f"{name}, {threads} threads"] = (idle, busy)
    table("SD-1.5-architecture UNet (random weights), one forward, batch 2, 32x32 latents, best of 3", rows)
    print(f"(small-model threshold: {SMALL_UNET_PARAMETERS:,} UNet parameters)")


if __name__ == "__main__":
    main()
