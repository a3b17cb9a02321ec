"""CPU threads for the engine: how many, and how idle ones wait (issue 19, point 1).

Two separate choices, measured by benchmarks/busy_cpu.py:

- The wait policy. OpenMP threads that finish early spin at each barrier by default; when another
  program holds a core, the spinning threads keep the one they wait for off the CPU and a job runs
  many times slower. PASSIVE (and KMP_BLOCKTIME=0 for Intel's runtime) makes them sleep instead. It
  only changes scheduling, never a result, and OpenMP reads it once when torch loads, so the entry
  points set it (latentween.runtime.configure_runtime) before anything imports torch, unless the
  user's environment already does.
- The thread count. It can change the low bits of CPU results (docs/determinism.md; the manifest's
  `reproducibility` records it), so it is chosen from the job and the machine's core count, never
  from the momentary load: the same job on the same machine always runs with the same count.
  Small UNets (the toy and test models) do too little work per operation to gain from threads and
  get one; larger ones get every physical core. `--threads N` overrides, and so does
  $OMP_NUM_THREADS (the daemon's worker and `serve --workers` set it per process).
"""
from __future__ import annotations

import os
from typing import Optional

WAIT_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}
# Below this many UNet weights (the toy: 1.7M, SD 1.5: 860M) each operation is too small to split:
# on 2 cores with the PASSIVE policy the toy job took the same time on 1 and 2 threads under load
# (benchmarks/busy_cpu.py), and on many cores waking every thread per tiny operation costs more than
# it saves; one thread also makes the toy's results the same on every machine.
SMALL_UNET_PARAMETERS = 50_000_000


def set_wait_policy(environ=None) -> None:
    """Idle OpenMP threads sleep instead of spinning; a value the user set is kept."""
    environ = os.environ if environ is None else environ
    for name, value in WAIT_POLICY.items():
        environ.setdefault(name, value)


def physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except ImportError:
        return os.cpu_count() or 1


def choose_threads(requested: Optional[int], unet_parameters: int, cores: Optional[int] = None) -> Optional[int]:
    """Threads for a job: `requested`, else None (leave torch alone) when $OMP_NUM_THREADS says, else by
    the UNet's size and the core count (module docstring)."""
    if requested:
        return requested
    if os.environ.get("OMP_NUM_THREADS", "").strip():
        return None
    if unet_parameters < SMALL_UNET_PARAMETERS:
        return 1
    return cores or physical_cores()


_TORCH_DEFAULT: Optional[int] = None


def apply_threads(requested: Optional[int], unet) -> None:
    """Set torch's intra-op threads for a job on the CPU (run_morph calls it after loading the model)."""
    global _TORCH_DEFAULT
    import torch

    if _TORCH_DEFAULT is None:
        _TORCH_DEFAULT = torch.get_num_threads()  # torch's count of physical cores, before anything changes it
    threads = choose_threads(requested, sum(p.numel() for p in unet.parameters()), cores=_TORCH_DEFAULT)
    if threads is not None and threads != torch.get_num_threads():
        torch.set_num_threads(threads)
