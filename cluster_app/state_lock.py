"""One process per state directory (or per key file): an exclusive `flock`
held for the process's lifetime.

Two gateways on one state directory share its SQLite database and its
identity key: both would hand out the same runs, and workers dialing that
peer ID would join whichever answered first. The lock file names the pid
that holds it, so the second process can say who is in the way. The kernel
drops the lock when the holder exits, however it exits, so a stale lock
file never blocks a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class LockHeld(RuntimeError):
    """Another process holds the lock."""

    def __init__(self, path: Path, pid: int | None, what: str) -> None:
        holder = f"pid {pid}" if pid is not None else "another process"
        super().__init__(f"{what} is in use: {holder} holds the lock {path}")
        self.path = path
        self.pid = pid


class ProcessLock:
    """An acquired lock; `release()` (or process exit) gives it up."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def acquire(path: Path, *, what: str) -> ProcessLock:
    """Take the lock at `path` (created if missing) and record our pid in it;
    raise `LockHeld` naming the holder's pid if another process has it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _locked(path, what, os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return ProcessLock(path, fd)


def check_free(path: Path, *, what: str) -> None:
    """Raise `LockHeld` if another process holds the lock at `path` now
    (without taking it: the file and the pid in it are left as they are)."""
    try:
        fd = _locked(Path(path), what, os.O_RDONLY)
    except FileNotFoundError:
        return
    os.close(fd)


def _locked(path: Path, what: str, flags: int) -> int:
    # os.open makes a non-inheritable descriptor: children we exec do not
    # keep the lock alive after we are gone.
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _read_pid(fd)
        os.close(fd)
        raise LockHeld(path, pid, what) from None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _read_pid(fd: int) -> int | None:
    with contextlib.suppress(OSError, ValueError):
        return int(os.pread(fd, 32, 0).decode().strip())
    return None
