"""The scheduler's `WorkerLink` over Cap'n Proto: jobs become `Job` structs
(schema/worker.capnp), one run travels by `execute`, several by
`executeMany`, and every answer is read defensively (`read_outcome`, and
a worker's offer of labels and queues: `read_routing`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from cluster_app import offers, rpc
from cluster_app.offers import Refused, Routing
from cluster_app.wire_states import STATES
from tasks_app.dispatch import Job, WorkerGone
from tasks_app.outcomes import MalformedAnswer, WorkerOutcome

# Worker clocks outside [2000, 2200) are not clocks.
_EARLIEST_NS = 946_684_800 * 10**9
_LATEST_NS = 7_258_118_400 * 10**9
# What the worker says of the run's compiled module; anything else: not said.
_COMPILE_CACHE = {"hit": True, "miss": False}


class CapnpWorkerLink:
    def __init__(self, capability: Any, *, max_result_bytes: int) -> None:
        self._capability = capability  # a schema.worker.Worker client
        self._max_result_bytes = max_result_bytes

    async def run(self, jobs: Sequence[Job]) -> list[WorkerOutcome]:
        wire = [_wire_job(job) for job in jobs]
        try:
            if len(wire) == 1:
                answers = [(await self._capability.execute(job=wire[0])).outcome]
            else:
                answers = list((await self._capability.executeMany(jobs=wire)).outcomes)
        except Exception as exc:
            if rpc.is_disconnect(exc):
                raise WorkerGone(str(exc) or type(exc).__name__) from exc
            raise
        if len(answers) != len(jobs):
            raise MalformedAnswer(f"{len(answers)} outcomes for {len(jobs)} jobs")
        return [read_outcome(a, max_text_bytes=self._max_result_bytes) for a in answers]

    async def cancel(self, task_id: str, index: int) -> bool:
        return bool((await self._capability.cancel(taskId=task_id, iteration=index)).found)

    async def ping(self) -> None:
        await self._capability.ping()


def _wire_job(job: Job) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "taskId": job.task_id,
        "iteration": job.index,
        "moduleHash": job.module_hash,
        "input": job.input,
        "difficulty": job.difficulty,
        "timeLimitMs": int(job.time_limit * 1000),
        "notBeforeNs": int(job.not_before.timestamp() * 1e9),
    }
    # A seed-form job leaves them at the wire's defaults (nothing to encode).
    if job.args is not None:
        wire["hasArgs"] = True
        wire["args"] = list(job.args)
    if job.stdin:
        wire["stdin"] = job.stdin
    if job.env:
        wire["env"] = [{"name": name, "value": value} for name, value in job.env]
    return wire


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
        result_bytes = _data(outcome.resultBytes, "resultBytes", max_text_bytes)
        result_truncated = bool(outcome.resultTruncated)
        stderr = _text(outcome.stderr, "stderr", max_text_bytes)
        # Added after the others: a stand-in with the older fields only says nothing.
        compile_cached = _COMPILE_CACHE.get(str(getattr(outcome, "compileCache", "")))
    except MalformedAnswer:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, the answer is bad
        raise MalformedAnswer(f"unreadable outcome: {type(exc).__name__}: {exc}") from None
    state = STATES.get(raw_state)
    if state is None:
        raise MalformedAnswer(f"unknown outcome state {raw_state[:40]!r}")
    if result_bytes and result:
        raise MalformedAnswer("an output both as text and as bytes")
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
        result_bytes=result_bytes or None,
        result_truncated=result_truncated,
        stderr=stderr,
        compile_cached=compile_cached,
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


def _data(value: Any, name: str, limit: int) -> bytes:
    data = bytes(value)
    if len(data) > limit:
        raise MalformedAnswer(f"{name} of {len(data)} bytes, over the {limit}-byte limit")
    return data


def _time(ns: int) -> datetime | None:
    """A worker time stamp (ns since the epoch; 0: none)."""
    if ns == 0:
        return None
    if not _EARLIEST_NS <= ns < _LATEST_NS or not math.isfinite(ns):
        raise MalformedAnswer(f"time stamp {ns} ns is not a date")
    return datetime.fromtimestamp(ns / 1e9, tz=UTC)


def read_routing(info: Any) -> Routing | Refused:
    """The labels and queues of a WorkerInfo (a Cap'n Proto reader), read
    defensively: the lists' lengths are looked at first (a hostile member
    may send 10**6 labels; none is read then), a reader that fails on a
    field refuses the offer."""
    try:
        wire_labels, wire_queues = info.labels, info.queues
        if len(wire_labels) > offers.MAX_LABELS or len(wire_queues) > offers.MAX_QUEUES:
            return offers.judge_routing(labels=wire_labels, queues=wire_queues)
        labels = [(_name(label.key), _name(label.value)) for label in wire_labels]
        queues = [_name(queue) for queue in wire_queues]
    except Exception as exc:  # noqa: BLE001 - whatever the reader raises, the offer is bad
        return Refused(f"unreadable labels or queues: {type(exc).__name__}: {exc}"[:300])
    return offers.judge_routing(labels=labels, queues=queues)


def _name(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    return str(value)
