"""GET /v1/health: what the daemon can do now, with what is wrong when something is."""
from __future__ import annotations

import sqlite3

from latentween import __version__
from latentween.server import schemas
from latentween.server.errors import one_line


def health(service) -> schemas.Health:
    worker, problem = "ok", None
    if service.worker is None or not service.worker.is_alive():
        worker, problem = "stopped", "the worker has stopped: jobs stay queued until the daemon restarts"
    elif service.worker_error is not None:
        worker, problem = "retrying", service.worker_error
    elif service.worker.stalled():
        worker, problem = "stuck", f"the worker has not checked in for {service.worker.silent_s():.0f} s"
    try:
        queued = service.store.count("queued")
    except sqlite3.Error as exc:
        queued, problem = None, problem or f"the job database cannot be read: {one_line(exc)}"
    # only a worker that is gone means no job will run (503); stuck may be a very slow model load
    status = "ok" if problem is None else "down" if worker == "stopped" else "degraded"
    return schemas.Health(status=status, worker=worker, problem=problem, version=__version__, device=service.device,
                          dtype=service.dtype, loaded=list(service.loaded), loading=service.loading,
                          model_error=service.model_error, queue=queued, running=service.running(),
                          default_model=service.config.model, accepts_paths=bool(service.config.allow_roots),
                          executor=service.config.executor,
                          actors=[schemas.Actor(**a) for a in service.worker.actors()] if service.worker else [])
