"""ClusterBackend without a URL: Django's task framework on this project's
own database. enqueue stores one run through the services (and tells the
scheduler, over the channel layer), get_result reads our rows; the runs are
made to end through the journal's writer (the real write path), as a
gateway would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.utils import timezone
from django_tasks import TaskResultStatus, default_task_backend, task_backends
from django_tasks.exceptions import InvalidTaskError, TaskResultDoesNotExist

from tasks_app import notify, run_records
from tasks_app.django_tasks import ClusterBackend, RunFailed, TaskRefused, WorkerLost, wasm_task
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Iteration, Module, Task
from tests.client.conftest import HASH_WASM

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("tasks_in_database")]

PEER_A, PEER_B = "12D3KooWTestWorkerA", "12D3KooWTestWorkerB"


def end_run(task_id: str, *attempts: tuple[str, str, str, str]) -> None:
    """Attempts of the task's run 0, each (worker, outcome, run state
    after it, result or error), written by the journal's writer."""
    run = Iteration.objects.get(task_id=task_id, index=0)
    now = timezone.now()
    records: list[Any] = []
    for number, (worker, outcome, state, text) in enumerate(attempts, start=1):
        records.append(RunSent(run.pk, task_id, 0, number, worker, now))
        ok = outcome == "succeeded"
        records.append(
            RunEnded(
                run.pk,
                task_id,
                0,
                number,
                worker,
                outcome=outcome,
                run_state=state,
                result=text if ok else "",
                error="" if ok else text,
                started_at=now,
                finished_at=now,
            )
        )
    run_records.record_runs(records)


def test_the_backend_is_ours_and_says_what_it_supports() -> None:
    backend = task_backends["default"]
    assert isinstance(backend, ClusterBackend)
    assert backend.supports_defer and backend.supports_get_result


def test_enqueue_stores_one_run_and_tells_the_scheduler(
    layer: Any, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    puzzle = wasm_task(str(HASH_WASM))
    with django_capture_on_commit_callbacks(execute=True):
        result = puzzle.enqueue(input=0, difficulty=3)

    assert result.status == TaskResultStatus.READY
    assert result.id.startswith("hash-")
    assert result.kwargs == {"input": 0, "difficulty": 3}
    task = Task.objects.get(pk=result.id)
    assert (task.input, task.difficulty, task.run_count) == (0, 3, 1)
    assert Module.objects.filter(pk=task.module_id).exists()
    message = async_to_sync(layer.receive)(notify.GATEWAY_CHANNEL)
    assert message["type"] == "task.submitted" and message["task"] == result.id

    again = puzzle.enqueue(input=0, difficulty=3)
    assert Module.objects.count() == 1  # stored once, by hash
    assert again.id != result.id


def test_get_result_follows_the_runs_rows_to_success() -> None:
    puzzle = wasm_task(str(HASH_WASM), name="puzzle")
    result = puzzle.enqueue(input=0, difficulty=3)
    assert result.id.startswith("puzzle-")

    end_run(result.id, (PEER_A, "lost", "pending", "worker went away"))
    waiting = default_task_backend.get_result(result.id)
    assert waiting.status == TaskResultStatus.READY  # to be tried again
    assert waiting.worker_ids == [PEER_A]

    Iteration.objects.filter(task_id=result.id).update(state="pending")
    end_run(
        result.id,
        (PEER_A, "lost", "pending", "worker went away"),
        (PEER_B, "succeeded", "succeeded", "2832"),
    )
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "2832"
    assert result.worker_ids == [PEER_A, PEER_B]
    assert result.attempts == 2
    assert [e.exception_class for e in result.errors] == [WorkerLost]
    assert result.finished_at is not None and result.enqueued_at is not None
    # A result read by id alone has the same answers.
    assert puzzle.get_result(result.id).return_value == "2832"


def test_a_failed_run_has_its_error_text() -> None:
    result = wasm_task(str(HASH_WASM)).enqueue(input=0, difficulty=3)
    end_run(result.id, (PEER_A, "failed", "failed", "wasm trap: unreachable"))
    result.refresh()
    assert result.status == TaskResultStatus.FAILED
    assert [(e.exception_class, e.traceback) for e in result.errors] == [
        (RunFailed, "wasm trap: unreachable")
    ]


def test_run_after_becomes_the_runs_due_time() -> None:
    when = timezone.now() + timedelta(hours=1)
    result = wasm_task(str(HASH_WASM)).using(run_after=when).enqueue(input=0, difficulty=3)
    run = Iteration.objects.get(task_id=result.id)
    assert abs((run.due_at - when).total_seconds()) < 2


def test_a_stored_module_by_its_sha256() -> None:
    first = wasm_task(str(HASH_WASM)).enqueue(input=0, difficulty=3)
    sha = Task.objects.get(pk=first.id).module_id
    result = wasm_task(sha).enqueue(input=0, difficulty=5)
    assert Task.objects.get(pk=result.id).module_id == sha
    assert result.task.name == "wasm"


def test_refusals_name_the_field_and_status() -> None:
    """What the API would answer: an unknown module a 400, a taken id a
    409 (priority and queue are the task's: stored as given)."""
    routed = wasm_task(str(HASH_WASM), priority=10, queue_name="gpu").enqueue(input=0)
    stored = Task.objects.get(pk=routed.id)
    assert (stored.priority, stored.queue) == (10, "gpu")
    with pytest.raises(TaskRefused) as module:
        wasm_task("0" * 64).enqueue(input=0)
    assert (module.value.status, module.value.field) == (400, "module")
    wasm_task(str(HASH_WASM)).enqueue(id="mine", input=0)
    with pytest.raises(TaskRefused) as taken:
        wasm_task(str(HASH_WASM)).enqueue(id="mine", input=0)
    assert (taken.value.status, taken.value.field) == (409, "id")
    with pytest.raises(TaskRefused) as bad:
        wasm_task(str(HASH_WASM)).enqueue(input="zero")
    assert (bad.value.status, bad.value.field) == (400, "input")
    assert isinstance(bad.value, InvalidTaskError)  # the backport's own type


def test_an_unknown_id_does_not_exist() -> None:
    with pytest.raises(TaskResultDoesNotExist):
        default_task_backend.get_result("no-such-task")


def test_a_module_that_is_not_webassembly_is_refused(tmp_path: Any) -> None:
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"not wasm")
    with pytest.raises(TaskRefused) as refused:
        wasm_task(str(bad)).enqueue(input=0)
    assert (refused.value.status, refused.value.field) == (400, "wasm")
