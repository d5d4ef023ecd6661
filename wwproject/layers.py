"""The embedded default's channel layer: Channels' in-memory layer, with
group messages put straight on the members' queues, and a bound on how far
a group member (a websocket watcher) may fall behind."""

from __future__ import annotations

import time
from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer

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
