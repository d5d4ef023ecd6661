"""The admin's actions, as a logged-in staff user would use them: cancel a
task, run its failed runs again; and the task page showing each attempt's
worker, timings and result or error."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from tasks_app import run_records, services
from tasks_app.journal import RunEnded, RunSent
from tasks_app.models import Iteration, WorkerNode
from tasks_app.notify import GATEWAY_CHANNEL
from tests.api.forms import HASH_WASM

PEER = "12D3KooWAdminActions"

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.login(username="admin", password="pw-for-tests")
    return client


def _task(task_id: str, repeats: int = 3) -> None:
    services.create_task(
        task_id=task_id,
        description="Hash puzzle",
        wasm=HASH_WASM,
        duration=5,
        start=60,
        delay=1,
        repeats=repeats,
        input=0,
        difficulty=3,
    )


def _run(task_id: str, index: int, state: str, *, result: str = "", error: str = "") -> None:
    """Run `index` went to worker PEER and ended in `state`."""
    WorkerNode.objects.get_or_create(peer_id=PEER, defaults={"last_seen": timezone.now()})
    run = Iteration.objects.get(task_id=task_id, index=index)
    now = timezone.now()
    run_records.record_runs(
        [
            RunSent(
                iteration_id=run.pk,
                task_id=task_id,
                index=index,
                number=1,
                worker_peer_id=PEER,
                sent_at=now,
            ),
            RunEnded(
                iteration_id=run.pk,
                task_id=task_id,
                index=index,
                number=1,
                worker_peer_id=PEER,
                outcome=state,
                run_state=state,
                result=result,
                error=error,
                started_at=now,
                finished_at=now,
            ),
        ]
    )


def _act(staff: Client, action: str, *task_ids: str) -> str:
    response = staff.post(
        "/admin/tasks_app/task/",
        {"action": action, "_selected_action": list(task_ids)},
        follow=True,
    )
    assert response.status_code == 200
    return response.content.decode()


def _states(task_id: str) -> list[str]:
    return list(
        Iteration.objects.filter(task_id=task_id).order_by("index").values_list("state", flat=True)
    )


def test_cancel_action_cancels_the_runs_not_started(staff: Client) -> None:
    _task("c1")
    _task("keep")
    _run("c1", 0, "succeeded", result="2832")
    page = _act(staff, "cancel_tasks", "c1")
    assert "2 runs cancelled" in page
    assert _states("c1") == ["succeeded", "cancelled", "cancelled"]
    assert all(
        it.finished_at is not None for it in Iteration.objects.filter(task_id="c1", index__gt=0)
    )
    assert _states("keep") == ["pending"] * 3  # only the selected task
    listing = staff.get("/admin/tasks_app/task/?state=cancelled").content.decode()
    assert "c1" in listing and "keep" not in listing


def test_rerun_action_queues_failed_runs_and_tells_the_scheduler(staff: Client, layer) -> None:  # type: ignore[no-untyped-def]
    _task("r1")
    _run("r1", 0, "failed", error="wasm trap: unreachable")
    _run("r1", 1, "timed_out", error="time limit")
    _run("r1", 2, "succeeded", result="2832")
    before = timezone.now()
    page = _act(staff, "rerun_failed_runs", "r1")
    assert "2 failed runs queued again" in page
    assert _states("r1") == ["pending", "pending", "succeeded"]
    for run in Iteration.objects.filter(task_id="r1", index__lt=2):
        assert run.due_at >= before and run.error == "" and run.finished_at is None
    # The gateway's scheduler is told to load the task's pending runs.
    message = async_to_sync(layer.receive)(GATEWAY_CHANNEL)
    assert message == {"type": "task.submitted", "task": "r1"}


def test_task_page_shows_each_attempt_with_worker_timings_and_outcome(staff: Client) -> None:
    _task("a1", repeats=2)
    _run("a1", 0, "succeeded", result="2832")
    _run("a1", 1, "failed", error="wasm trap: unreachable")
    page = staff.get("/admin/tasks_app/task/a1/change/").content.decode()
    assert page.count(PEER) >= 4  # run inline + attempts table, for both runs
    assert "2832" in page
    assert "wasm trap: unreachable" in page
    assert "run time" in page and "0.000 s" in page


def test_worker_pool_page_shows_every_column(staff: Client) -> None:
    WorkerNode.objects.create(
        peer_id=PEER,
        address="127.0.0.1:5555",
        concurrency=4,
        in_flight=2,
        completed=7,
        failed=1,
        connected=True,
        last_seen=timezone.now(),
    )
    page = staff.get("/admin/cluster_app/worker/").content.decode()
    for column in ("peer", "address", "concurrency", "in flight", "completed", "failed", "last"):
        assert column in page.lower(), column
    assert PEER in page and "127.0.0.1:5555" in page
    assert 'alt="True"' in page  # connected
