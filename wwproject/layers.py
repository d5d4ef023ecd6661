"""The embedded default's channel layer: Channels' in-memory layer, with
group messages put straight on the members' queues."""

from __future__ import annotations

from typing import Any

from channels.exceptions import ChannelFull
from channels.layers import InMemoryChannelLayer


class LocalChannelLayer(InMemoryChannelLayer):
    """Channels' `InMemoryChannelLayer`, delivering a group message the same
    way (a copy on each member's queue, a member whose queue is full
    skipped) but in the caller's turn, not by a task per member awaited
    through `as_completed`: every run event reaches its watchers this way,
    and those tasks cost event-loop turns before the first watcher has it.
    (`send` never suspends: awaiting it puts the message on the queue.)"""

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "Message is not a dict"
        self.require_valid_group_name(group)
        self._clean_expired()
        for channel in list(self.groups.get(group, {})):
            try:
                await self.send(channel, message)
            except ChannelFull:
                pass
