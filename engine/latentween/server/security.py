"""Who may drive the daemon and what it may read.

- Host: on a loopback bind, only loopback names (and --allow-host) are accepted, so a web page
  that rebinds its own DNS name to 127.0.0.1 gets nothing.
- Origin: browsers send it with cross-site requests; the daemon serves no web pages, so any origin
  not given with --cors-origin is refused (a form POST from a web page included).
- Token: when set, every request needs `Authorization: Bearer <token>` (compared in constant time).
- Size: request bodies are counted as they arrive and cut off at the limit with 413 (JSON bodies,
  POST /v1/jobs included, get the JSON limit; only multipart uploads get the upload limit), and a
  body that stalls longer than --body-timeout is cut off with 408.
- Paths: jobs name server files only under --allow-root, checked on the real path (symlinks and
  `..` resolved), so no name escapes the allowed folders. Lengths are bounded before anything
  resolves a path: realpath's cost grows with the square of the length.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
from pathlib import Path
from typing import Iterable, Optional

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from latentween.models import SINGLE_FILE_SUFFIXES, TOY_MODELS
from latentween.server.config import LOOPBACK_NAMES, ServerConfig, is_loopback
from latentween.server.errors import Forbidden, TimedOut, TooLarge, Unprocessable, one_line, quoted
from latentween.settings import MorphSettings, free_text_fields

UPLOAD_PATHS = {("POST", "/v1/jobs")}


class RequestGuard:
    """Pure ASGI middleware: Host, Origin, bearer token and body size, before any route runs."""

    def __init__(self, app: ASGIApp, config: ServerConfig):
        self.app = app
        self.config = config
        self.token = config.token_value.encode() if config.token_value else None
        self.hosts = allowed_hosts(config)
        self.origins = {o.rstrip("/") for o in config.cors_origins}
        self.upload_limit = 2 * config.max_upload_bytes + config.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        refusal = self.check(scope, headers)
        if refusal is not None:
            status, detail, extra = refusal
            await send_problem(send, status, detail, extra)
            return
        kind = headers.get("content-type", "").split(";")[0].strip().lower()
        upload = (scope["method"], scope["path"]) in UPLOAD_PATHS and kind == "multipart/form-data"
        limit = self.upload_limit if upload else self.config.max_json_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await send_problem(send, 413, _too_large(limit))
            return
        await self._limited(scope, receive, send, limit)

    def check(self, scope: Scope, headers: dict) -> Optional[tuple]:
        if self.hosts is not None:
            host = host_name(headers.get("host", ""))
            if host not in self.hosts:
                return 403, (f"Host {quoted(headers.get('host', ''))} is not this daemon's name; requests must use "
                             f"{sorted(self.hosts)[0]} (or add the name with --allow-host)"), None
        origin = headers.get("origin")
        if origin is not None and origin.rstrip("/") not in self.origins:
            return 403, (f"cross-origin request from {quoted(origin)} refused: web pages may not drive the daemon "
                         f"(allow an origin with --cors-origin)"), None
        if origin is None and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
            return 403, "cross-site request refused: web pages may not drive the daemon", None
        if self.token is not None and not (scope["method"] == "OPTIONS" and origin in self.origins):
            scheme, _, given = headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), self.token):
                return 401, "missing or wrong token: send 'Authorization: Bearer <token>'", [(b"www-authenticate", b"Bearer")]
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        received = 0
        complete = started = False
        stall = self.config.body_timeout

        async def counting_receive() -> Message:
            nonlocal received, complete
            if complete:  # the body is in: what follows is a wait for the client to go (SSE), not a stall
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), stall)
            except asyncio.TimeoutError:
                raise TimedOut(f"the request body stalled for more than {stall:g} s (--body-timeout)") from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise TooLarge(_too_large(limit))
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except (TooLarge, TimedOut) as exc:
            if started:
                raise
            await send_problem(send, exc.status, str(exc))


def _too_large(limit: int) -> str:
    return f"request body is larger than the daemon's limit of {limit:,} bytes"


async def send_problem(send: Send, status: int, detail: str, extra_headers: Optional[list] = None) -> None:
    body = problem_body(detail)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


def problem_body(detail: str) -> bytes:
    return json.dumps({"detail": one_line(detail)}).encode()


def host_name(header: str) -> str:
    """'127.0.0.1:8642' -> '127.0.0.1', '[::1]:8642' -> '::1', lower-cased."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].partition("]")[0]
    return header.rpartition(":")[0] if header.count(":") == 1 else header


