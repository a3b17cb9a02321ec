"""Errors that cross the engine's edges. Each carries a one-line message meant for the user."""


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
