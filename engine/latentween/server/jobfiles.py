"""A job's folder on the daemon: its keyframes, its output folder (outputs.OutputFolder) and the
candidates of a manual choice; which of these files may be served now."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from latentween.outputs import OutputFolder
from latentween.server import schemas
from latentween.server.errors import Conflict, NotFound


def input_path(job_dir: Path, index: int) -> Path:
    return job_dir / "inputs" / f"keyframe_{index}"


def candidate_path(job_dir: Path, frame: int, candidate: int) -> Path:
    return job_dir / "candidates" / f"frame_{frame:05d}" / f"candidate_{candidate:02d}.png"


class JobFiles:
    """`row(job_id)`: the job's JobRow (NotFound if none); `has_frame(job_id, index)`: recorded as done."""

    def __init__(self, jobs_dir: Path, row: Callable, has_frame: Callable[[str, int], bool]):
        self.jobs_dir, self._row, self._has_frame = Path(jobs_dir), row, has_frame

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def output_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / "output"

    def output(self, job_id: str) -> OutputFolder:
        return OutputFolder(self.output_dir(job_id))

    def input_path(self, job_id: str, index: int) -> Path:
        return input_path(self.job_dir(job_id), index)

    def candidate_path(self, job_id: str, frame: int, candidate: int) -> Path:
        return candidate_path(self.job_dir(job_id), frame, candidate)

    def frame_file(self, job_id: str, index: int) -> Path:
        row = self._row(job_id)
        if not 0 <= index < row.frame_count:
            raise NotFound(f"job {job_id} has frames 0..{row.frame_count - 1}, not {index}")
        if not self._has_frame(job_id, index):
            raise NotFound(f"frame {index} of job {job_id} is not finished yet")
        return self.output(job_id).frame_path(index)

    def manifest_file(self, job_id: str) -> Path:
        self._row(job_id)
        path = self.output(job_id).manifest_path
        if not path.is_file():
            raise NotFound(f"job {job_id} has no manifest yet (it starts when the job runs)")
        return path

    def candidates(self, job_id: str) -> schemas.Candidates:
        row = self._row(job_id)
        if row.state != "awaiting-choice" or not row.awaiting:
            raise Conflict(f"job {job_id} is not waiting for a choice (it is {row.state})")
        frame = row.awaiting["frame"]
        return schemas.Candidates(frame=frame, candidates=[
            schemas.Candidate(index=k, url=f"/v1/jobs/{job_id}/candidates/{k}") for k in range(row.awaiting["candidates"])])

    def candidate_file(self, job_id: str, candidate: int) -> Path:
        listing = self.candidates(job_id)
        if not 0 <= candidate < len(listing.candidates):
            raise NotFound(f"frame {listing.frame} of job {job_id} has candidates 0..{len(listing.candidates) - 1}")
        return self.candidate_path(job_id, listing.frame, candidate)
