"""What bit-identity of a job's frames rests on (docs/determinism.md), recorded in every manifest."""
from __future__ import annotations

import os


def reproducibility(device, dtype, max_batch: int) -> dict:
    """What bit-identity of a job's frames rests on (docs/determinism.md): software, device, dtype,
    the chunking (max_batch) and, on the CPU, the threads and kernel selection. A resume that finds
    other values here keeps the finished frames, warns, and makes the rest within tolerance."""
    import diffusers
    import torch

    record = {"torch": torch.__version__, "diffusers": diffusers.__version__, "device": str(device),
              "device_name": _device_name(device), "dtype": str(dtype).replace("torch.", ""), "max_batch": max_batch}
    if device.type == "cpu":
        record["threads"] = torch.get_num_threads()
        record["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        record.update({key.lower(): os.environ[key] for key in ("MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS") if key in os.environ})
    return record


def _device_name(device) -> str:
    import platform

    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
