"""The Schedule admin as a staff user uses it: add a schedule (its first
firing is made), see its next fire times and last firings, pause, resume
and trigger it by actions."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tasks_app import schedule_services
from tasks_app.models import Module, Schedule, Task
from tests.api.forms import HASH_WASM

pytestmark = pytest.mark.django_db
MODULE = "a" * 64


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.login(username="admin", password="pw-for-tests")
    Module.objects.create(sha256=MODULE, wasm=HASH_WASM, size=len(HASH_WASM), kind="run")
    return client


def test_adding_a_schedule_in_the_admin_makes_its_first_firing(staff: Client) -> None:
    response = staff.post(
        "/admin/tasks_app/schedule/add/",
        {
            "name": "nightly",
            "module": MODULE,
            "template": '{"input": 4}',
            "cron": "30 2 * * *",
            "timezone": "Europe/Paris",
            "jitter": "0",
            "overlap": "skip",
            "catchup_window": "60",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    schedule = Schedule.objects.get(name="nightly")
    assert schedule.next_fire_at is not None
    task = Task.objects.get(schedule=schedule)
    assert task.input == 4 and task.pk.startswith("nightly@")
    page = staff.get(f"/admin/tasks_app/schedule/{schedule.pk}/change/").content.decode()
    assert "next fire times" in page.lower() and schedule.next_fire_at.isoformat() in page
    assert task.pk in page  # its last firings
    assert staff.get("/admin/tasks_app/schedule/").status_code == 200


def test_a_bad_template_is_refused_on_the_form(staff: Client) -> None:
    response = staff.post(
        "/admin/tasks_app/schedule/add/",
        {
            "name": "bad",
            "module": MODULE,
            "template": '{"args": [1]}',
            "every": "5",
            "timezone": "UTC",
            "jitter": "0",
            "overlap": "skip",
            "catchup_window": "60",
        },
    )
    assert response.status_code == 200 and not Schedule.objects.exists()


def test_pause_resume_and_trigger_actions(staff: Client) -> None:
    schedule_services.create_schedule(name="s", module_id=MODULE, every=3600.0, template={})
    pk = Schedule.objects.get().pk
    url = "/admin/tasks_app/schedule/"
    staff.post(url, {"action": "pause", "_selected_action": [pk]})
    assert Schedule.objects.get().paused
    staff.post(url, {"action": "resume", "_selected_action": [pk]})
    assert not Schedule.objects.get().paused
    before = Task.objects.count()
    staff.post(url, {"action": "trigger", "_selected_action": [pk]})
    assert Task.objects.count() == before + 1
