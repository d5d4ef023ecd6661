"""A worker's account of one attempt, as the scheduler records it.

A member worker's answer is input from a stranger: the cluster side reads
it defensively (cluster_app.worker_link.read_outcome) into a
`WorkerOutcome`, or raises `MalformedAnswer`; the scheduler then treats the
attempt as lost (the run goes elsewhere) and counts the fault against the
worker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


class MalformedAnswer(Exception):
    """A worker answered something no honest worker sends."""


@dataclass(frozen=True)
class WorkerOutcome:
    state: str  # a run state: succeeded, failed, timed_out, cancelled
    result: str
    error: str
    exit_code: int | None
    started_at: datetime | None
    finished_at: datetime | None
    # A WASI command's stdout when it is not UTF-8 (then `result` is "").
    result_bytes: bytes | None = None
    result_truncated: bool = False  # stdout was cut to the result limit
    stderr: str = ""
    # The run's module was found compiled on the worker (False: compiled
    # for it; None: the worker did not say, or the run never reached it).
    compile_cached: bool | None = None
