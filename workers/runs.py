"""A run as the worker sees it: what it is asked to run, and what came of it.

Everything on the worker speaks these two shapes: the capability server
builds requests from the gateway's jobs and answers with outcomes, the
executor places and runs them, the execution log records them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

RunState = Literal["succeeded", "failed", "timed_out", "cancelled"]


@dataclass(frozen=True)
class RunRequest:
    task_id: str
    module_hash: str
    wasm: bytes  # may be b"" when the executor already has module_hash cached
    input: int
    difficulty: int
    time_limit: float  # seconds; <= 0 means the executor's default
    run_key: str = ""  # names the run for `Executor.cancel` (e.g. "task1#0")
    not_before: float = 0.0  # time.time() before which the run must not start
    # What a WASI command is given: argv after argv[0] (the task id; None:
    # the seed's input and difficulty), the whole of stdin, the environment.
    args: tuple[str, ...] | None = None
    stdin: bytes = b""
    env: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RunOutcome:
    state: RunState
    result: str
    error: str
    exit_code: int | None
    started_at: float  # time.time() on the worker thread
    finished_at: float
    result_bytes: bytes | None = None  # a WASI command's stdout that is not UTF-8
    result_truncated: bool = False  # stdout was cut to its limit
    stderr: str = ""  # a WASI command's stderr (its tail, when long)
    compile_cached: bool | None = None  # its module compiled already (None: never asked)


def time_limit(requested: float, default: float) -> float:
    """A run's time limit in seconds: what it asks for, or ``default`` when
    that is not a positive finite number."""
    return requested if math.isfinite(requested) and requested > 0 else default
