"""Tell the gateway's scheduler about new and cancelled tasks, through the
channel layer (in process by default, Redis in the scale-out configuration)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger("ww.tasks")

GATEWAY_CHANNEL = "ww.gateway"


def task_submitted(task_id: str) -> None:
    """New runs are waiting (a new task, or runs queued again)."""
    _send({"type": "task.submitted", "task": task_id})


def task_cancelled(task_id: str) -> None:
    """The task's running runs must be interrupted."""
    _send({"type": "task.cancelled", "task": task_id})


def _send(message: dict[str, str]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(GATEWAY_CHANNEL, message)
    except Exception:  # the gateway also loads due runs when it starts
        log.exception("could not tell the gateway %s", message)
