"""A submission in the gateway's own process hands its runs to the
scheduler's loop directly; elsewhere (or once the gateway stopped) the
notification goes through the channel layer."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import Client

from tasks_app import notify
from tasks_app.models import Iteration
from tasks_app.selectors import DueRun
from tests.api.forms import form

pytestmark = pytest.mark.django_db


@pytest.fixture
def gateway_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """An event loop on its own thread, standing in for the gateway's."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    notify.stop_serving_locally()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


def _nothing_on_the_layer(layer: Any) -> bool:
    async def receive() -> Any:
        return await asyncio.wait_for(layer.receive(notify.GATEWAY_CHANNEL), 0.2)

    try:
        async_to_sync(receive)()
    except TimeoutError:
        return True
    return False


def test_runs_go_to_the_local_scheduler_on_its_loop(
    client: Client, layer: Any, gateway_loop: asyncio.AbstractEventLoop
) -> None:
    received: list[tuple[list[DueRun], threading.Thread]] = []
    arrived = threading.Event()

    def add_runs(runs: list[DueRun]) -> None:
        received.append((runs, threading.current_thread()))
        arrived.set()

    notify.serve_locally(gateway_loop, add_runs)
    assert client.post("/tasks", form(id="local")).status_code == 201
    assert arrived.wait(5)
    [(runs, thread)] = received
    stored = Iteration.objects.filter(task_id="local").order_by("index")
    assert [run.iteration_id for run in runs] == [run.pk for run in stored]
    assert thread.name != threading.current_thread().name  # called on the loop's thread
    assert _nothing_on_the_layer(layer)


def test_without_a_local_gateway_the_layer_carries_the_runs(client: Client, layer: Any) -> None:
    notify.stop_serving_locally()
    assert client.post("/tasks", form(id="remote")).status_code == 201
    message = async_to_sync(layer.receive)(notify.GATEWAY_CHANNEL)
    assert message["task"] == "remote" and len(message["runs"]) == 3


def test_a_closed_gateway_loop_falls_back_to_the_layer(
    client: Client, layer: Any, gateway_loop: asyncio.AbstractEventLoop
) -> None:
    closed = asyncio.new_event_loop()
    closed.close()
    notify.serve_locally(closed, lambda runs: None)
    try:
        assert client.post("/tasks", form(id="fallback")).status_code == 201
    finally:
        notify.stop_serving_locally()
    message = async_to_sync(layer.receive)(notify.GATEWAY_CHANNEL)
    assert message["task"] == "fallback"


@pytest.fixture
def cancels(gateway_loop: asyncio.AbstractEventLoop) -> Iterator[list[tuple[str, str]]]:
    """A local scheduler that records each cancel it is told of, and the
    thread it was told on."""
    told: list[tuple[str, str]] = []

    def cancel_runs(task_id: str) -> None:
        told.append((task_id, threading.current_thread().name))

    notify.serve_locally(gateway_loop, lambda runs: None, cancel_runs)
    yield told


def test_a_cancel_tells_the_local_scheduler_even_with_nothing_running(
    client: Client, cancels: list[tuple[str, str]]
) -> None:
    assert client.post("/tasks", form(id="idle", start="60")).status_code == 201
    assert client.delete("/tasks/idle").status_code == 200
    assert [task for task, _ in cancels] == ["idle"]
    assert cancels[0][1] != threading.current_thread().name  # on the scheduler's loop


def test_the_admins_cancel_tells_the_scheduler_with_nothing_running(
    client: Client, cancels: list[tuple[str, str]]
) -> None:
    from django.contrib.auth.models import User

    assert client.post("/tasks", form(id="admin-idle", start="60")).status_code == 201
    User.objects.create_superuser("boss", "boss@example.com", "pw")
    client.login(username="boss", password="pw")
    response = client.post(
        "/admin/tasks_app/task/",
        {"action": "cancel_tasks", "_selected_action": ["admin-idle"]},
        follow=True,
    )
    assert response.status_code == 200
    assert [task for task, _ in cancels] == ["admin-idle"]
    assert set(Iteration.objects.filter(task_id="admin-idle").values_list("state", flat=True)) == {
        "cancelled"
    }


def test_without_a_local_gateway_a_cancel_goes_by_the_layer(client: Client, layer: Any) -> None:
    notify.stop_serving_locally()
    assert client.post("/tasks", form(id="far", start="60")).status_code == 201
    async_to_sync(layer.receive)(notify.GATEWAY_CHANNEL)  # the submission's message
    assert client.delete("/tasks/far").status_code == 200
    message = async_to_sync(layer.receive)(notify.GATEWAY_CHANNEL)
    assert message == {"type": "task.cancelled", "task": "far"}
