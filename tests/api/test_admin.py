"""The admin: a staff user sees tasks with progress, runs inline, and the
worker registry; anonymous users are sent to the login page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from cluster_app.models import WorkerNode
from tasks_app import services
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.login(username="admin", password="pw-for-tests")
    return client


def _task(task_id: str = "task1") -> None:
    services.create_task(
        task_id=task_id,
        description="Hash puzzle",
        wasm=HASH_WASM,
        duration=5,
        start=1,
        delay=2,
        repeats=3,
        input=0,
        difficulty=3,
    )


def test_admin_needs_a_login(client: Client) -> None:
    response = client.get("/admin/tasks_app/task/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_task_list_shows_progress_and_filters_by_state(staff: Client) -> None:
    _task()
    page = staff.get("/admin/tasks_app/task/")
    assert page.status_code == 200
    assert b"task1" in page.content
    assert b"0 / 3" in page.content
    assert b"scheduled" in page.content
    assert b"task1" in staff.get("/admin/tasks_app/task/?state=scheduled").content
    assert b"task1" not in staff.get("/admin/tasks_app/task/?state=succeeded").content


def test_task_page_shows_its_runs_inline(staff: Client) -> None:
    _task()
    page = staff.get("/admin/tasks_app/task/task1/change/")
    assert page.status_code == 200
    assert page.content.lower().count(b"pending") >= 3


def test_worker_registry_lists_peers(staff: Client) -> None:
    WorkerNode.objects.create(
        peer_id="12D3KooWExample",
        address="127.0.0.1:5555",
        concurrency=2,
        connected=True,
        last_seen=timezone.now(),
    )
    page = staff.get("/admin/cluster_app/workernode/")
    assert page.status_code == 200
    assert b"12D3KooWExample" in page.content
    assert b"127.0.0.1:5555" in page.content
