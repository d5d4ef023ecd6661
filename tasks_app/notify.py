"""Tell the gateway's scheduler about new and cancelled tasks, through the
channel layer (in process by default, Redis in the scale-out configuration)."""

from __future__ import annotations

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

log = logging.getLogger("ww.tasks")

GATEWAY_CHANNEL = "ww.gateway"


def task_submitted(task_id: str) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.send)(GATEWAY_CHANNEL, {"type": "task.submitted", "task": task_id})
    except Exception:
        log.exception("could not notify the scheduler of task %s", task_id)
