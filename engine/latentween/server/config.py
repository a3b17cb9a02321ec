"""The daemon's own settings: where it listens, where it keeps jobs, what it refuses.

One pydantic model, filled by `latentween serve` (flags and LATENTWEEN_TOKEN) or built directly in
tests, and handed to `create_app`. Job settings are not here: those are `MorphSettings`.
"""
from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from latentween.settings import DEFAULT_MODEL, MAX_FRAMES, RuntimeSettings

DEFAULT_PORT = 8642
MIN_TOKEN_LENGTH = 16
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
MAX_PIXELS = 64_000_000  # latentween.images.MAX_PIXELS: decoding refuses more whatever the daemon allows


def default_state_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("latentween", appauthor=False)) / "daemon"


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


class ServerConfig(BaseModel):
    """What `latentween serve` was started with. Field descriptions are the CLI's help texts."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="address to listen on; anything but loopback needs a token")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port (0: any free port, printed at start)")
    state_dir: Path = Field(None, validate_default=True, description="where jobs, inputs and frames are kept "
                            "(default: the user's data folder, e.g. ~/.local/share/latentween/daemon)")
    model: str = Field(DEFAULT_MODEL, description="model loaded at start and used by jobs that name none")
    token: Optional[SecretStr] = Field(
        None, description="bearer token every request must carry (default: $LATENTWEEN_TOKEN; required off loopback)")
    allow_roots: list[Path] = Field(
        default_factory=list, description="folders whose files jobs may name by path (default: none, uploads only)")
    allow_hosts: list[str] = Field(default_factory=list, description="extra Host header names accepted")
    cors_origins: list[str] = Field(default_factory=list, description="web origins allowed to call the API (default: none)")
    max_loaded: int = Field(1, ge=1, le=16, description="models kept loaded at once (least recently used leaves first)")
    max_queue: int = Field(32, ge=1, le=10_000, description="most jobs waiting; more are refused with 429")
    max_frames: int = Field(1025, ge=2, le=MAX_FRAMES, description="most frames one job may make")
    max_upload_bytes: int = Field(256 * 2**20, ge=1024, description="largest keyframe file accepted, in bytes")
    max_json_bytes: int = Field(2**20, ge=1024, description="largest request body other than uploads, in bytes")
    max_pixels: int = Field(64_000_000, ge=64, le=MAX_PIXELS,
                            description="largest keyframe, and largest output (--size), in pixels (width x height)")
    max_connections: int = Field(256, ge=4, le=65_536, description="open connections at most (fewer if the file "
                                 "limit, ulimit -n, is low); past it, the oldest connection still sending its request "
                                 "head is closed")
    header_timeout: float = Field(10.0, gt=0, le=3600, description="seconds a client has to send a request's line "
                                  "and headers; slower connections are answered 408 and closed")
    body_timeout: float = Field(30.0, gt=0, le=3600, description="seconds a request body may stall before the "
                                "request is answered 408")
    preload: bool = Field(True, description="load the model at start rather than with the first job")
    isolate: bool = Field(True, description="generate in a worker process, so serving requests never slows it "
                          "(off: in a thread of the daemon)")
    access_log: bool = Field(False, description="log every request (polling clients make this noisy)")
    executor: Literal["local", "ray"] = Field(
        "local", description="what runs jobs: local (a worker process) or ray (actors of a Ray cluster, one job per "
                             "actor at a time; pip install 'latentween[ray]', docs/farm.md)")
    ray_address: Optional[str] = Field(
        None, description="with --executor ray: the cluster to join, auto or HOST:PORT (default: the one this machine "
                          "belongs to, else a new local one)")
    ray_actors: Optional[int] = Field(None, ge=1, le=4096, description="with --executor ray: actors, each keeping "
                                      "models loaded (default: one per GPU of the cluster, else 1)")
    ray_restarts: int = Field(3, ge=0, le=100, description="with --executor ray: times Ray restarts a dead actor and "
                              "re-runs its job before the job fails")
    shared_dir: Optional[Path] = Field(
        None, description="with --executor ray: a folder every Ray node sees at this path; job folders go there and "
                          "actors read and write them directly (default: files travel through Ray)")
    runtime: RuntimeSettings = Field(default_factory=RuntimeSettings)

    @field_validator("state_dir", mode="before")
    @classmethod
    def _default_state_dir(cls, value) -> Path:
        return Path(value).expanduser() if value is not None else default_state_dir()

    @field_validator("allow_roots")
    @classmethod
    def _roots_exist(cls, roots: list[Path]) -> list[Path]:
        resolved = []
        for root in roots:
            real = Path(root).expanduser().resolve()
            if not real.is_dir():
                raise ValueError(f"allowed root {str(root)!r} is not a folder")
            resolved.append(real)
        return resolved

    @field_validator("token")
    @classmethod
    def _token_strength(cls, token: Optional[SecretStr]) -> Optional[SecretStr]:
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"the token must be at least {MIN_TOKEN_LENGTH} characters long")
        # HTTP headers are bytes that clients encode differently (UTF-8, Latin-1, not at all): a token
        # outside printable ASCII would be accepted here and match no client's header
        if token is not None and not all(" " < c < "\x7f" for c in token.get_secret_value()):
            raise ValueError("the token must be printable ASCII without spaces (letters, digits, punctuation)")
        return token

    @model_validator(mode="after")
    def _no_open_port_without_token(self) -> "ServerConfig":
        if not is_loopback(self.host) and self.token is None:
            raise ValueError(f"refusing to listen on {self.host} without a token: anyone on the network could use "
                             f"this machine; set LATENTWEEN_TOKEN or pass --token")
        return self

    @property
    def token_value(self) -> Optional[str]:
        return self.token.get_secret_value() if self.token is not None else None

    @model_validator(mode="after")
    def _ray_options_need_ray(self) -> "ServerConfig":
        given = [name for name in ("ray_address", "ray_actors", "shared_dir") if getattr(self, name) is not None]
        if given and self.executor != "ray":
            raise ValueError(f"{', '.join('--' + n.replace('_', '-') for n in given)} go with --executor ray")
        return self

    @property
    def jobs_dir(self) -> Path:
        return self.shared_dir / "jobs" if self.shared_dir is not None else self.state_dir / "jobs"

    @property
    def database(self) -> Path:
        return self.state_dir / "jobs.sqlite3"
