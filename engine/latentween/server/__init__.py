"""The latentween daemon (`latentween serve`): FastAPI routes over a job store, a model manager and
one worker per device. Importing this package loads neither FastAPI, torch nor a model: the CLI
reads `server.config` to build its options without them."""
from __future__ import annotations

__all__ = ["create_app", "openapi_schema", "ServerConfig"]


def __getattr__(name: str):
    if name in ("create_app", "openapi_schema"):
        from latentween.server import app

        return getattr(app, name)
    if name == "ServerConfig":
        from latentween.server.config import ServerConfig

        return ServerConfig
    raise AttributeError(name)
