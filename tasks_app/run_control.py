"""One run's stop conditions, shared by everything that can end it early.

The epoch callback checks them while the module's own code runs; host calls
that can wait (``workers.wasi_bounds``) and the bounded compiler
(``tasks_app.bounded_compile``) wait on ``wake`` so that a cancel reaches them
at once instead of at their next check. The control of the run executing on
a thread is found through :func:`current`: wasmtime calls host functions on
the thread that called into wasm, and a linker's host functions are shared by
every store, so the thread is what names the run.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

StopReason = Literal["", "timed_out", "cancelled"]


class RunStopped(Exception):
    """A wait inside a run ended because the run is out of time or cancelled."""

    def __init__(self, reason: StopReason) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False)
class RunControl:
    deadline: float = math.inf  # time.monotonic() at which the run is out of time
    cancelled: bool = False
    reason: StopReason = ""  # why the run was stopped early, once it was
    callback: Any = None  # the epoch deadline callback: kept alive as long as the store
    # time.monotonic_ns() when the run's WASI context was made: wasmtime's
    # WASI monotonic clock counts from there.
    clock_origin_ns: int = 0
    wake: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        self.cancelled = True
        self.wake.set()

    def stop_reason(self) -> StopReason:
        """Why the run must stop now, or "" if it may go on; remembered in ``reason``."""
        if self.cancelled:
            self.reason = "cancelled"
        elif time.monotonic() >= self.deadline:
            self.reason = "timed_out"
        return self.reason

    def wait_until(self, due: float) -> None:
        """Sleep until ``time.monotonic()`` reaches ``due``, or raise
        :class:`RunStopped` as soon as the run is cancelled or out of time."""
        while True:
            reason = self.stop_reason()
            if reason:
                raise RunStopped(reason)
            now = time.monotonic()
            if now >= due:
                return
            self.wake.wait(min(due, self.deadline) - now)


_local = threading.local()


def current() -> RunControl | None:
    """The control of the run executing on this thread, if any."""
    control: RunControl | None = getattr(_local, "control", None)
    return control


@contextlib.contextmanager
def running(control: RunControl) -> Iterator[RunControl]:
    """Mark ``control`` as the run executing on this thread while inside."""
    previous = current()
    _local.control = control
    try:
        yield control
    finally:
        _local.control = previous
