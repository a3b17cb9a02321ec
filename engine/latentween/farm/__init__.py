"""Running the engine on a Ray cluster (docs/farm.md): actors that keep models loaded, and the split of a
render into independent transitions. Everything here imports Ray; nothing else in latentween imports
this package unless Ray was asked for (`serve --executor ray`, `render --ray`), so the core install
does not need it (`pip install 'latentween[ray]'` adds it).

Ray's crash handler must be off before ray is imported (latentween.runtime.RAY_ENVIRONMENT): the CLI,
the daemon and the tests call configure_runtime() before anything imports this package.
"""
from __future__ import annotations

from latentween.errors import InputError

NAMESPACE = "latentween"


def require_ray():
    """Ray itself, or one line saying how to get it."""
    try:
        import ray
    except ImportError as exc:
        raise InputError("Ray is not installed: pip install 'latentween[ray]'") from exc
    return ray


def connect(address: str | None, log_to_driver: bool = False):
    """Join the cluster at `address` ('auto' or HOST:PORT), or with None the one this machine belongs to
    (RAY_ADDRESS, or one `ray start` began here), else start a local one. Idempotent per process."""
    ray = require_ray()
    if not ray.is_initialized():
        # log_to_driver off: actors' own logs stay in Ray's log files and dashboard; what matters to the
        # user (a job's error) comes back through the task's result.
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=log_to_driver, include_dashboard=None,
                 configure_logging=False)
    return ray


def default_actor_count(ray) -> int:
    """One actor per GPU of the cluster; on a cluster without GPUs, one."""
    return max(1, int(ray.cluster_resources().get("GPU", 0)))


def first_line(exc: BaseException) -> str:
    """An error as one line (Ray's errors carry tracebacks)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
