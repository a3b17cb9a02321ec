"""The daemon itself: GET /v1/health and GET /v1/models."""
from __future__ import annotations

from fastapi import APIRouter, Response

from latentween.server.deps import Service
from latentween.server.schemas import Health, Models

router = APIRouter(prefix="/v1", tags=["daemon"])


@router.get("/health", response_model=Health, responses={503: {"model": Health, "description": "no job will run"}},
            summary="version, device, loaded models, queue length, and whether jobs can run")
def health(service: Service, response: Response) -> Health:
    report = service.health()
    if report.status == "down":  # monitors read the status code: a daemon that runs no job is not healthy
        response.status_code = 503
    return report


@router.get("/models", response_model=Models, summary="the default model and the models in memory")
def models(service: Service) -> Models:
    return service.models()
