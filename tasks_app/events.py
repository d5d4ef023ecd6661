"""Run state changes, published on the channel layer (in process by default,
Redis in the scale-out configuration) for live watchers: every change goes
to the group `ww.tasks` and to the task's own group."""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

log = logging.getLogger("ww.events")

ALL_TASKS_GROUP = "ww.tasks"


def task_group(task_id: str) -> str:
    """The group of one task's events. Task ids may hold characters group
    names may not, so the name is derived from a hash of the id."""
    return "ww.task." + hashlib.sha256(task_id.encode()).hexdigest()[:32]


def run_event(
    *,
    task_id: str,
    index: int,
    state: str,
    worker: str,
    attempt: int,
    result: str,
    error: str,
    completions: int,
    at: datetime,
) -> dict[str, Any]:
    """A `run.changed` event, as the websockets stream it."""
    return {
        "type": "run.changed",
        "task": task_id,
        "index": index,
        "state": state,
        "worker": worker,
        "attempt": attempt,
        "result": result,
        "error": error,
        "completions": completions,
        "at": at.isoformat(),
    }


def run_changed(payload: dict[str, Any]) -> None:
    """Publish `payload` (a run's new state) once the transaction commits."""
    transaction.on_commit(lambda: _publish({"type": "run.changed", **payload}))


def _publish(message: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        send = async_to_sync(layer.group_send)
        send(ALL_TASKS_GROUP, message)
        send(task_group(message["task"]), message)
    except Exception:  # watchers are best effort; the rows are the truth
        log.exception("could not publish %s", message.get("type"))


async def publish_runs(messages: list[dict[str, Any]]) -> None:
    """Publish run events from the event loop (the scheduler's journal)."""
    layer = get_channel_layer()
    if layer is None:
        return
    for message in messages:
        await layer.group_send(ALL_TASKS_GROUP, message)
        await layer.group_send(task_group(message["task"]), message)
