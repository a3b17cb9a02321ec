"""Jobs: submit, list, watch (poll or SSE), download frames and video, cancel, delete, choose."""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable
from typing import Literal, Optional

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from latentween.server import inputs
from latentween.server.deps import Config, Service
from latentween.server.errors import ServiceError, Unprocessable, Unsupported, one_line, quoted
from latentween.server.schemas import (FINAL_STATES, Candidates, Choice, Job, JobList, JobRequest, JobState,
                                       RerollRequest)
from latentween.server.video import video_file
from latentween.settings import MorphSettings

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
PNG = {"content": {"image/png": {}}, "description": "PNG image"}
_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
ERRORS = {code: {"description": text, "content": _PROBLEM} for code, text in (
    (401, "no or wrong token"), (403, "refused: Host, Origin or a path outside the allowed roots"),
    (404, "no such job, frame or file"), (409, "not possible in the job's state"), (413, "too large"),
    (415, "unsupported content type"), (422, "invalid settings or keyframes"), (429, "the queue is full"))}

_MULTIPART = {
    "type": "object",
    "required": ["keyframes"],
    "properties": {
        "keyframes": {"type": "array", "minItems": 2, "maxItems": 2, "description": "two parts, each an image "
                      "file, or text naming a server path (see the JSON form)",
                      "items": {"anyOf": [{"type": "string", "format": "binary"}, {"type": "string"}]}},
        "settings": {"type": "string", "description": "MorphSettings as JSON text (optional)"},
    },
}
_SUBMIT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/JobRequest"}},
    "multipart/form-data": {"schema": _MULTIPART}}}}


