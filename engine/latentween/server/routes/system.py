"""The daemon itself: GET /v1/health and GET /v1/models."""
from __future__ import annotations

from fastapi import APIRouter

from latentween.server.deps import Service
from latentween.server.schemas import Health, Models

router = APIRouter(prefix="/v1", tags=["daemon"])


@router.get("/health", response_model=Health, summary="version, device, loaded models, queue length")
def health(service: Service) -> Health:
    return service.health()


@router.get("/models", response_model=Models, summary="the default model and the models in memory")
def models(service: Service) -> Models:
    return service.models()
