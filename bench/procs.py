"""Child processes the bench owns: started here, stopped here by PID.

Every process is started in its own session so that, if it leaves children
(Celery's prefork pool), they can be found (/proc children) and stopped by
their PIDs too. `Procs.stop_all()` runs on normal exit, on exceptions and on
SIGINT/SIGTERM (run.py installs the handlers)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def children(pid: int) -> list[int]:
    """Direct children of pid (Linux /proc)."""
    out: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
                out.extend(int(x) for x in text.split())
    return out


def descendants(pid: int) -> list[int]:
    seen: list[int] = []
    todo = [pid]
    while todo and len(seen) < 1000:
        for child in children(todo.pop()):
            if child not in seen:
                seen.append(child)
                todo.append(child)
    return seen


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Proc:
    def __init__(self, name: str, popen: subprocess.Popen[str], log_path: Path) -> None:
        self.name = name
        self.popen = popen
        self.log_path = log_path
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pred: Callable[[str], bool], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if pred(line):
                        return line
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    break
                self._cond.wait(min(left, 0.2))
        tail = self.log_path.read_text()[-3000:] if self.log_path.exists() else ""
        raise RuntimeError(
            f"{self.name} (pid {self.pid}, exit {self.popen.poll()}): no expected line in "
            f"{timeout} s; stdout: {self.lines[-10:]}; log tail:\n{tail}"
        )

    def alive(self) -> bool:
        return self.popen.poll() is None


class Procs:
    """The set of processes this bench started."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self.known_children: dict[int, set[int]] = {}

    def start(self, name: str, argv: list[str], *, env: dict[str, str], cwd: Path) -> Proc:
        log_path = self.log_dir / f"{name}-{len(self.procs)}.log"
        log = open(log_path, "w")
        popen = subprocess.Popen(
            argv,
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        log.close()
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def remember_children(self, proc: Proc) -> None:
        self.known_children.setdefault(proc.pid, set()).update(descendants(proc.pid))

    def stop(self, proc: Proc, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL; then any child it left, by PID."""
        if proc.alive():
            self.remember_children(proc)
        kids = set(self.known_children.get(proc.pid, set()))
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
                proc.popen.wait(5)
        for kid in kids:
            if _is_ours(kid, proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(kid, signal.SIGKILL)
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs)):
            with contextlib.suppress(Exception):
                self.stop(proc, timeout=5.0)


def _is_ours(pid: int, session_leader: int) -> bool:
    """A leftover child is ours if it is still in the session we created."""
    try:
        return os.getsid(pid) == session_leader
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads) so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks
