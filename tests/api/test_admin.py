"""The admin: a staff user sees tasks with progress, runs inline, and the
worker registry; anonymous users are sent to the login page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from tasks_app import services
from tasks_app.models import Iteration, Task, WorkerNode
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
    page = staff.get("/admin/cluster_app/worker/")
    assert page.status_code == 200
    assert b"12D3KooWExample" in page.content
    assert b"127.0.0.1:5555" in page.content


def test_task_page_is_read_only(staff: Client) -> None:
    """Nothing on a task is meant to be edited: no form fields, no Save."""
    _task()
    page = staff.get("/admin/tasks_app/task/task1/change/").content.decode()
    assert 'name="_save"' not in page and 'name="_continue"' not in page
    assert "<textarea" not in page
    assert "Hash puzzle" in page  # the description, shown as text
    refused = staff.post("/admin/tasks_app/task/task1/change/", {"description": "edited"})
    assert refused.status_code == 403
    assert Task.objects.get(pk="task1").description == "Hash puzzle"


def test_actions_need_the_right_to_change_tasks(client: Client) -> None:
    """A staff user who may only view tasks sees them, but cannot cancel them."""
    _task()
    viewer = User.objects.create_user("viewer", password="pw-for-tests", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_task"))
    client.login(username="viewer", password="pw-for-tests")
    listing = client.get("/admin/tasks_app/task/").content.decode()
    assert "task1" in listing and 'name="action"' not in listing
    client.post("/admin/tasks_app/task/", {"action": "cancel_tasks", "_selected_action": ["task1"]})
    assert set(Iteration.objects.filter(task_id="task1").values_list("state", flat=True)) == {
        "pending"
    }


def test_a_task_of_many_runs_shows_the_first_100_and_links_to_the_rest(staff: Client) -> None:
    services.create_task(
        task_id="many",
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=600,
        delay=1,
        repeats=250,
        input=0,
        difficulty=3,
    )
    page = staff.get("/admin/tasks_app/task/many/change/").content.decode()
    assert page.count("<tr data-run=") == 100
    assert "Runs 0\N{EN DASH}99 of 250" in page
    assert "/admin/tasks_app/iteration/?task__id__exact=many" in page
    assert "250 pending" in page
    runs = staff.get("/admin/tasks_app/iteration/?task__id__exact=many").content.decode()
    assert "250 iterations" in runs


def test_task_list_is_newest_first(staff: Client) -> None:
    _task("older")
    _task("newer")
    page = staff.get("/admin/tasks_app/task/").content.decode()
    assert page.index(">newer<") < page.index(">older<")


def test_a_task_id_the_admin_quotes_in_urls_shows_its_runs(staff: Client) -> None:
    """Task ids may hold ":" and "@", which the admin writes as "_3A", "_40"."""
    _task("job:1@host")
    page = staff.get("/admin/tasks_app/task/job_3A1_40host/change/").content.decode()
    assert page.count("<tr data-run=") == 3
