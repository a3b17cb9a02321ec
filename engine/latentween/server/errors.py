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
