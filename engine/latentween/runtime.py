"""The process-wide state the engine runs under, set once by a program's entry point, never by an import.

Importing latentween (the thin client above all) or building a ModelManager changes nothing in the
process: a host application that imports the engine keeps its own environment and torch settings.
The programs that own their process call `configure_runtime()` first thing: the `latentween` CLI,
the daemon, its worker process (server/child.py), the Ray actors (farm/actors.py) and the test suite.
A library user who wants the CLI's bits calls it too, before anything imports torch.

Two parts, because they must happen at different times:
- environment variables that libraries read once, when they load: OpenMP's wait policy
  (latentween.threads) and Ray's crash handler (latentween.farm). They are defaults only: a value the
  user set is kept. They must be set before torch (or Ray) is imported, so the CLI sets them before
  it knows whether the command needs torch at all.
- torch's flags for repeatable CUDA kernels, which need torch imported; a process that never runs
  the engine (a client command, the daemon's HTTP side) skips them with `torch=False`.
"""
from __future__ import annotations

import os
from typing import MutableMapping, Optional

from latentween.threads import set_wait_policy

# Ray's crash handler answers SIGTERM with a stack dump and ends the process with it, so the daemon's
# clean stop (which re-queues the running job) ends in a "crash". Ray reads this when it is imported.
RAY_ENVIRONMENT = {"RAY_DISABLE_FAILURE_SIGNAL_HANDLER": "1"}


def configure_environment(environ: Optional[MutableMapping[str, str]] = None) -> None:
    """The environment part: defaults for what OpenMP and Ray read once at load; set values are kept."""
    environ = os.environ if environ is None else environ
    set_wait_policy(environ)
    for name, value in RAY_ENVIRONMENT.items():
        environ.setdefault(name, value)


def configure_torch() -> None:
    """Same shapes, same software, same machine: same bits on CUDA too (docs/determinism.md). Only what
    CUDA needs: the CPU keeps its fastest convolutions, since the pipeline fixes every chunk's
    composition instead (plan.level_chunks). The flags are process-wide, hence here and not in the
    model manager: set per manager, one host's manager would change another's kernels."""
    import torch

    torch.backends.cudnn.benchmark = False  # autotuning may pick another algorithm next run
    torch.backends.cudnn.deterministic = True


def configure_runtime(torch: bool = True) -> None:
    """Everything process-wide, idempotent. `torch=False`: only the environment, without loading torch."""
    configure_environment()
    if torch:
        configure_torch()
