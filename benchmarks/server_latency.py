"""Daemon latency and polling cost (not a test; numbers for notes).

    python benchmarks/server_latency.py [--model DIR] [--frames 17] [--steps 30] [--pairs 3] [--pollers 20] [--hz 10]

1. Submit -> first event: a warm daemon (model loaded) gets a job; times from the start of the
   POST to the job's `running` state event and to its first `progress` event on the SSE stream.
2. Polling cost: the same job is generated with no clients watching and with N clients each
   polling GET /v1/jobs/{id} at H Hz, alternating (A, B, A, B, ...) so drifting machine load hits
   both sides alike. The generation time is the daemon's own (manifest timings.generate_s). The
   slowdown is the median of the per-pair ratios B / A. Also printed: the daemon's CPU per poll and
   the worker process's CPU per job, which tell extra work from waiting for a busy machine's cores.
The model defaults to the tiny test checkpoint (written to a temporary folder), the worst case for
polling: its steps are so short that Python overhead, not arithmetic, dominates.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))

from latentween.client import Client  # noqa: E402
from latentween.server.process import DaemonProcess  # noqa: E402


def keyframes(folder: Path) -> list[Path]:
    import cv2
    import numpy as np

    paths = []
    for name, (cx, color) in (("a.png", (20, (200, 30, 30))), ("b.png", (44, (30, 30, 200)))):
        yy, xx = np.mgrid[:64, :64]
        image = np.full((64, 64, 3), 230, np.uint8)
        image[(xx - cx) ** 2 + (yy - 32) ** 2 <= 100] = color
        cv2.imwrite(str(folder / name), image)
        paths.append(folder / name)
    return paths


def first_events(url: str, job_id: str, started: float) -> tuple[float, float]:
    """Seconds from `started` to the job's running state and to its first progress event."""
    import httpx

    running = progress = None
    with httpx.stream("GET", f"{url}/v1/jobs/{job_id}/events", timeout=120) as response:
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                now = time.perf_counter() - started
                data = json.loads(line[6:])
                if running is None and data.get("state") in ("running", "done"):
                    running = now
                if kind == "progress":
                    progress = now
                    break
    return running, progress


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_cpu_seconds(pid: int) -> float:
    """CPU time of the daemon's child processes (its worker process; Linux)."""
    try:
        children = [int(p) for task in Path(f"/proc/{pid}/task").iterdir() for p in (task / "children").read_text().split()]
    except OSError:
        return 0.0
    return sum(cpu_seconds(child) for child in children)


