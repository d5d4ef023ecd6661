"""Run state changes, published on the channel layer (in process by default,
Redis in the scale-out configuration) for live watchers: every change goes
to the group `ww.tasks` and to the task's own group.

Changes travel in batches: one `runs.changed` layer message per group holds
a batch's events in order (a journal batch can hold thousands), and the
websocket consumers send each event as its own `run.changed` frame.

An event carries at most `WW_EVENT_TEXT_BYTES` of a run's result, error and
stderr (`result_truncated` / `error_truncated` / `stderr_truncated` say when
they were cut; an output that is not UTF-8 comes as `result_base64`, of at
most that many bytes before encoding, with `result_truncated`): every
watcher gets every event, so a 64 KiB result would cost 64 KiB per watcher
per run; the whole result stays at `GET /tasks/<id>`. A watcher that falls
too far behind is closed with `SLOW_READER_CODE` (cluster_app/compat_daphne.py
for the socket, tasks_app/compat_channels.py for the layer's queue)."""

from __future__ import annotations

import base64
import hashlib
import logging
from datetime import datetime
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction

log = logging.getLogger("ww.events")

ALL_TASKS_GROUP = "ww.tasks"
# The close code of a watcher dropped for not keeping up: 4000-4999 is for
# applications (RFC 6455 7.4.2); 4008 echoes 1008, "policy violation".
SLOW_READER_CODE = 4008
SLOW_READER_REASON = "slow reader"


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
    stderr: str = "",
    result_bytes: bytes | None = None,
) -> dict[str, Any]:
    """A `run.changed` event, as the websockets stream it."""
    limit = settings.WW_TASKS.event_text_bytes
    result, result_truncated = clip(result, limit)
    error, error_truncated = clip(error, limit)
    event = {
        "type": "run.changed",
        "task": task_id,
        "index": index,
        "state": state,
        "worker": worker,
        "attempt": attempt,
        "result": result,
        "result_truncated": result_truncated,
        "error": error,
        "error_truncated": error_truncated,
        "completions": completions,
        "at": at.isoformat(),
    }
    # Only when there is one: most runs have neither, and every watcher gets every event.
    if stderr:
        event["stderr"], event["stderr_truncated"] = clip(stderr, limit)
    if result_bytes:
        event["result_base64"] = base64.b64encode(result_bytes[:limit]).decode("ascii")
        event["result_truncated"] = len(result_bytes) > limit
    return event


def clip(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to at most `limit` bytes of UTF-8 (never inside a
    character), and whether it was cut."""
    if len(text) * 4 <= limit:  # short enough whatever its characters
        return text, False
    encoded = text.encode("utf-8", "surrogatepass")
    if len(encoded) <= limit:
        return text, False
    return encoded[:limit].decode("utf-8", "ignore"), True


def runs_changed(changes: list[dict[str, Any]]) -> None:
    """Publish `changes` (`run_event`s) once the transaction commits (the
    REST path, in a request's thread)."""
    if changes:
        transaction.on_commit(lambda: _publish_from_thread(changes))


def _publish_from_thread(changes: list[dict[str, Any]]) -> None:
    try:
        async_to_sync(publish_runs)(changes)
    except Exception:  # watchers are best effort; the rows are the truth
        log.exception("could not publish %d run events", len(changes))


async def publish_runs(changes: list[dict[str, Any]]) -> None:
    """Publish `changes` (`run_event`s, in order) from the event loop: to
    every watcher, and to each task's watchers its own."""
    layer = get_channel_layer()
    if layer is None or not changes:
        return
    await layer.group_send(ALL_TASKS_GROUP, batch_message(changes))
    by_task: dict[str, list[dict[str, Any]]] = {}
    for change in changes:
        by_task.setdefault(change["task"], []).append(change)
    for task_id, own in by_task.items():
        await layer.group_send(task_group(task_id), batch_message(own))


def batch_message(changes: list[dict[str, Any]]) -> dict[str, Any]:
    """The layer message carrying `changes`, handled by `runs_changed` on
    the consumers."""
    return {"type": "runs.changed", "events": changes}


def firing_event(
    *, schedule: str, task_id: str, fire_at: datetime, decision: str, reason: str, at: datetime
) -> dict[str, Any]:
    """A `schedule.fired` event: a schedule's firing was decided when due
    (`decision`: run, wait, skip; `reason` says why it waits or is skipped).
    It goes to every watcher and to the firing task's own watchers."""
    return {
        "type": "schedule.fired",
        "schedule": schedule,
        "task": task_id,
        "fire_at": fire_at.isoformat(),
        "decision": decision,
        "reason": reason,
        "at": at.isoformat(),
    }
