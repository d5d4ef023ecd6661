"""The status pages' views through Django's test client: closed with the
API's reads (WW_READS_NEED_AUTH), a task's page reads a bounded number of
rows whatever the task's size, and the status JSON counts runs by state and
lists workers gone long ago apart."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from tasks_app import services
from tasks_app.models import Iteration, Task, WorkerNode
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db

PAGES = ("/", "/api/status", "/status/tasks/t1/")


def _task(task_id: str = "t1", repeats: int = 3) -> None:
    services.create_task(
        task_id=task_id,
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=600,
        delay=1,
        repeats=repeats,
        input=0,
        difficulty=3,
    )


def test_pages_are_open_while_reads_are(client: Client) -> None:
    _task()
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_closed_reads_close_the_status_pages(client: Client, settings) -> None:  # type: ignore[no-untyped-def]
    settings.WW_TASKS = dataclasses.replace(settings.WW_TASKS, reads_need_auth=True)
    _task()
    for path in ("/", "/status/tasks/t1/"):
        anonymous = client.get(path)
        assert anonymous.status_code == 302, path
        assert anonymous["Location"].startswith("/admin/login/?next="), path
    refused = client.get("/api/status")
    assert refused.status_code == 401
    assert "t1" not in refused.content.decode()
    user = User.objects.create_user("reader", password="pw-for-tests", is_staff=True)
    token = Token.objects.create(user=user).key
    assert client.get("/api/status", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200
    assert client.get("/api/status", HTTP_AUTHORIZATION="Token wrong").status_code == 401
    client.login(username="reader", password="pw-for-tests")
    for path in PAGES:
        assert client.get(path).status_code == 200, path


def test_task_page_reads_the_same_rows_for_any_size(
    client: Client, django_assert_max_num_queries
) -> None:  # type: ignore[no-untyped-def]
    _task("small", repeats=3)
    _task("large", repeats=3000)
    with django_assert_max_num_queries(6):
        small = client.get("/status/tasks/small/")
    with django_assert_max_num_queries(6):
        large = client.get("/status/tasks/large/?page=7")
    assert small.status_code == large.status_code == 200
    assert large.content.decode().count('<tbody class="run"') == 100
    assert 'data-run="600"' in large.content.decode()
    assert 'data-run="700"' not in large.content.decode()
    # Out-of-range pages show the nearest page.
    last = client.get("/status/tasks/large/?page=999").content.decode()
    assert 'data-run="2999"' in last and "page 30 of 30" in last


def test_status_json_counts_runs_by_state_and_sets_gone_workers_apart(client: Client) -> None:
    _task("mixed", repeats=4)
    Iteration.objects.filter(task_id="mixed", index=0).update(state="succeeded")
    Iteration.objects.filter(task_id="mixed", index=1).update(state="timed_out")
    Iteration.objects.filter(task_id="mixed", index=2).update(state="cancelled")
    Task.objects.filter(pk="mixed").update(succeeded_count=1)  # as the journal keeps it
    now = timezone.now()
    WorkerNode.objects.create(peer_id="12D3KooWLive", connected=True, last_seen=now)
    WorkerNode.objects.create(
        peer_id="12D3KooWJustLeft", connected=False, last_seen=now - timedelta(minutes=1)
    )
    for hours in (1, 2):
        WorkerNode.objects.create(
            peer_id=f"12D3KooWGone{hours}",
            connected=False,
            last_seen=now - timedelta(hours=hours),
        )
    status = client.get("/api/status").json()
    (task,) = status["tasks"]
    assert task["counts"] == {
        "succeeded": 1,
        "failed": 0,
        "timed_out": 1,
        "cancelled": 1,
        "running": 0,
        "pending": 1,
    }
    assert task["finished"] == 3 and task["runs"] == 4
    assert task["url"] == "/status/tasks/mixed/"
    assert [w["peer_id"] for w in status["workers"]] == ["12D3KooWLive", "12D3KooWJustLeft"]
    assert [w["peer_id"] for w in status["gone_workers"]] == ["12D3KooWGone1", "12D3KooWGone2"]
    assert status["gone_count"] == 2
