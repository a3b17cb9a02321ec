"""`create_app(config)`: the FastAPI application of `latentween serve`.

Nothing heavy happens at import or in `create_app`: the job store, the model manager (torch) and
the worker start in the lifespan, so `--print-openapi` and tests of the schema stay light.
"""
from __future__ import annotations

import json
import logging
import sqlite3
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from latentween import __version__
from latentween.errors import LatentweenError
from latentween.server.config import ServerConfig
from latentween.server.errors import ServiceError, one_line
from latentween.server.routes import jobs, system
from latentween.server.security import RequestGuard

log = logging.getLogger("latentween.server")
DESCRIPTION = ("Keeps diffusion models loaded and makes in-between frames for thin clients (the Blender add-on, "
               "the OFX plugin, `latentween submit`). Every request may be polled; SSE is optional.")


def create_app(config: ServerConfig, service=None) -> FastAPI:
    """`service`: a JobService already opened (`latentween serve` opens it first, so that a locked or
    unwritable state directory is one line, not a traceback from inside the HTTP server's start-up)."""
    prepared = service

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from starlette.concurrency import run_in_threadpool

        from latentween.server.service import JobService

        service = prepared or JobService(config)
        try:
            await run_in_threadpool(service.start)
        except (LatentweenError, OSError, RuntimeError) as exc:
            app.state.startup_error = str(exc)
            raise
        app.state.service = service
        try:
            yield
        finally:
            await run_in_threadpool(service.stop)

    # The daemon serves no web pages: no /docs (it would also load scripts from a CDN).
    app = FastAPI(title="latentween daemon", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/v1/openapi.json",
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.state.config = config
    app.openapi = lambda: _openapi(app)
    app.state.startup_error = None
    app.include_router(system.router)
    app.include_router(jobs.router)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(LatentweenError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sqlite3.Error, _database_error)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(RequestGuard, config=config)
    if config.cors_origins:
        # added last, so it is outermost: preflights are answered before the token check
        app.add_middleware(_cors_middleware(), allow_origins=config.cors_origins,
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Authorization", "Content-Type"])
    return app


def _cors_middleware():
    from fastapi.middleware.cors import CORSMiddleware

    class JSONCORSMiddleware(CORSMiddleware):
        """Starlette's, with its refused preflights answered like every other refusal: JSON, one line."""

        def preflight_response(self, request_headers):
            response = super().preflight_response(request_headers)
            if response.status_code < 400:
                return response
            kept = {k: v for k, v in response.headers.items() if k.startswith("access-control-") or k == "vary"}
            detail = f"preflight refused: {response.body.decode('utf-8', 'replace').lower()}"
            return JSONResponse({"detail": one_line(detail)}, status_code=response.status_code, headers=kept)

    return JSONCORSMiddleware


async def _service_error(request: Request, exc: ServiceError) -> JSONResponse:
    return JSONResponse({"detail": one_line(exc)}, status_code=exc.status)


async def _input_error(request: Request, exc: LatentweenError) -> JSONResponse:
    return JSONResponse({"detail": one_line(exc)}, status_code=422)


async def _database_error(request: Request, exc: sqlite3.Error) -> JSONResponse:
    """The job database failed under a request: a full disk is the likely cause, and says so."""
    log.error("job database error in %s %s: %s", request.method, request.url.path, one_line(exc))
    if "full" in str(exc).lower():
        return JSONResponse({"detail": "the daemon's disk is full: the job database cannot be written; free space "
                                       "(DELETE finished jobs) and try again"}, status_code=507)
    return JSONResponse({"detail": one_line(f"the job database failed: {exc}")}, status_code=503)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    """A bug: the traceback goes to the log (uvicorn prints it), the client gets one line."""
    return JSONResponse({"detail": one_line(f"internal error: {type(exc).__name__}: {exc}")}, status_code=500)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """One line, like every other refusal: 'query.limit: Input should be less than or equal to 1000'."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return JSONResponse({"detail": one_line("; ".join(parts[:5])) or "invalid request"}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return JSONResponse({"detail": one_line(detail)}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


def _openapi(app: FastAPI) -> dict:
    """FastAPI's schema, plus the JSON body of POST /v1/jobs (parsed by hand, as it is one of two
    content types) and with 422 answers documented as what they are: a one-line Problem."""
    if app.openapi_schema:
        return app.openapi_schema
    from fastapi.openapi.utils import get_openapi

    from latentween.server.schemas import JobRequest, Problem

    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    request = JobRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in request.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["JobRequest"] = request
    components["Problem"] = Problem.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    for operations in schema["paths"].values():
        for operation in operations.values():
            if "422" in operation.get("responses", {}):
                operation["responses"]["422"] = {"description": "Unprocessable request",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    app.openapi_schema = schema
    return schema


def openapi_schema() -> dict:
    """The committed docs/openapi.json: the schema of an app with default settings."""
    return create_app(ServerConfig()).openapi()
