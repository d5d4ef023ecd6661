"""The Module admin: kind, size, exports and the tasks using each module,
read-only like every other admin page."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tasks_app.models import Module
from tests.api.forms import stored_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client: Client) -> Client:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    client.login(username="admin", password="pw-for-tests")
    return client


def test_modules_list_and_page_show_exports_and_tasks(staff: Client) -> None:
    stored_task("uses-it")
    module = Module.objects.get()
    listing = staff.get("/admin/tasks_app/module/")
    assert listing.status_code == 200
    assert module.sha256[:12].encode() in listing.content
    assert b"memory, run" in listing.content
    page = staff.get(f"/admin/tasks_app/module/{module.sha256}/change/")
    assert page.status_code == 200
    assert b"memory, run" in page.content and b"uses-it" in page.content
    assert b'name="_save"' not in page.content  # read-only
    assert staff.get("/admin/tasks_app/module/add/").status_code == 403