def generate(client: Client, files, settings: dict, pollers: int, hz: float, pid: int) -> tuple[float, list[float], float, float]:
    """The daemon's generation seconds for one job with `pollers` clients polling meanwhile, the
    poll latencies, and the CPU seconds of the daemon process and of its worker process over the job."""
    cpu, worker = cpu_seconds(pid), worker_cpu_seconds(pid)
    job = client.submit(files, settings)
    stop = threading.Event()
    latencies: list[float] = []

    def poll():
        own = Client(client.url)
        while not stop.is_set():
            t = time.perf_counter()
            own.job(job["id"])
            latencies.append(time.perf_counter() - t)
            stop.wait(max(0.0, 1 / hz - (time.perf_counter() - t)))

    threads = [threading.Thread(target=poll, daemon=True) for _ in range(pollers)]
    for thread in threads:
        thread.start()
    client.wait(job["id"], interval=0.25)
    stop.set()
    for thread in threads:
        thread.join()
    cpu, worker = cpu_seconds(pid) - cpu, worker_cpu_seconds(pid) - worker
    manifest = client.manifest(job["id"])
    client.delete(job["id"])
    return manifest["timings"]["generate_s"], latencies, cpu, worker


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the tiny test checkpoint)")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--work-size", type=int, help="short side the model runs at (larger: more arithmetic per step)")
    parser.add_argument("--pairs", type=int, default=8, help="alternating (no pollers, pollers) runs")
    parser.add_argument("--pollers", type=int, default=20)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--latency-runs", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = args.model
        if model is None:
            model = str(tmp / "tiny")
            subprocess.run([sys.executable, "-m", "latentween.testing.tiny", model], check=True, capture_output=True)
        files = keyframes(tmp)
        env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
        with DaemonProcess(["--model", model, "--state-dir", tmp / "state"], env=env) as daemon:
            client = Client(daemon.url, timeout=30)
            while not client.health()["loaded"]:
                if client.health()["model_error"]:
                    raise SystemExit(f"error: {client.health()['model_error']}")
                time.sleep(0.1)
            health = client.health()
            settings = {"frames": args.frames, "steps": args.steps, "candidates": 1, "seed": 1}
            if args.work_size:
                settings["work_size"] = args.work_size
            print(f"latentween daemon benchmark: model {model}, device {health['device']}, "
                  f"{args.frames} frames x {args.steps} steps, work size {args.work_size or 'native'}, OMP_NUM_THREADS={env['OMP_NUM_THREADS']}, "
                  f"{os.cpu_count()} CPUs")

            # 1. submit -> first events (warm daemon, empty queue)
            generate(client, files, settings, 0, args.hz, daemon.pid)  # warm-up: first-run allocations, caches
            to_running, to_progress = [], []
            for run in range(args.latency_runs):
                started = time.perf_counter()
                job = client.submit(files, {**settings, "seed": 100 + run})
                running, progress = first_events(daemon.url, job["id"], started)
                to_running.append(running)
                to_progress.append(progress)
                client.cancel(job["id"])
                while client.job(job["id"])["state"] == "running":
                    time.sleep(0.02)
                client.delete(job["id"])
            print(f"submit -> running state event: median {statistics.median(to_running) * 1000:.0f} ms "
                  f"(runs: {', '.join(f'{x * 1000:.0f}' for x in to_running)} ms)")
            print(f"submit -> first progress event: median {statistics.median(to_progress) * 1000:.0f} ms "
                  f"(runs: {', '.join(f'{x * 1000:.0f}' for x in to_progress)} ms)")

            # 2. generation with and without pollers, alternating
            quiet, busy, ratios, latencies, extra_cpu, worker_cpu = [], [], [], [], 0.0, ([], [])
            for _ in range(args.pairs):
                a, _, cpu_a, worker_a = generate(client, files, settings, 0, args.hz, daemon.pid)
                b, lat, cpu_b, worker_b = generate(client, files, settings, args.pollers, args.hz, daemon.pid)
                quiet.append(a)
                busy.append(b)
                ratios.append(b / a)
                latencies += lat
                extra_cpu += cpu_b - cpu_a
                worker_cpu[0].append(worker_a)
                worker_cpu[1].append(worker_b)
            latencies.sort()
            ratio = statistics.median(ratios)
            print(f"generation, no pollers: {', '.join(f'{x:.2f}' for x in quiet)} s")
            print(f"generation, {args.pollers} clients polling at {args.hz:g} Hz: {', '.join(f'{x:.2f}' for x in busy)} s "
                  f"({len(latencies)} polls, latency p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
                  f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms)")
            if sum(worker_cpu[0]) > 0:
                print(f"worker process CPU per job: {statistics.median(worker_cpu[0]):.2f} s without pollers, "
                      f"{statistics.median(worker_cpu[1]):.2f} s with (the rest of any slowdown is waiting for a core)")
            if extra_cpu > 0:
                per_poll = extra_cpu / len(latencies)
                print(f"daemon CPU per poll: {per_poll * 1000:.2f} ms, i.e. {per_poll * args.pollers * args.hz * 100:.0f}% "
                      f"of one core at {args.pollers} x {args.hz:g} Hz")
            print(f"slowdown with pollers: median ratio {ratio:.3f} ({(ratio - 1) * 100:+.1f}%; pairs: "
                  f"{', '.join(f'{r:.3f}' for r in ratios)}); goal: under +5%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
