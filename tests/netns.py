"""Private network namespaces for tests that send multicast.

``NetNS()`` creates ``ww-test-<pid>-<n>`` with ``lo`` up. ``entered()`` moves
the calling thread into it (sockets and child processes made inside the block
live there) and back out afterwards; ``spawn()`` starts a process inside it;
``close()`` kills every spawned process and deletes the namespace.
``new_netns()`` is ``NetNS()`` for a test: where no namespace can be made,
the test skips, or fails under CI=true (tests/ci.py).
"""

from __future__ import annotations

import ctypes
import itertools
import os
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

from tests.ci import missing_dependency

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/var/run/netns"
_counter = itertools.count()
_libc = ctypes.CDLL(None, use_errno=True)


class NetNSUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no `ip`, ...)."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if proc.returncode != 0:
        raise NetNSUnavailable(f"`ip {' '.join(args)}` failed: {proc.stderr.strip()}")


class NetNS:
    """A named network namespace with only loopback, owned by one test."""

    def __init__(self) -> None:
        if os.geteuid() != 0:
            raise NetNSUnavailable("network namespaces need root (CAP_SYS_ADMIN)")
        if shutil.which("ip") is None:
            raise NetNSUnavailable("the `ip` command (iproute2) is not installed")
        self.name = f"ww-test-{os.getpid()}-{next(_counter)}"
        self.processes: list[subprocess.Popen[Any]] = []
        _ip("netns", "add", self.name)
        try:
            _ip("-n", self.name, "link", "set", "lo", "up")
        except BaseException:
            _ip("netns", "delete", self.name)
            raise
        self._closed = False

    @contextmanager
    def entered(self) -> Iterator[NetNS]:
        """Run the block with the calling thread inside the namespace."""
        original = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"{NETNS_RUN_DIR}/{self.name}", os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                _setns(original)
        finally:
            os.close(original)

    def spawn(self, argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
        """Start ``argv`` inside the namespace; close() will stop it."""
        with self.entered():
            proc = subprocess.Popen(list(argv), **popen_kwargs)
        self.processes.append(proc)
        return proc

    def close(self, grace: float = 5.0) -> None:
        """Stop every spawned process (SIGTERM, then SIGKILL) and delete the namespace."""
        if self._closed:
            return
        self._closed = True
        for proc in self.processes:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in self.processes:
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=grace)
        _ip("netns", "delete", self.name)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def new_netns() -> NetNS:
    """A fresh namespace for the calling test; skips it (fails it under
    CI=true) where namespaces cannot be made: not root, no `ip`, no kernel
    support."""
    try:
        return NetNS()
    except (NetNSUnavailable, OSError) as exc:
        missing_dependency(f"network namespaces unavailable: {exc}")
