"""Refusals of the daemon's service layer; app.py turns each into its HTTP status with `detail`."""
from __future__ import annotations


class ServiceError(Exception):
    """A one-line reason the request cannot be done; `status` is the HTTP answer."""

    status = 400


class NotFound(ServiceError):
    status = 404


class Forbidden(ServiceError):
    status = 403


class Conflict(ServiceError):
    status = 409


class TooLarge(ServiceError):
    status = 413


class Unsupported(ServiceError):
    status = 415


class Unprocessable(ServiceError):
    status = 422


class QueueFull(ServiceError):
    status = 429


class NotImplementedHere(ServiceError):
    status = 501


class InsufficientStorage(ServiceError):
    status = 507


class TimedOut(ServiceError):
    status = 408


class Unavailable(ServiceError):
    status = 503


# A refusal is read by people and kept in logs: it names the input, it never echoes a megabyte of it.
MAX_DETAIL = 500


def quoted(value: str, limit: int = 80) -> str:
    """`value` as repr, cut to a short prefix when long."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


def one_line(text: str) -> str:
    """Any message as one line of at most MAX_DETAIL characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_DETAIL else text[:MAX_DETAIL - 3] + "..."
