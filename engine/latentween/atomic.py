"""Files whose final name only ever holds a whole file: written to a hidden temporary file beside
it, synced, then renamed. Standard library only: the thin client uses it too."""
from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_lock = threading.Lock()
_umask: int | None = None


def umask() -> int:
    """The process's umask, read once. Linux says it in /proc without changing it; elsewhere it is set
    and put back (under a lock, once, rather than at import as a side effect of any import)."""
    global _umask
    with _lock:
        if _umask is None:
            try:
                line = next(l for l in Path("/proc/self/status").read_text().splitlines() if l.startswith("Umask:"))
                _umask = int(line.split()[1], 8)
            except (OSError, StopIteration, ValueError, IndexError):
                _umask = os.umask(0o022)
                os.umask(_umask)
        return _umask


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Temp file (with the usual mode, not mkstemp's 0600), fsync, rename; the temp file goes on failure."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())  # a crash after the rename must not leave an empty file under the real name
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
