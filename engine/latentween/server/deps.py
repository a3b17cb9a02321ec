"""Dependencies the routes declare; tests may override them on the app."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from latentween.server.config import ServerConfig
from latentween.server.service import JobService


# async: FastAPI runs plain `def` dependencies in a worker thread, a hop too many for a getter
async def get_service(request: Request) -> JobService:
    return request.app.state.service


async def get_config(request: Request) -> ServerConfig:
    return request.app.state.config


Service = Annotated[JobService, Depends(get_service)]
Config = Annotated[ServerConfig, Depends(get_config)]
