"""The job store: one SQLite database (WAL) under the state directory, surviving restarts and kill -9.

Rows hold what a job is (settings, inputs) and where it got to (state, progress, finished frames).
Progress while denoising changes many times a second and lives in memory (service.py); the store
gets it at frame boundaries and state changes, which is all a restart needs.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from latentween.errors import LatentweenError

log = logging.getLogger("latentween.server")
SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    settings TEXT NOT NULL,
    inputs TEXT NOT NULL,
    frame_count INTEGER NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    awaiting TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    started REAL,
    finished REAL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, seq);
CREATE TABLE IF NOT EXISTS frames (
    job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    frame INTEGER NOT NULL,
    finished REAL NOT NULL,
    PRIMARY KEY (job_id, frame)
);
"""
_JSON_COLUMNS = ("settings", "inputs", "progress", "awaiting")


@dataclass
class JobRow:
    id: str
    state: str
    settings: dict
    inputs: list
    frame_count: int
    created: float
    progress: dict = field(default_factory=dict)
    error: Optional[str] = None
    awaiting: Optional[dict] = None
    cancel_requested: bool = False
    started: Optional[float] = None
    finished: Optional[float] = None
    seq: Optional[int] = None


class JobStore:
    """Thread-safe: one connection behind a lock (the worker and request threads share it)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process; only a power cut may lose the last commits.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"job database {self.path} was written by a newer latentween (schema {version})")
            self._db.executescript(_SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _write(self, sql: str, params: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, params)

    def _rows(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        # fetched under the lock: another thread's statement must not interleave with the fetch
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- jobs ---------------------------------------------------------------------------------

    def insert(self, job: JobRow) -> JobRow:
        cursor = self._write(
            "INSERT INTO jobs (id, state, settings, inputs, frame_count, progress, created) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job.id, job.state, json.dumps(job.settings), json.dumps(job.inputs), job.frame_count,
             json.dumps(job.progress), job.created))
        job.seq = cursor.lastrowid
        return job

    def get(self, job_id: str) -> Optional[JobRow]:
        rows = self._rows("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _to_job(rows[0]) if rows else None

    def list(self, state: Optional[str] = None, limit: int = 1000) -> list[JobRow]:
        if state:
            rows = self._rows("SELECT * FROM jobs WHERE state = ? ORDER BY seq LIMIT ?", (state, limit))
        else:
            rows = self._rows("SELECT * FROM jobs ORDER BY seq LIMIT ?", (limit,))
        return [_to_job(r) for r in rows]

    def update(self, job_id: str, **values) -> None:
        if not values:
            return
        columns = ", ".join(f"{name} = ?" for name in values)
        params = tuple(json.dumps(v) if name in _JSON_COLUMNS and v is not None else v for name, v in values.items())
        self._write(f"UPDATE jobs SET {columns} WHERE id = ?", params + (job_id,))

    def next_queued(self) -> Optional[JobRow]:
        rows = self._rows("SELECT * FROM jobs WHERE state = 'queued' ORDER BY seq LIMIT 1")
        return _to_job(rows[0]) if rows else None

    def count(self, state: str) -> int:
        return self._rows("SELECT COUNT(*) FROM jobs WHERE state = ?", (state,))[0][0]

    def position(self, job: JobRow) -> int:
        """Queued jobs ahead of this one."""
        return self._rows("SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq < ?", (job.seq,))[0][0]

    def requeue_interrupted(self) -> list[str]:
        """Jobs a killed daemon left running go back to the queue, in their original order."""
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE state IN ('running', 'awaiting-choice') ORDER BY seq").fetchall()]
            self._db.execute("UPDATE jobs SET state = 'queued', awaiting = NULL, "
                             "progress = json_set(progress, '$.stage', 'queued') "
                             "WHERE state IN ('running', 'awaiting-choice')")
        return ids

    def delete(self, job_id: str) -> bool:
        return self._write("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount > 0

    # -- frames -------------------------------------------------------------------------------

    def add_frames(self, job_id: str, indices: list[int]) -> list[int]:
        """Record finished frames; returns those not recorded before."""
        now, added = time.time(), []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for index in indices:
                    if self._db.execute("INSERT OR IGNORE INTO frames (job_id, frame, finished) VALUES (?, ?, ?)",
                                        (job_id, index, now)).rowcount:
                        added.append(index)
            except sqlite3.Error:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return added

    def frames(self, job_id: str) -> list[int]:
        return [r[0] for r in self._rows("SELECT frame FROM frames WHERE job_id = ? ORDER BY frame", (job_id,))]

    def has_frame(self, job_id: str, index: int) -> bool:
        return bool(self._rows("SELECT 1 FROM frames WHERE job_id = ? AND frame = ?", (job_id, index)))


def _to_job(row: sqlite3.Row) -> JobRow:
    values = dict(row)
    for name in _JSON_COLUMNS:
        if values[name] is not None:
            values[name] = json.loads(values[name])
    values["cancel_requested"] = bool(values["cancel_requested"])
    return JobRow(**values)


def open_state_dir(state_dir: Path, database: Path) -> tuple[JobStore, Optional[IO]]:
    """The state directory, locked for this daemon, and its job database, with the jobs a killed daemon
    left running back in the queue. Whatever fails here is one line (a LatentweenError)."""
    lock = None
    try:
        (state_dir / "jobs").mkdir(parents=True, exist_ok=True)
        lock = _lock(state_dir)
        store = JobStore(database)
        resumed = store.requeue_interrupted()
    except (OSError, sqlite3.Error) as exc:
        if lock is not None:
            lock.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise LatentweenError(f"cannot use the state directory {state_dir}: {reason}") from None
    if resumed:
        log.info("resuming %d interrupted job(s): %s", len(resumed), ", ".join(resumed))
    return store, lock


def _lock(state_dir: Path) -> Optional[IO]:
    """Two daemons on one state directory would run the same jobs twice."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one daemon per state dir is then on the user
        return None
    lock = open(state_dir / "daemon.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise LatentweenError(f"another latentween daemon uses the state directory {state_dir}") from None
    return lock
