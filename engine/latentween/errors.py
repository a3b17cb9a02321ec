"""Errors that cross the engine's edges. Each carries a one-line message meant for the user."""
from contextlib import contextmanager


class LatentweenError(Exception):
    """Base class: the CLI prints `error: <message>` and exits 2; the daemon stores it on the job."""


class InputError(LatentweenError):
    """A keyframe, setting or output location is unusable."""


class ModelError(LatentweenError):
    """A model could not be found, downloaded or loaded."""


class Cancelled(LatentweenError):
    """The caller asked the work to stop."""

    def __init__(self, message: str = "cancelled"):
        super().__init__(message)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its type when it has none), at most `limit` characters."""
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:limit]


@contextmanager
def loading(what: str):
    """Whatever a model library raises while loading `what` becomes one ModelError line naming it
    (diffusers, transformers, open_clip and the hub raise many types); our own errors pass through."""
    try:
        yield
    except LatentweenError:
        raise
    except Exception as exc:
        raise ModelError(f"cannot load {what}: {one_line(exc)}") from exc
