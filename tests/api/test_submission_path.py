"""The submission path as the gateway serves it: Django run in one call on a
long-lived thread (wwproject.asgi), the task stored in one transaction, and
the notification carrying the new runs to the scheduler."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db.backends.signals import connection_created
from django.test import Client
from django.utils.dateparse import parse_datetime

from tasks_app import services
from tasks_app.models import Iteration, Module, Task
from tasks_app.notify import GATEWAY_CHANNEL, run_from_message
from tests.api.asgi import asgi_request
from tests.api.forms import HASH_WASM, form
from tests.e2e.cluster import seed_form
from wwproject.asgi import application
from wwproject.compat_django import ThreadedDjangoHandler

# -- the service -----------------------------------------------------------------


@pytest.mark.django_db
def test_create_task_returns_the_runs_it_stored() -> None:
    task, runs = services.create_task(
        task_id="r3",
        description="",
        wasm=HASH_WASM,
        duration=5,
        start=1,
        delay=2,
        repeats=3,
        input=7,
        difficulty=3,
        retries=2,
    )
    stored = list(Iteration.objects.filter(task_id="r3").order_by("index"))
    assert [run.iteration_id for run in runs] == [it.pk for it in stored]
    assert [run.due_at for run in runs] == [it.due_at for it in stored]
    assert [run.index for run in runs] == [0, 1, 2]
    for run in runs:
        assert (run.task_id, run.module_hash) == ("r3", task.module_id)
        assert (run.input, run.difficulty, run.duration, run.retries) == (7, 3, 5, 2)
        assert run.attempts == 0


@pytest.mark.django_db
def test_duplicate_id_with_a_new_module_stores_nothing(client: Client) -> None:
    import wasmtime

    assert client.post("/tasks", form(id="dup")).status_code == 201
    other = bytes(
        wasmtime.wat2wasm('(module (func (export "run") (param i64 i64) (result i64) local.get 0))')
    )
    response = client.post(
        "/tasks", {**seed_form(id="dup"), "wasm": SimpleUploadedFile("o.wasm", other)}
    )
    assert response.status_code == 409
    assert response.json()["field"] == "id"
    assert Module.objects.count() == 1  # the new module went with the refused task
    assert Task.objects.get(pk="dup").module_id == Module.objects.get().pk


@pytest.mark.django_db
def test_duplicate_id_is_reported_before_a_bad_module(client: Client) -> None:
    assert client.post("/tasks", form(id="first")).status_code == 201
    response = client.post(
        "/tasks", {**seed_form(id="first"), "wasm": SimpleUploadedFile("x.wasm", b"not wasm")}
    )
    assert response.status_code == 409
    assert response.json()["field"] == "id"


@pytest.mark.django_db
def test_submission_notification_carries_its_runs(client: Client, layer: Any) -> None:
    response = client.post("/tasks", form(id="carried"))
    assert response.status_code == 201
    message = async_to_sync(layer.receive)(GATEWAY_CHANNEL)
    assert message["type"] == "task.submitted" and message["task"] == "carried"
    runs = [run_from_message(fields) for fields in message["runs"]]
    stored = list(Iteration.objects.filter(task_id="carried").order_by("index"))
    assert [run.iteration_id for run in runs] == [it.pk for it in stored]
    assert [run.due_at.timestamp() for run in runs] == [it.due_at.timestamp() for it in stored]


# -- the ASGI handler --------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_post_through_the_asgi_app_stores_the_task(layer: Any) -> None:
    status, headers, content = asgi_request(
        application,
        "POST",
        "/tasks",
        data=seed_form(id="via-asgi"),
        files={"wasm": ("hash.wasm", HASH_WASM)},
    )
    assert status == 201, content
    assert headers["location"] == "/tasks/via-asgi"
    body = httpx.Response(status, content=content).json()
    assert body["id"] == "via-asgi" and body["runs"] == 3 and body["state"] == "scheduled"
    received = parse_datetime(body["received_at"])
    assert Task.objects.get(pk="via-asgi").received_at == received
    assert Iteration.objects.filter(task_id="via-asgi").count() == 3


@pytest.mark.django_db(transaction=True)
def test_errors_through_the_asgi_app_are_json_naming_the_field() -> None:
    status, _, content = asgi_request(
        application,
        "POST",
        "/tasks/",
        data=seed_form(id="bad", repeats="-1"),
        files={"wasm": ("hash.wasm", HASH_WASM)},
    )
    assert status == 400
    assert httpx.Response(status, content=content).json()["field"] == "repeats"
    assert not Task.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_requests_on_one_thread_share_its_database_connection() -> None:
    handler = ThreadedDjangoHandler(threads=1)
    opened: list[object] = []

    def count(sender: object, connection: object, **kwargs: object) -> None:
        opened.append(connection)

    connection_created.connect(count)
    try:
        for _ in range(3):
            status, _, _ = asgi_request(handler, "GET", "/tasks")
            assert status == 200
    finally:
        connection_created.disconnect(count)
    assert len(opened) <= 1  # the first request may open it; the others reuse it
