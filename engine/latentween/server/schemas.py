"""What the API sends and receives. Job settings are `MorphSettings` itself, never a copy of its fields."""
from __future__ import annotations

from datetime import datetime
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

from latentween.progress import Progress  # noqa: F401 (the engine's, as the API shows it)
from latentween.settings import MorphSettings

JobState = Literal["queued", "running", "awaiting-choice", "done", "failed", "cancelled"]
ACTIVE_STATES = ("running", "awaiting-choice")
FINAL_STATES = ("done", "failed", "cancelled")


class InputInfo(BaseModel):
    source: str = Field(description="file name of an upload, or the server path (path@frame for a video frame)")
    sha256: str
    width: int
    height: int


class Awaiting(BaseModel):
    """The frame whose candidates wait for POST .../choose."""

    frame: int
    candidates: int


class Job(BaseModel):
    id: str
    state: JobState
    created: datetime
    started: Optional[datetime] = None
    finished: Optional[datetime] = None
    settings: MorphSettings
    inputs: list[InputInfo]
    progress: Progress
    eta_s: Optional[float] = Field(None, description="seconds until the job is done, estimated from its pace so far")
    error: Optional[str] = Field(None, description="why the job failed, in one line")
    frame_count: int = Field(description="frames the job makes, keyframes included")
    frames: list[int] = Field(description="indices of finished frames: GET /v1/jobs/{id}/frames/{index}")
    awaiting: Optional[Awaiting] = None
    cancel_requested: bool = False
    queue_position: Optional[int] = Field(None, description="jobs ahead of this one (queued jobs only)")


class JobList(BaseModel):
    jobs: list[Job]


class JobRequest(BaseModel):
    """Body of POST /v1/jobs as JSON: keyframes named by server paths (under --allow-root)."""

    model_config = ConfigDict(extra="forbid")

    keyframes: list[str] = Field(min_length=2, max_length=2,
                                 description="two absolute paths on the server, or path@frame for a video frame")
    settings: MorphSettings = Field(default_factory=MorphSettings,
                                    description="job settings; an omitted model means the daemon's --model")


class RerollRequest(BaseModel):
    """Body of POST /v1/jobs/{id}/reroll."""

    model_config = ConfigDict(extra="forbid")

    frames: list[int] = Field(min_length=1, max_length=4096, description="generated frames to make again, each "
                              "with its next take; every other frame is kept as the job made it")


class Candidate(BaseModel):
    index: int
    url: str


class Candidates(BaseModel):
    frame: int
    candidates: list[Candidate]


class Choice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    frame: int = Field(ge=0, description="the frame being chosen for (must be the awaited one)")
    candidate: int = Field(ge=0, description="index of the kept candidate")


class Actor(BaseModel):
    """What runs jobs: the local worker process, or one Ray actor (its name in `ray list actors`)."""

    name: str
    pid: Optional[int] = Field(None, description="its process id (a restarted Ray actor gets a new one)")
    node: Optional[str] = Field(None, description="the Ray node it runs on")
    state: Literal["starting", "alive", "restarting", "dead"]
    job: Optional[str] = Field(None, description="id of the job it runs")


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"] = Field(
        "ok", description="down (answered with HTTP 503): no job will run; degraded: jobs may fail, see problem")
    worker: Literal["ok", "retrying", "stuck", "stopped"] = Field(
        "ok", description="retrying: the job database cannot be written (a full disk?); stuck: the worker has not "
                          "checked in for a minute; stopped: the worker is gone")
    problem: Optional[str] = Field(None, description="what is wrong, in one line, when status is not ok")
    version: str
    device: str
    dtype: str
    loaded: list[str] = Field(description="models in memory, most recently used last")
    loading: Optional[str] = Field(None, description="model being loaded now")
    model_error: Optional[str] = Field(None, description="why the start-up model could not be loaded")
    queue: Optional[int] = Field(description="jobs waiting (null when the job database cannot be read)")
    running: Optional[str] = Field(None, description="id of the job being worked on")
    default_model: str = Field(description="the model a job gets when it names none")
    accepts_paths: bool = Field(description="whether keyframes may be named by server paths (--allow-root given)")
    executor: Literal["local", "ray"] = Field("local", description="what runs the jobs (serve --executor)")
    actors: list[Actor] = Field(default_factory=list, description="the worker process, or the Ray actors")


class ModelInfo(BaseModel):
    spec: str
    default: bool
    loaded: bool


class Models(BaseModel):
    models: list[ModelInfo]
    max_loaded: int


class Problem(BaseModel):
    """Every refusal: one line saying what was wrong."""

    detail: str