def describe(exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as one line naming each field: 'settings.frames: Input should be ...'."""
    parts = []
    for error in exc.errors():
        loc = ".".join(str(p) for p in error.get("loc", ()))
        where = f"{prefix}{loc}" if loc else (prefix.rstrip(".") or "body")
        parts.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return one_line("; ".join(parts[:5]))  # a message may quote the input: keep it short


@router.post("", response_model=Job, status_code=201, responses=ERRORS, openapi_extra=_SUBMIT_BODY,
             summary="submit a job: keyframes uploaded (multipart) or named by server path (JSON)")
async def submit(request: Request, service: Service, config: Config) -> Job:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            body = JobRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            raise Unprocessable(describe(exc)) from exc
        settings, specs = body.settings, body.keyframes

        def load():
            return [inputs.from_server_path(spec, config) for spec in specs]
    elif kind == "multipart/form-data":
        try:
            form = await request.form(max_files=2, max_fields=3, max_part_size=config.max_json_bytes)
        except HTTPException as exc:
            raise ServiceError(f"malformed multipart/form-data body: {str(exc.detail).rstrip('.')}") from exc
        try:
            parts = form.getlist("keyframes")
            if len(parts) != 2:
                raise Unprocessable(f"keyframes: send exactly 2 parts named 'keyframes', got {len(parts)}")
            try:
                settings = MorphSettings.model_validate_json(form.get("settings") or "{}")
            except ValidationError as exc:
                raise Unprocessable(describe(exc, "settings.")) from exc
            uploads = [(await p.read(), p.filename) if isinstance(p, UploadFile) else p for p in parts]
        finally:
            await form.close()

        def load():
            return [inputs.from_upload(p[0], p[1], config) if isinstance(p, tuple) else inputs.from_server_path(p, config)
                    for p in uploads]
    else:
        raise Unsupported(f"send multipart/form-data (uploads) or application/json (server paths), "
                          f"not {quoted(kind or 'no content type', 60)}")
    return await run_in_threadpool(service.submit, settings, load)


@router.get("", response_model=JobList, summary="jobs on this daemon, oldest first")
def list_jobs(service: Service, state: Optional[JobState] = None,
              limit: int = Query(100, ge=1, le=1000)) -> JobList:
    return JobList(jobs=service.list(state, limit))


@router.get("/{job_id}", response_model=Job, responses=ERRORS, summary="state, progress, ETA, error, finished frames")
async def get_job(job_id: str, service: Service) -> Response:
    # the endpoint clients poll: answered from memory when it can, else read in a worker thread
    body = service.polled_json(job_id)
    if body is None:
        body = await run_in_threadpool(service.job_json, job_id)
    return Response(body, media_type="application/json")


def existing_job(job_id: str, service: Service) -> Job:
    """Checked before a stream starts, so an unknown job is a 404 and not an empty stream."""
    return service.get(job_id)


@router.get("/{job_id}/events", response_class=EventSourceResponse, responses=ERRORS,
            summary="server-sent events: state (the whole job), progress, frame; ends when the job does")
async def events(job_id: str, service: Service, _: Job = Depends(existing_job)) -> AsyncIterable[ServerSentEvent]:
    subscriber = service.subscribe(job_id, asyncio.get_running_loop())
    try:
        job = await run_in_threadpool(service.get, job_id)  # read after subscribing: nothing falls between
        yield ServerSentEvent(event="state", data=job.model_dump(mode="json"))
        if job.state in FINAL_STATES:
            return
        while True:
            kind, data = await subscriber.next()
            yield ServerSentEvent(event=kind, data=data)
            if kind == "end" or (kind == "state" and data.get("state") in FINAL_STATES):
                return
    finally:
        service.unsubscribe(subscriber)


@router.get("/{job_id}/frames/{index}", response_class=FileResponse, responses={200: PNG, **ERRORS},
            summary="a finished frame as PNG")
def get_frame(job_id: str, index: int, service: Service) -> FileResponse:
    return FileResponse(service.frame_file(job_id, index), media_type="image/png")


@router.get("/{job_id}/manifest", responses={200: {"content": {"application/json": {}}}, **ERRORS},
            summary="the job's manifest.json, as `latentween morph` writes it")
def get_manifest(job_id: str, service: Service) -> FileResponse:
    return FileResponse(service.manifest_file(job_id), media_type="application/json")


VIDEO_TYPES = {"mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm"}
_VIDEO = {200: {"content": {t: {} for t in VIDEO_TYPES.values()}, "description": "the video file"},
          501: {"description": "no video support in this installation", "content": _PROBLEM}}


@router.get("/{job_id}/video", response_class=FileResponse, responses={**_VIDEO, **ERRORS},
            summary="the finished frames encoded as one video (PyAV), made once and kept")
def get_video(job_id: str, service: Service, format: Literal["mp4", "mov", "webm"] = "mp4",
              fps: str = Query("24", max_length=20, description="a number or a ratio such as 24000/1001")) -> FileResponse:
    path = video_file(service, job_id, format, fps)
    return FileResponse(path, media_type=VIDEO_TYPES[format], filename=f"{job_id}.{format}")


@router.post("/{job_id}/cancel", response_model=Job, responses=ERRORS,
             summary="stop the job at the next denoising step (finished frames stay)")
def cancel(job_id: str, service: Service) -> Job:
    return service.cancel(job_id)


@router.delete("/{job_id}", status_code=204, responses=ERRORS, summary="cancel if needed and remove the job and its files")
def delete(job_id: str, service: Service) -> Response:
    service.delete(job_id)
    return Response(status_code=204)


@router.get("/{job_id}/candidates", response_model=Candidates, responses=ERRORS,
            summary="the candidates of the frame a choose=manual job waits on")
def candidates(job_id: str, service: Service) -> Candidates:
    return service.candidates(job_id)


@router.get("/{job_id}/candidates/{index}", response_class=FileResponse, responses={200: PNG, **ERRORS},
            summary="one candidate as PNG (at the model's working size)")
def candidate_image(job_id: str, index: int, service: Service) -> FileResponse:
    return FileResponse(service.candidate_file(job_id, index), media_type="image/png")


@router.post("/{job_id}/choose", response_model=Job, responses=ERRORS, summary="keep one candidate and continue")
def choose(job_id: str, choice: Choice, service: Service) -> Job:
    return service.choose(job_id, choice.frame, choice.candidate)


@router.post("/{job_id}/reroll", response_model=Job, status_code=201, responses=ERRORS,
             summary="a new job: this finished job with the named frames made again (next take), the rest kept")
def reroll(job_id: str, body: RerollRequest, service: Service) -> Job:
    from latentween.server.reuse import reroll as make

    return make(service, job_id, body.frames)
