"""Start `latentween serve` as a child process and know when it answers: for tests, benchmarks and
hosts that launch their own daemon. Standard library only."""
from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
import time
from typing import Callable, Optional, Sequence

_READY = re.compile(r"latentween daemon listening on (http://\S+)")


class DaemonProcess:
    """`latentween serve --port 0 ARGS...`; `url` once it listens. Its stderr is kept in `log`."""

    def __init__(self, args: Sequence[str], env: Optional[dict] = None, timeout: float = 120.0,
                 preexec_fn: Optional[Callable[[], None]] = None):
        command = [sys.executable, "-m", "latentween", "serve", "--port", "0", *map(str, args)]
        self.proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env, preexec_fn=preexec_fn)
        self.log: list[str] = []
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        self.url = self._wait_ready(timeout)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))
            self._lines.put(line)
        self._lines.put(None)

    def _wait_ready(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise RuntimeError(f"the daemon did not start within {timeout:g} s:\n" + "\n".join(self.log)) from None
            if line is None:
                self.proc.wait()
                raise RuntimeError(f"the daemon exited with {self.proc.returncode}:\n" + "\n".join(self.log))
            match = _READY.search(line)
            if match:
                return match.group(1)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM: the daemon finishes the current denoising step, re-queues its job and exits."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL: no clean-up at all, as when the machine or the OOM killer stops it."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode

    def __enter__(self) -> "DaemonProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
