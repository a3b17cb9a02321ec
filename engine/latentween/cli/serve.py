"""`latentween serve`: the daemon that keeps models loaded and runs jobs for thin clients."""
from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sys

from pydantic import ValidationError

from latentween.cli.options import add_model_arguments, model_from_args
from latentween.errors import InputError, LatentweenError
from latentween.settings import RuntimeSettings

_LISTS = {"allow_root": "allow_roots", "allow_host": "allow_hosts", "cors_origin": "cors_origins"}


def register(sub) -> None:
    from latentween.server.config import ServerConfig

    parser = sub.add_parser("serve", help="run the daemon that makes frames for the Blender add-on, OFX plugin and submit",
                            description="Keep models loaded and run interpolation jobs submitted over HTTP "
                                        "(see docs/daemon.md). Listens on 127.0.0.1:8642 unless told otherwise.")
    daemon = parser.add_argument_group("daemon")
    add_model_arguments(daemon, ServerConfig, exclude=("runtime", "token", *_LISTS.values()))
    daemon.add_argument("--token", default=None, help=ServerConfig.model_fields["token"].description)
    daemon.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                        help="folder whose files jobs may name by path (repeatable; default: none, uploads only)")
    daemon.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="extra Host header name to accept, e.g. the GPU box's name (repeatable)")
    daemon.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                        help="web origin allowed to call the API, e.g. http://localhost:3000 (repeatable; default: none)")
    daemon.add_argument("--print-openapi", action="store_true", help="print the OpenAPI schema (docs/openapi.json) and exit")
    add_model_arguments(parser, RuntimeSettings, title="runtime")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from latentween.server.config import ServerConfig

    if args.print_openapi:
        from latentween.server import openapi_schema

        print(json.dumps(openapi_schema(), indent=2))
        return 0
    values = {name: getattr(args, name) for name in ServerConfig.model_fields if getattr(args, name, None) is not None}
    values.update({field: getattr(args, flag) for flag, field in _LISTS.items()})
    values["token"] = args.token or os.environ.get("LATENTWEEN_TOKEN") or None
    values["runtime"] = model_from_args(RuntimeSettings, args)
    try:
        config = ServerConfig(**values)
    except ValidationError as exc:
        raise InputError("; ".join((f"--{e['loc'][0].replace('_', '-')}: " if e.get("loc") else "")
                                   + e["msg"].removeprefix("Value error, ") for e in exc.errors())) from exc
    return serve(config)


def serve(config) -> int:
    from latentween.runtime import configure_runtime

    # First, before the executor imports torch or ray. torch's flags only where this process runs jobs
    # itself: a worker process or a Ray actor sets its own.
    configure_runtime(torch=config.executor == "local" and not config.isolate)

    import asyncio

    import uvicorn

    from latentween.server import create_app
    from latentween.server.connections import KEEP_ALIVE_S, connection_cap, protocol_class, quiet_accept_errors
    from latentween.server.service import JobService

    _log_jobs()
    sock = _listen(config.host, config.port)
    service = JobService(config)
    service.open()  # a locked or unwritable state directory: one line here, not a traceback from uvicorn
    app = create_app(config, service)
    port = sock.getsockname()[1]
    host = f"[{config.host}]" if ":" in config.host else config.host
    cap = connection_cap(config.max_connections)

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            quiet_accept_errors(asyncio.get_running_loop(), cap)
            await super().startup(sockets=sockets)
            if self.started:
                print(f"latentween daemon listening on http://{host}:{port} (state: {config.state_dir}, "
                      f"model: {config.model})", file=sys.stderr, flush=True)

    # limit_concurrency only backs the cap up (the protocol closes connections past it, JSON first);
    # the backlog bounds how many connections one wake-up of the loop accepts at once.
    server = Server(uvicorn.Config(app, http=protocol_class(config, cap), log_level="warning",
                                   access_log=config.access_log, lifespan="on", timeout_graceful_shutdown=10,
                                   timeout_keep_alive=KEEP_ALIVE_S, limit_concurrency=cap + 1, backlog=min(cap, 128)))
    server.run(sockets=[sock])
    if not server.started:
        raise LatentweenError(app.state.startup_error or "the daemon could not start (see the messages above)")
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """Bind here, so a busy port is one clear error line (uvicorn would log a traceback)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        raise LatentweenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sock.set_inheritable(True)
    return sock


def _log_jobs() -> None:
    """Job events (queued, done, failed) on stderr with a time stamp."""
    logger = logging.getLogger("latentween.server")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
