"""Cross-site writes through Django (tasks_app/api/origin.py's middleware):
a browser page of another origin cannot submit, cancel or log into the
admin; the gateway's own pages and clients without Origin still can."""

from __future__ import annotations

import dataclasses

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from tasks_app.models import Task
from tests.api.forms import form

OWN = "http://testserver"  # the test client's host
FOREIGN = "http://127.0.0.2:9000"


@pytest.mark.django_db
def test_a_post_from_another_origin_is_refused_and_nothing_is_stored(client: Client) -> None:
    response = client.post(
        "/tasks", form(id="xs"), headers={"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 403
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["field"] == "Origin" and FOREIGN in body["problem"]
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_sec_fetch_site_without_origin_is_enough_to_refuse(client: Client) -> None:
    response = client.post("/tasks", form(id="xs"), headers={"Sec-Fetch-Site": "same-site"})
    assert response.status_code == 403 and response.json()["field"] == "Sec-Fetch-Site"
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_a_json_post_and_a_delete_from_another_origin_are_refused(client: Client) -> None:
    assert client.post("/tasks", form(id="mine")).status_code == 201
    refused = client.delete("/tasks/mine", headers={"Origin": FOREIGN})
    assert refused.status_code == 403
    assert Task.objects.get(pk="mine").cancelled_at is None
    json_post = client.post(
        "/tasks", {"id": "j"}, content_type="application/json", headers={"Origin": FOREIGN}
    )
    assert json_post.status_code == 403
    assert not Task.objects.filter(pk="j").exists()


@pytest.mark.django_db
def test_the_admin_login_from_another_origin_is_refused(client: Client) -> None:
    User.objects.create_superuser("admin", "admin@example.com", "pw-for-tests")
    response = client.post(
        "/admin/login/",
        {"username": "admin", "password": "pw-for-tests"},
        headers={"Origin": FOREIGN},
    )
    assert response.status_code == 403 and response.json()["field"] == "Origin"
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_same_origin_pages_and_clients_without_origin_still_write(client: Client) -> None:
    same = client.post(
        "/tasks", form(id="docs"), headers={"Origin": OWN, "Sec-Fetch-Site": "same-origin"}
    )
    assert same.status_code == 201
    assert client.post("/tasks", form(id="curl")).status_code == 201
    assert client.delete("/tasks/curl").status_code == 200


@pytest.mark.django_db
@override_settings(WW_TASKS=dataclasses.replace(settings.WW_TASKS, trusted_origins=(FOREIGN,)))
def test_a_trusted_origin_may_write(client: Client) -> None:
    response = client.post(
        "/tasks", form(id="trusted"), headers={"Origin": FOREIGN, "Sec-Fetch-Site": "cross-site"}
    )
    assert response.status_code == 201


@pytest.mark.django_db
def test_reads_from_another_origin_are_not_refused(client: Client) -> None:
    assert client.get("/tasks", headers={"Origin": FOREIGN}).status_code == 200