def allowed_hosts(config: ServerConfig) -> Optional[set[str]]:
    """Host names accepted, or None for any (a non-loopback bind without --allow-host: the token guards it)."""
    extra = {h.lower().strip("[]") for h in config.allow_hosts}
    if is_loopback(config.host):
        return set(LOOPBACK_NAMES) | {config.host.strip("[]")} | extra
    if extra:
        return set(LOOPBACK_NAMES) | {config.host.lower()} | extra
    return None


# -- server-side paths ------------------------------------------------------------------------

PATH_MAX, NAME_MAX = 4096, 255  # Linux's, in bytes; longer can name no file, and costs time to resolve


def contained_path(spec: str, roots: Iterable[Path], shown: Optional[str] = None) -> Path:
    """The real path of `spec` if it lies inside one of `roots`; Forbidden otherwise. `shown` is what
    the client sent, named in refusals (never the resolved path: it would tell the daemon's folders)."""
    shown = quoted(spec if shown is None else shown)
    roots = list(roots)
    if not roots:
        raise Forbidden("server-side paths are turned off on this daemon: upload the files instead, "
                        "or start it with --allow-root DIR")
    if "\x00" in spec:
        raise Unprocessable("path contains a NUL byte")
    try:
        encoded = os.fsencode(spec)
    except UnicodeEncodeError:
        raise Unprocessable(f"path {shown} is not valid text") from None
    if len(encoded) > PATH_MAX:
        raise Unprocessable(f"path {shown} is longer than {PATH_MAX} bytes")
    if any(len(part) > NAME_MAX for part in encoded.split(b"/")):
        raise Unprocessable(f"path {shown} has a name longer than {NAME_MAX} bytes")
    path = Path(spec).expanduser()
    if not path.is_absolute():
        raise Unprocessable(f"server path {shown} must be absolute")
    real = Path(os.path.realpath(path))
    for root in roots:
        if real == root or root in real.parents:
            return real
    raise Forbidden(f"path {shown} is outside the folders this daemon may read (--allow-root)")


def _looks_local(value: str) -> bool:
    if value.startswith(("/", "~", ".")) or value.lower().endswith(SINGLE_FILE_SUFFIXES):
        return True
    try:
        return Path(value).exists()  # relative names resolve against the daemon's folder
    except (OSError, ValueError):
        return True


# Settings that hold free text (marked in settings.py); every other text setting may name files
# (models, pose or point JSON)
FREE_TEXT = free_text_fields(MorphSettings)
# What a setting may name besides a file under the roots: a hub id (owner/name), an open_clip tag
# (ViT-L-14:openai) or a word (auto, none). No URL: the daemon fetches nothing a client points it at.
_NAME = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?(:[\w.-]{1,96})?", re.ASCII)


def _text_settings(settings):
    """(name, text) of every text setting, list items included; a LoRA's ':scale' is not part of its path."""
    from latentween.lora import parse

    for name, value in settings:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                yield name, parse(item)[0] if name == "lora" else item


def check_settings_paths(settings, config: ServerConfig) -> None:
    """Settings that name files follow the same rule as keyframe paths: inside --allow-root. A model
    file can hold pickled code, so this is not only about reading. Fails closed: a text setting added
    later is checked unless it is listed as free text, and what is neither a name nor a path is refused."""
    trusted = {config.model, *TOY_MODELS}
    for name, value in _text_settings(settings):
        if name in FREE_TEXT or value in trusted:
            continue
        if len(value) > PATH_MAX:
            raise Unprocessable(f"{name} {quoted(value)} is longer than {PATH_MAX} characters")
        for part in [value] if _looks_local(value) else value.split(","):
            part = part.strip()
            if not part or part in trusted:
                continue
            if "://" in part:
                raise Unprocessable(f"{name} {quoted(part)} is a URL: name a hub id like owner/name, or a file "
                                    f"under the folders this daemon may read (--allow-root)")
            if _looks_local(part):
                contained_path(str(Path(part).expanduser().absolute()), config.allow_roots, shown=part)
            elif not _NAME.fullmatch(part):
                raise Unprocessable(f"{name} {quoted(part)} is neither a hub id like owner/name nor a path "
                                    f"under the folders this daemon may read (--allow-root)")
