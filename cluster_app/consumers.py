"""The Channels consumer that hosts the gateway's cluster loop.

It runs inside the gateway process's Channels worker on the `ww.gateway`
channel. The REST views (in this process or, with Redis, in another) tell
it about new tasks through the channel layer; it delegates everything to
the GatewayNode it hosts.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cluster_app.gateway import GatewayNode
from tasks_app.compat_channels import WithoutDatabase
from tasks_app.notify import GATEWAY_CHANNEL, run_from_message

__all__ = ["GATEWAY_CHANNEL", "GatewayConsumer"]


class GatewayConsumer(WithoutDatabase):
    """Database work happens in the scheduler and its journal, on their own
    schedule (the sweep closes stale connections)."""

    def __init__(self, *, node: GatewayNode, stopped: asyncio.Event) -> None:
        super().__init__()
        self.node = node
        self.stopped = stopped

    async def gateway_start(self, message: dict[str, Any]) -> None:
        await self.node.start()

    async def gateway_stop(self, message: dict[str, Any]) -> None:
        await self.node.stop()
        self.stopped.set()

    async def task_submitted(self, message: dict[str, Any]) -> None:
        runs = message.get("runs")
        if runs:
            self.node.scheduler.add([run_from_message(fields) for fields in runs])
        else:
            await self.node.scheduler.load(task_id=str(message["task"]))

    async def task_cancelled(self, message: dict[str, Any]) -> None:
        self.node.scheduler.cancel_task(str(message["task"]))
