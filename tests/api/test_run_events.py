"""Run events travel through the channel layer in batches (one message per
group per batch) and reach websocket clients as one `run.changed` frame per
change, in order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import Client

from tasks_app import events
from tasks_app.routing import websocket_urlpatterns
from tests.api.forms import form

AT = datetime(2026, 11, 26, tzinfo=UTC)


def change(task_id: str, index: int, state: str) -> dict[str, Any]:
    return events.run_event(
        task_id=task_id,
        index=index,
        state=state,
        worker="12D3KooWpeer",
        attempt=1,
        result="2832" if state == "succeeded" else "",
        error="",
        completions=1 if state == "succeeded" else 0,
        at=AT,
    )


def _received(layer: Any, channel: str) -> list[dict[str, Any]]:
    """Every message waiting on `channel`."""

    async def drain() -> list[dict[str, Any]]:
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(layer.receive(channel), 0.1))
            except TimeoutError:
                return out

    return async_to_sync(drain)()


def test_a_batch_is_one_message_per_group_with_its_changes_in_order(layer: Any) -> None:
    async_to_sync(layer.group_add)(events.ALL_TASKS_GROUP, "watcher.all")
    async_to_sync(layer.group_add)(events.task_group("a"), "watcher.a")
    async_to_sync(layer.group_add)(events.task_group("b"), "watcher.b")
    batch = [change("a", 0, "running"), change("b", 0, "running"), change("a", 0, "succeeded")]

    async_to_sync(events.publish_runs)(batch)

    assert _received(layer, "watcher.all") == [{"type": "runs.changed", "events": batch}]
    assert _received(layer, "watcher.a") == [
        {"type": "runs.changed", "events": [batch[0], batch[2]]}
    ]
    assert _received(layer, "watcher.b") == [{"type": "runs.changed", "events": [batch[1]]}]


def test_an_empty_batch_sends_nothing(layer: Any) -> None:
    async_to_sync(layer.group_add)(events.ALL_TASKS_GROUP, "watcher.all")
    async_to_sync(events.publish_runs)([])
    assert _received(layer, "watcher.all") == []


def test_a_websocket_client_gets_one_frame_per_change_in_order(layer: Any) -> None:
    batch = [change("a", 0, "running"), change("a", 1, "running"), change("a", 0, "succeeded")]

    async def watch() -> list[dict[str, Any]]:
        client = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/tasks/a/")
        connected, _ = await client.connect()
        assert connected
        try:
            await events.publish_runs([*batch, change("other", 0, "running")])
            frames = [await client.receive_json_from(timeout=2) for _ in batch]
            assert await client.receive_nothing(timeout=0.2)
            return frames
        finally:
            await client.disconnect()

    frames = async_to_sync(watch)()
    assert frames == batch
    assert all(frame["type"] == "run.changed" for frame in frames)


@pytest.mark.django_db
def test_cancelling_publishes_the_runs_it_cancelled_after_commit(
    client: Client, layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    response = client.post("/tasks", form(id="ev-cancel", start="60", delay="1", repeats="3"))
    assert response.status_code == 201
    async_to_sync(layer.group_add)(events.task_group("ev-cancel"), "watcher.task")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.delete("/tasks/ev-cancel").status_code == 200
        assert _received(layer, "watcher.task") == []  # nothing before the commit
    for callback in callbacks:
        callback()

    [message] = _received(layer, "watcher.task")
    assert message["type"] == "runs.changed"
    assert [(e["index"], e["state"]) for e in message["events"]] == [
        (0, "cancelled"),
        (1, "cancelled"),
        (2, "cancelled"),
    ]


def test_an_event_carries_a_few_hundred_bytes_of_a_result_and_says_it_was_cut() -> None:
    event = events.run_event(
        task_id="big",
        index=0,
        state="succeeded",
        worker="12D3KooWpeer",
        attempt=1,
        result="y" * 65536,
        error="é" * 1000,
        completions=1,
        at=AT,
    )
    assert event["result"] == "y" * 256 and event["result_truncated"] is True
    # Cut by bytes of UTF-8, never inside a character.
    assert len(event["error"].encode()) <= 256 and set(event["error"]) == {"é"}
    assert event["error_truncated"] is True
    small = change("a", 0, "succeeded")
    assert small["result"] == "2832" and small["result_truncated"] is False
    assert small["error_truncated"] is False


def test_a_watcher_the_layer_gave_up_on_is_closed_as_a_slow_reader(layer: Any) -> None:
    from tasks_app.compat_channels import OVERFLOWED

    async def watch() -> dict[str, Any]:
        client = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/tasks/")
        connected, _ = await client.connect()
        assert connected
        try:
            [channel] = list(layer.groups[events.ALL_TASKS_GROUP])
            await layer.send(channel, dict(OVERFLOWED))
            return await client.receive_output(timeout=2)
        finally:
            await client.disconnect()

    closed = async_to_sync(watch)()
    assert closed == {
        "type": "websocket.close",
        "code": events.SLOW_READER_CODE,
        "reason": events.SLOW_READER_REASON,
    }
