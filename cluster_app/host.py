"""The capability a gateway exports on each RPC connection, and the sending
end of its channel as seen over RPC."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import schema
from cluster_app.channel import ChannelClosed, SyncChannel

log = logging.getLogger("ww.rpc")

WORKERS_CHANNEL = "workers"


@dataclass(eq=False)
class Offer:
    """A worker capability received through the channel, with the
    connection it arrived on (so the pool can drop it when that closes)."""

    capability: Any
    connection: int
    address: str


class ChannelSender(schema.channel.Sender.Server):
    """`send` on the gateway's channel. Returns only once the gateway's
    channel loop has received the value (the seed's synchronous channel)."""

    def __init__(self, channel: SyncChannel[Offer], *, connection: int, address: str) -> None:
        self._channel = channel
        self._connection = connection
        self._address = address

    async def send(self, value: Any, _context: Any, **kwargs: Any) -> None:
        if value.which() != "worker":
            raise ValueError("this channel carries Worker capabilities only")
        offer = Offer(capability=value.worker, connection=self._connection, address=self._address)
        try:
            await self._channel.send(offer)
        except ChannelClosed as exc:
            raise RuntimeError("the gateway is shutting down") from exc


class HostServer(schema.host.Host.Server):
    def __init__(
        self,
        *,
        peer_id: str,
        channels: dict[str, SyncChannel[Offer]],
        connection: int,
        address: str,
        on_leave: Callable[[int], Awaitable[None]],
    ) -> None:
        self._peer_id = peer_id
        self._channels = channels
        self._connection = connection
        self._address = address
        self._on_leave = on_leave

    async def peer(self, _context: Any, **kwargs: Any) -> str:
        return self._peer_id

    async def channel(self, name: str, _context: Any, **kwargs: Any) -> Any:
        channel = self._channels.get(name)
        if channel is None:
            raise KeyError(f"no channel named {name!r}")
        return ChannelSender(channel, connection=self._connection, address=self._address)

    async def leave(self, _context: Any, **kwargs: Any) -> None:
        await self._on_leave(self._connection)
