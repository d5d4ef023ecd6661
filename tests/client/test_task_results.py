"""Between our tasks and the backport's results, without I/O: run states
to statuses, attempts to errors and worker IDs, the JSON a wasm_task's
enqueue submits."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django_tasks import TaskResultStatus
from django_tasks.exceptions import InvalidTaskError

from tasks_app.django_tasks import (
    RunCancelled,
    RunFailed,
    RunsOnTheCluster,
    RunTimedOut,
    WasmTask,
    WorkerLost,
)
from tasks_app.django_tasks.results import (
    new_task_id,
    status_of,
    task_body,
    task_result,
)
from tasks_app.django_tasks.task import run_module

SHA = "ab" * 32
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
ZERO = dict.fromkeys(("pending", "running", "succeeded", "failed", "timed_out", "cancelled"), 0)


@pytest.fixture
def task(settings: Any) -> WasmTask:
    settings.TASKS = {"default": {"BACKEND": "tasks_app.django_tasks.ClusterBackend"}}
    return WasmTask(func=run_module, module=SHA)


def shown(state: str, attempts: list[dict[str, Any]] | None = None, **run: Any) -> dict[str, Any]:
    """A one-run task as GET /tasks/<id> shows it."""
    return {
        "id": "t1",
        "module": SHA,
        "received_at": "2026-01-02T03:04:05Z",
        "run_count": 1,
        "runs_by_state": {**ZERO, state: 1},
        "runs": [{"index": 0, "state": state, "attempts": attempts or [], **run}],
    }


def attempt(outcome: str, worker: str = "12D3KooWA", error: str = "") -> dict[str, Any]:
    return {
        "number": 1,
        "worker": worker,
        "sent_at": "2026-01-02T03:04:06Z",
        "started_at": "2026-01-02T03:04:07Z",
        "finished_at": "2026-01-02T03:04:08Z",
        "outcome": outcome,
        "result": "",
        "error": error,
    }


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("pending", TaskResultStatus.READY),
        ("running", TaskResultStatus.RUNNING),
        ("succeeded", TaskResultStatus.SUCCESSFUL),
        ("failed", TaskResultStatus.FAILED),
        ("timed_out", TaskResultStatus.FAILED),
        ("cancelled", TaskResultStatus.FAILED),
    ],
)
def test_each_run_state_maps_to_the_backports_status(state: str, status: TaskResultStatus) -> None:
    assert status_of(shown(state)) == status


def test_a_task_just_submitted_without_counts_is_ready() -> None:
    assert status_of({"id": "t1", "runs": 1}) == TaskResultStatus.READY


def test_many_runs_succeed_only_all_together() -> None:
    task = {"run_count": 3, "runs_by_state": {**ZERO, "succeeded": 2, "failed": 1}}
    assert status_of(task) == TaskResultStatus.FAILED
    task["runs_by_state"] = {**ZERO, "succeeded": 2, "pending": 1}
    assert status_of(task) == TaskResultStatus.READY


def test_a_success_after_a_lost_worker(task: WasmTask) -> None:
    """Two attempts: the first worker vanished, the second succeeded."""
    lost = attempt("lost", worker="12D3KooWLost", error="worker went away")
    won = {**attempt("succeeded", worker="12D3KooWWon"), "number": 2, "result": "2832"}
    result = task_result(
        task,
        shown("succeeded", [lost, won], result="2832", finished_at="2026-01-02T03:04:09Z"),
        backend="default",
        kwargs={"input": 0},
    )
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "2832"
    assert result.worker_ids == ["12D3KooWLost", "12D3KooWWon"]
    assert result.attempts == 2
    assert [e.exception_class for e in result.errors] == [WorkerLost]
    assert result.errors[0].traceback == "worker went away"
    assert result.enqueued_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert result.finished_at == datetime(2026, 1, 2, 3, 4, 9, tzinfo=UTC)
    assert result.last_attempted_at == datetime(2026, 1, 2, 3, 4, 7, tzinfo=UTC)
    assert result.kwargs == {"input": 0}


@pytest.mark.parametrize(
    ("state", "kind"),
    [("failed", RunFailed), ("timed_out", RunTimedOut), ("cancelled", RunCancelled)],
)
def test_a_run_that_ended_badly_has_its_error(
    task: WasmTask, state: str, kind: type[Exception]
) -> None:
    result = task_result(
        task,
        shown(state, [attempt(state, error=f"it {state}")], error=f"it {state}"),
        backend="default",
        kwargs={},
    )
    assert result.status == TaskResultStatus.FAILED
    assert [(e.exception_class, e.traceback) for e in result.errors] == [(kind, f"it {state}")]
    with pytest.raises(ValueError, match="failed"):
        result.return_value  # noqa: B018 - the backport raises for a failed task


def test_a_run_cancelled_before_it_started_has_an_error_and_no_worker(task: WasmTask) -> None:
    result = task_result(task, shown("cancelled"), backend="default", kwargs={})
    assert result.worker_ids == []
    assert [(e.exception_class, e.traceback) for e in result.errors] == [
        (RunCancelled, "cancelled")
    ]


def test_output_that_is_not_utf8_is_returned_as_bytes(task: WasmTask) -> None:
    raw = b"\xff\x00\xfe"
    answer = shown("succeeded", [attempt("succeeded")], result="")
    answer["runs"][0]["result_base64"] = base64.b64encode(raw).decode()
    assert task_result(task, answer, backend="default", kwargs={}).return_value == raw


def test_the_body_is_one_run_with_priority_queue_and_run_after(task: WasmTask) -> None:
    later = task.using(run_after=NOW + timedelta(seconds=90), priority=5, queue_name="gpu")
    body = task_body(later, {"input": 0, "stdin": b"\x00\x01"}, module=SHA, now=NOW)
    assert body["module"] == SHA
    assert body["start"] == 90.0
    assert (body["priority"], body["queue"]) == (5, "gpu")
    assert body["stdin_base64"] == "AAE=" and "stdin" not in body
    assert body["id"].startswith("wasm-")


def test_a_run_after_in_the_past_is_due_now(task: WasmTask) -> None:
    past = task.using(run_after=NOW - timedelta(hours=1))
    assert task_body(past, {}, module=SHA, now=NOW)["start"] == 0.0


@pytest.mark.parametrize("field", ["repeats", "delay"])
def test_a_wasm_task_is_one_run(task: WasmTask, field: str) -> None:
    with pytest.raises(InvalidTaskError, match=field):
        task_body(task, {field: 3}, module=SHA, now=NOW)


def test_new_ids_keep_to_what_an_id_may_hold() -> None:
    assert new_task_id("my puzzle/v2").startswith("my-puzzle-v2-")
    assert new_task_id("...").startswith("wasm-")
    assert new_task_id("hash") != new_task_id("hash")


def test_the_function_is_not_called_here(task: WasmTask) -> None:
    with pytest.raises(RunsOnTheCluster):
        task.call(input=0)
