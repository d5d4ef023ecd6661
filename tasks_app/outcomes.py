"""A worker's account of one attempt, read defensively.

A member worker's answer is input from a stranger: its state may be a value
the schema does not know, its texts invalid UTF-8 or far larger than any
honest worker sends (workers cut theirs to WW_RESULT_MAX_BYTES), its times
nonsense. `read_outcome` turns an answer into a `WorkerOutcome` or raises
`MalformedAnswer`; the scheduler then treats the attempt as lost (the run
goes elsewhere) and counts the fault against the worker."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

# The Outcome struct's states as run states.
STATES = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timedOut": "timed_out",
    "cancelled": "cancelled",
}

# Worker clocks outside [2000, 2200) are not clocks.
_EARLIEST_NS = 946_684_800 * 10**9
_LATEST_NS = 7_258_118_400 * 10**9


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


def read_outcome(outcome: Any, *, max_text_bytes: int) -> WorkerOutcome:
    """Check and copy one Outcome (a Cap'n Proto reader, or anything with
    its fields). Every field is read here, once: a reader that fails on a
    field (unknown enum, bad UTF-8, a message over the traversal limit)
    fails here, not later in the middle of recording."""
    try:
        raw_state = str(outcome.state)
        result = _text(outcome.result, "result", max_text_bytes)
        error = _text(outcome.error, "error", max_text_bytes)
        has_exit_code = bool(outcome.hasExitCode)
        exit_code = int(outcome.exitCode)
        started_ns, finished_ns = int(outcome.startedAtNs), int(outcome.finishedAtNs)
    except MalformedAnswer:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, the answer is bad
        raise MalformedAnswer(f"unreadable outcome: {type(exc).__name__}: {exc}") from None
    state = STATES.get(raw_state)
    if state is None:
        raise MalformedAnswer(f"unknown outcome state {raw_state[:40]!r}")
    started_at, finished_at = _time(started_ns), _time(finished_ns)
    if started_at and finished_at and finished_at < started_at:
        raise MalformedAnswer("the run finished before it started")
    return WorkerOutcome(
        state=state,
        result=result,
        error=error,
        exit_code=exit_code if has_exit_code else None,
        started_at=started_at,
        finished_at=finished_at,
    )


def _text(value: Any, name: str, limit: int) -> str:
    if isinstance(value, bytes):  # a Data-shaped Text: must still be UTF-8
        value = value.decode("utf-8")
    text = str(value)
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise MalformedAnswer(f"{name} of {size} bytes, over the {limit}-byte limit")
    # A module may print NUL; no database column takes it.
    return text.replace("\x00", "\ufffd")


def _time(ns: int) -> datetime | None:
    """A worker time stamp (ns since the epoch; 0: none)."""
    if ns == 0:
        return None
    if not _EARLIEST_NS <= ns < _LATEST_NS or not math.isfinite(ns):
        raise MalformedAnswer(f"time stamp {ns} ns is not a date")
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)
