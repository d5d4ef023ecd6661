"""Between our tasks (as `GET /tasks/<id>` shows them) and the backport's
Task and TaskResult: pure functions."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django_tasks import TaskResult, TaskResultStatus
from django_tasks.base import TaskError
from django_tasks.exceptions import InvalidTaskError

from tasks_app.django_tasks.errors import (
    RunCancelled,
    RunError,
    RunFailed,
    RunTimedOut,
    WorkerLost,
)
from tasks_app.django_tasks.task import ReturnValue, WasmTask

# What a task id may hold (tasks_app.api.serializers.TASK_ID_PATTERN).
_NOT_IN_ID = re.compile(r"[^A-Za-z0-9._:@+-]+")
# A Django task is one run: these would make more.
_NOT_ONE_RUN = ("repeats", "delay")

_ERROR_CLASS: dict[str, type[RunError]] = {
    "failed": RunFailed,
    "timed_out": RunTimedOut,
    "cancelled": RunCancelled,
    "lost": WorkerLost,
}


def task_body(
    task: WasmTask, fields: dict[str, Any], *, module: str, now: datetime
) -> dict[str, Any]:
    """The JSON task that enqueue submits: one run of `module`, due at the
    task's `run_after` (else now), with its priority and queue."""
    for name in _NOT_ONE_RUN:
        if name in fields:
            raise InvalidTaskError(f"a wasm_task is one run: {name!r} is not one of its fields")
    if "start" in fields and task.run_after is not None:
        raise InvalidTaskError("give the due time as run_after or as start, not both")
    body = {
        "id": fields.pop("id", None) or new_task_id(task.name),
        **fields,
        "module": module,
        "priority": task.priority,
        "queue": task.queue_name,
    }
    if isinstance(body.get("stdin"), bytes):
        body["stdin_base64"] = base64.b64encode(body.pop("stdin")).decode()
    if task.run_after is not None:
        body["start"] = max((task.run_after - now).total_seconds(), 0.0)
    return body


def new_task_id(name: str) -> str:
    """`NAME-<random>`, with what a task id may not hold dropped from NAME."""
    stem = _NOT_IN_ID.sub("-", name).strip("-._:@+")[:80] or "wasm"
    return f"{stem}-{secrets.token_hex(6)}"


# A task's fields that go back into a result's kwargs.
_KWARGS = (
    "description",
    "start",
    "input",
    "difficulty",
    "duration",
    "retries",
    "args",
    "env",
    "stdin",
    "stdin_base64",
    "constraints",
    "replicas",
    "fuel",
)


def task_kwargs(task: Mapping[str, Any]) -> dict[str, Any]:
    return {name: task[name] for name in _KWARGS if task.get(name) is not None}


def status_of(task: Mapping[str, Any]) -> TaskResultStatus:
    """The backport's status of a task as `GET /tasks/<id>` shows it (one
    run, or many: SUCCESSFUL only when all succeeded)."""
    counts = task.get("runs_by_state")
    if not isinstance(counts, Mapping):
        return TaskResultStatus.READY  # just submitted: nothing has run
    runs = int(task.get("run_count", task.get("runs", 1)))
    if int(counts.get("succeeded", 0)) >= runs:
        return TaskResultStatus.SUCCESSFUL
    ended = sum(int(counts.get(s, 0)) for s in ("succeeded", "failed", "timed_out", "cancelled"))
    if ended >= runs:
        return TaskResultStatus.FAILED
    if int(counts.get("running", 0)):
        return TaskResultStatus.RUNNING
    return TaskResultStatus.READY


def task_result(
    task: WasmTask, answer: Mapping[str, Any], *, backend: str, kwargs: dict[str, Any]
) -> TaskResult[Any]:
    """The backport's result for our task (as the API shows it: its first
    run is the Django task's run)."""
    runs = answer.get("runs")
    run: Mapping[str, Any] = runs[0] if isinstance(runs, list) and runs else {}
    attempts: list[Mapping[str, Any]] = list(run.get("attempts") or ())
    status = status_of(answer)
    result: TaskResult[Any] = TaskResult(
        task=task,
        id=str(answer["id"]),
        status=status,
        enqueued_at=_time(answer.get("received_at")),
        started_at=_time(run.get("started_at")),
        finished_at=_time(run.get("finished_at")),
        last_attempted_at=_time(
            attempts[-1].get("started_at") or attempts[-1].get("sent_at") if attempts else None
        ),
        args=[],
        kwargs=kwargs,
        backend=backend,
        errors=run_errors(run),
        worker_ids=[str(a.get("worker") or "") for a in attempts],
    )
    if status == TaskResultStatus.SUCCESSFUL:
        object.__setattr__(result, "_return_value", return_value(run))
    return result


def return_value(run: Mapping[str, Any]) -> ReturnValue:
    """The run's output: its text, or its bytes when it is not UTF-8."""
    if not run.get("result") and run.get("result_base64"):
        return base64.b64decode(run["result_base64"])
    return str(run.get("result") or "")


def run_errors(run: Mapping[str, Any]) -> list[TaskError]:
    """One TaskError per attempt that did not succeed, oldest first; one
    for the run itself when it ended badly without an attempt saying so
    (cancelled before it started, a module refused)."""
    errors = [
        _error(str(a.get("outcome")), str(a.get("error") or ""))
        for a in run.get("attempts") or ()
        if a.get("outcome") in _ERROR_CLASS
    ]
    state = str(run.get("state", ""))
    if state in ("failed", "timed_out", "cancelled") and not any(
        e.exception_class_path == _path(_ERROR_CLASS[state]) for e in errors
    ):
        errors.append(_error(state, str(run.get("error") or "")))
    return errors


def _error(outcome: str, text: str) -> TaskError:
    kind = _ERROR_CLASS[outcome]
    return TaskError(exception_class_path=_path(kind), traceback=text or outcome.replace("_", " "))


def _path(kind: type[BaseException]) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
