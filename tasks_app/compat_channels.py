"""Where we go below Django Channels' public API, in one guarded place.

Two spots, each on the path of every run event:

- **Consumer dispatch without the database.** Channels' `AsyncConsumer.dispatch`
  (and `AsyncWebsocketConsumer.websocket_disconnect`) first close stale
  database connections, for every message, with a hop to the shared
  database thread: each event would queue behind whatever that thread is
  doing (the journal's writes) before reaching its handler. Our consumers
  (the watchers', tasks_app.consumers, and the gateway's,
  cluster_app.consumers) hold no connection, so they dispatch as Channels
  does, less that hop.
- **The embedded channel layer** (`LocalChannelLayer`, the default
  `CHANNEL_LAYERS` backend): Channels' `InMemoryChannelLayer`, whose group
  delivery and queues (its `channels` and `groups` dicts, `expiry`,
  `_clean_expired`) it reaches into.

Both copy or use Channels' internals, so importing this module checks that
the installed Channels is the one this was written against
(requirements.txt pins it); on any other version it refuses to load,
naming both. No other module touches these names
(tests/unit/test_compat_channels.py checks both).
"""

from __future__ import annotations

import importlib.metadata
import time
from typing import Any

WRITTEN_FOR = "4.3.2"


class ChannelsVersionError(ImportError):
    """The installed Channels is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise ChannelsVersionError(
            f"tasks_app/compat_channels.py was written for channels {WRITTEN_FOR} "
            f"(AsyncConsumer.dispatch, websocket_disconnect, InMemoryChannelLayer's "
            f"queues) but channels {installed} is installed: install "
            f"channels=={WRITTEN_FOR} (requirements.txt), or check each use in this "
            f"module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("channels"))

from channels.consumer import AsyncConsumer, get_handler_name  # noqa: E402
from channels.exceptions import ChannelFull, StopConsumer  # noqa: E402
from channels.generic.websocket import AsyncJsonWebsocketConsumer  # noqa: E402
from channels.layers import InMemoryChannelLayer  # noqa: E402


class WithoutDatabase(AsyncConsumer):
    """A consumer that never touches the database: Channels' dispatch, less
    its closing of stale database connections (see the module docstring)."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"no handler for message type {message['type']}")
        await handler(message)


class JsonWebsocketWithoutDatabase(WithoutDatabase, AsyncJsonWebsocketConsumer):
    """Channels' JSON websocket consumer, never touching the database."""

    async def websocket_disconnect(self, message: dict[str, Any]) -> None:
        # Channels' own, less its closing of stale database connections.
        # (It also leaves the groups named in `groups`; ours name none.)
        await self.disconnect(message["code"])
        raise StopConsumer()


# Put on a member's queue when it is too far behind; its consumer handles
# it (`layer_overflowed`) by closing its client as a slow reader.
OVERFLOWED = {"type": "layer.overflowed"}


class LocalChannelLayer(InMemoryChannelLayer):
    """Channels' `InMemoryChannelLayer`, delivering a group message the same
    way (a copy on each member's queue) but in the caller's turn, not by a
    task per member awaited through `as_completed`: every run event reaches
    its watchers this way, and those tasks cost event-loop turns before the
    first watcher has it. (`send` never suspends: awaiting it puts the
    message on the queue.)

    A member holding `member_capacity` messages it has not received (a
    watcher whose consumer does not keep up) leaves every group, so nothing
    more piles up for it, and is sent `OVERFLOWED` (Channels' own layer
    skips a full member, so it would silently miss events and keep the
    queue it has)."""

    def __init__(self, *, member_capacity: int = 256, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.member_capacity = member_capacity

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            queue = self.channels.get(channel)
            if queue is not None and queue.qsize() >= self.member_capacity:
                self._overflowed(channel)
                continue
            try:
                await self.send(channel, message)
            except ChannelFull:
                self._overflowed(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        await super().group_discard(group, channel)
        if not any(channel in members for members in self.groups.values()):
            # Our groups' members are watchers, which leave their last group
            # when their client goes: what waits for it would otherwise stay
            # until a later message expires it, and it holds run events.
            self.channels.pop(channel, None)

    def _overflowed(self, channel: str) -> None:
        for members in self.groups.values():
            members.pop(channel, None)
        queue = self.channels.get(channel)
        if queue is None:
            return
        if queue.full():  # the channel's own capacity: make room for the notice
            queue.get_nowait()
        queue.put_nowait((time.time() + self.expiry, dict(OVERFLOWED)))
