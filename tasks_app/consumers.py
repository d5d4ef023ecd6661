"""Live run events over WebSockets.

`/ws/tasks/` streams every run state change, `/ws/tasks/<id>/` one task's.
The services publish each change on the channel layer (`tasks_app.events`),
so a watcher connected to any process that shares the layer (in process by
default, Redis when scaled out) sees it. Clients only listen: anything they
send is ignored. A client that does not keep up is closed with code 4008
("slow reader", tasks_app.events.SLOW_READER_CODE).
"""

from __future__ import annotations

from typing import Any

from tasks_app import events
from tasks_app.compat_channels import JsonWebsocketWithoutDatabase


class TaskEventsConsumer(JsonWebsocketWithoutDatabase):
    """Forwards the `run.changed` events of its group to the client, one
    JSON frame each, in the order they were published. It never touches the
    database (tasks_app.compat_channels says why that matters)."""

    group = ""

    async def connect(self) -> None:
        task_id = self.scope["url_route"]["kwargs"].get("task_id")
        self.group = events.task_group(task_id) if task_id else events.ALL_TASKS_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        pass  # a watch-only stream

    async def runs_changed(self, message: dict[str, Any]) -> None:
        for change in message["events"]:
            await self.send_json(change)

    async def layer_overflowed(self, message: dict[str, Any]) -> None:
        """The layer dropped this watcher from its groups for falling too
        far behind (tasks_app.compat_channels.LocalChannelLayer): its client
        is told why, as one whose socket is too far behind is
        (cluster_app.compat_daphne.bound_websocket_writes)."""
        await self.close(code=events.SLOW_READER_CODE, reason=events.SLOW_READER_REASON)
