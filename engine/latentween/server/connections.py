"""The HTTP connections of `latentween serve`: uvicorn's h11 protocol, with what a daemon that may be
reachable from a network needs and uvicorn does not do by itself.

- A deadline on the request head (--header-timeout): a client that connects and sends nothing, or
  sends its headers a byte at a time, is answered 408 and closed, so half-open connections cannot
  pile up. uvicorn only times out idle kept-alive connections.
- A cap on open connections (--max-connections, lowered to fit the file limit, `ulimit -n`): past it,
  the connection that has waited longest for its request head is closed, so a flood of idle
  connections never locks out a client that sends its request at once, and the daemon never runs
  out of file descriptors for its own files.
- uvicorn's own refusals (a malformed request) as JSON, like every other refusal.
"""
from __future__ import annotations

import errno
import logging
import time
from collections import OrderedDict
from http import HTTPStatus

from uvicorn.protocols.http.h11_impl import H11Protocol

from latentween.server.config import ServerConfig
from latentween.server.security import problem_body

log = logging.getLogger("latentween.server")
KEEP_ALIVE_S = 20
# File descriptors kept for the daemon's own use besides connections: the database and its journal,
# the worker's pipe, uploads spooled to disk, files being downloaded, libraries.
FD_RESERVE = 48


def connection_cap(wanted: int) -> int:
    """--max-connections, lowered so that connections, plus a burst accepted at once, fit the file limit."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # Windows: no such limit to fit
        return wanted
    if soft == resource.RLIM_INFINITY:
        return wanted
    return max(4, min(wanted, (soft - FD_RESERVE) // 2))


def protocol_class(config: ServerConfig, cap: int) -> type:
    # connections whose request head has not arrived (new ones, idle kept-alive ones), oldest first
    waiting: OrderedDict = OrderedDict()

    class GuardedH11Protocol(H11Protocol):
        def connection_made(self, transport) -> None:
            self._head_timer = None
            super().connection_made(transport)
            self._expect_head(config.header_timeout)
            if len(self.connections) > cap:
                next(iter(waiting))._refuse(503, "too many open connections: this one waited longest for its request")

        def handle_events(self) -> None:
            cycle = self.cycle
            super().handle_events()
            if self.cycle is not cycle:  # a request head arrived
                self._head_arrived()

        def on_response_complete(self) -> None:
            if not self.transport.is_closing():  # kept alive: the next head has keep-alive's time and ours
                self._expect_head(KEEP_ALIVE_S + config.header_timeout)
            super().on_response_complete()

        def connection_lost(self, exc) -> None:
            self._head_arrived()
            super().connection_lost(exc)

        def send_400_response(self, msg: str) -> None:
            self._refuse(400, "malformed HTTP request")

        def _expect_head(self, seconds: float) -> None:
            self._head_arrived()
            waiting[self] = None
            self._head_timer = self.loop.call_later(seconds, self._head_late)

        def _head_arrived(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            waiting.pop(self, None)

        def _head_late(self) -> None:
            self._head_timer = None
            if self.cycle is None or self.cycle.response_complete:
                self._refuse(408, f"the request head did not arrive within {config.header_timeout:g} s "
                                  f"(--header-timeout)")

        def _refuse(self, status: int, detail: str) -> None:
            """Answer and close; written as bytes, as there is no request (or no valid one) to answer."""
            self._head_arrived()
            if self.transport.is_closing():
                return
            body = problem_body(detail)
            head = (f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
            self.transport.write(head + body)
            self.transport.close()

    return GuardedH11Protocol


def quiet_accept_errors(loop, cap: int) -> None:
    """Out of file descriptors, asyncio logs a traceback for every refused accept and retries a second
    later: one line every ten seconds says it instead."""
    last = [0.0]

    def handler(loop, context) -> None:
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
            if time.monotonic() - last[0] > 10:
                last[0] = time.monotonic()
                log.warning("out of file descriptors: new connections wait (--max-connections %d; raise ulimit -n)", cap)
            return
        loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
