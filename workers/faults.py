"""What a module's faults and a run's stops mean for its outcome.

A call into wasm ends in a trap, a wasmtime error, a WASI exit or a stop of
its :class:`~tasks_app.run_control.RunControl` (time limit or cancel). Here each
becomes what the gateway is told: a state and an error text, short enough to
read (the trap's cause without its backtrace). A run never raises for its
module's faults: :class:`RunFailed` carries them to the outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import wasmtime

from tasks_app.run_control import RunControl
from workers.output import Output
from workers.runs import RunState

T = TypeVar("T")

ERROR_LIMIT = 500  # characters of a trap message kept in RunOutcome.error


class RunFailed(Exception):
    """Ends a run early; carries what goes into the outcome."""

    def __init__(
        self,
        error: str,
        state: RunState = "failed",
        result: str = "",
        exit_code: int | None = None,
        output: Output | None = None,
    ) -> None:
        super().__init__(error)
        self.state: RunState = state
        self.error = error
        self.result = result
        self.exit_code = exit_code
        self.output = output  # a WASI command's, printed before it ended


class ExitCode(Exception):
    """The module called WASI ``proc_exit``."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def guarded(call: Callable[[], T], control: RunControl, limit: float) -> T:
    """Run a call into wasm, translating traps, stops and WASI exits."""
    try:
        return call()
    except wasmtime.ExitTrap as exc:
        raise ExitCode(exc.code) from exc
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        raise failure(exc, control, limit) from exc


def stopped(reason: str, limit: float, doing: str) -> tuple[RunState, str, str]:
    """State, error and result of a run stopped by its control while `doing`."""
    if reason == "cancelled":
        return "cancelled", f"cancelled while {doing}", ""
    return "timed_out", f"time limit of {float(limit)!r} s exceeded while {doing}", ""


def failure(exc: Exception, control: RunControl, limit: float) -> RunFailed:
    """What a trap or error out of wasm means for the run."""
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    if control.reason == "timed_out" or code == wasmtime.TrapCode.INTERRUPT:
        return RunFailed(f"time limit of {float(limit)!r} s exceeded", "timed_out")
    if control.reason == "cancelled":
        return RunFailed("cancelled while running", "cancelled")
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return RunFailed(f"stack overflow ({summary(str(exc))})")
    return RunFailed(summary(str(exc)))


def summary(message: str) -> str:
    """The cause of a wasmtime error, without the backtrace, bounded in length."""
    _, _, cause = message.rpartition("Caused by:")
    lines = [line.strip() for line in (cause or message).strip().splitlines() if line.strip()]
    text = lines[0] if lines else "unknown error"
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"
