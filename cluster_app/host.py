"""The capability a gateway exports on each RPC connection, and the sending
end of its channel as seen over RPC."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import schema
from cluster_app.channel import ChannelClosed, SyncChannel
from cluster_app.identity import verify
from cluster_app.tls import join_message
from tasks_app import metrics

log = logging.getLogger("ww.rpc")

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")

MODULE_FETCHES_AT_ONCE = 2  # per connection
MODULE_REFETCH_SECONDS = 10.0  # the same module again on one connection: refused before


@dataclass(eq=False)
class Offer:
    """A worker capability received through the channel, with the
    connection it arrived on (so the pool can drop it when that closes)."""

    capability: Any
    connection: int
    address: str
    peer_id: str  # proven by the sender (signed challenge, TLS in cluster mode)


class ChannelSender(schema.channel.Sender.Server):
    """`send` on the gateway's channel. Returns only once the gateway's
    channel loop has received the value (the seed's synchronous channel)."""

    def __init__(
        self, channel: SyncChannel[Offer], *, connection: int, address: str, peer_id: str
    ) -> None:
        self._channel = channel
        self._connection = connection
        self._address = address
        self._peer_id = peer_id

    async def send(self, value: Any, _context: Any, **kwargs: Any) -> None:
        if value.which() != "worker":
            raise ValueError("this channel carries Worker capabilities only")
        offer = Offer(
            capability=value.worker,
            connection=self._connection,
            address=self._address,
            peer_id=self._peer_id,
        )
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
        modules: Callable[[str], Awaitable[bytes | None]],
        proven_peer: str | None = None,
    ) -> None:
        self._peer_id = peer_id
        self._channels = channels
        self._connection = connection
        self._address = address
        self._on_leave = on_leave
        self._modules = modules
        self._proven_peer = proven_peer  # from the TLS certificate (cluster mode)
        self._nonce = os.urandom(32)
        self.verified_peer: str | None = None
        # Module fetches: a few at a time per connection, and the same module
        # not again moments after (a member asking for a 15 MiB module 200
        # times at once held gigabytes of answers).
        self._fetching = asyncio.Semaphore(MODULE_FETCHES_AT_ONCE)
        self._fetched: dict[str, float] = {}

    async def peer(self, _context: Any, **kwargs: Any) -> str:
        return self._peer_id

    async def channel(self, name: str, _context: Any, **kwargs: Any) -> Any:
        if self.verified_peer is None:
            raise PermissionError("authenticate first")
        channel = self._channels.get(name)
        if channel is None:
            raise KeyError(f"no channel named {name!r}")
        return ChannelSender(
            channel,
            connection=self._connection,
            address=self._address,
            peer_id=self.verified_peer,
        )

    async def challenge(self, _context: Any, **kwargs: Any) -> bytes:
        return self._nonce

    async def authenticate(self, peer: str, signature: bytes, _context: Any, **kwargs: Any) -> None:
        peer = str(peer)
        if self._proven_peer is not None and peer != self._proven_peer:
            log.warning(
                "refused %s: claims %s but its certificate is %s",
                self._address,
                peer,
                self._proven_peer,
            )
            raise PermissionError("peer ID does not match the TLS certificate")
        if not verify(peer, join_message(self._peer_id, self._nonce), bytes(signature)):
            log.warning("refused %s: bad join signature for %s", self._address, peer)
            raise PermissionError(f"signature does not prove holding the key of {peer}")
        self.verified_peer = peer

    async def leave(self, _context: Any, **kwargs: Any) -> None:
        await self._on_leave(self._connection)

    async def module(self, hash: str, _context: Any, **kwargs: Any) -> bytes:
        if self.verified_peer is None:
            raise PermissionError("authenticate first")
        digest = str(hash)
        if not _SHA256_HEX.fullmatch(digest):
            raise ValueError("a module hash is 64 lowercase hex digits")
        now = time.monotonic()
        self._fetched = {d: t for d, t in self._fetched.items() if now - t < MODULE_REFETCH_SECONDS}
        if digest in self._fetched:
            raise PermissionError(
                f"module {digest[:12]} was fetched moments ago on this connection"
            )
        self._fetched[digest] = now
        async with self._fetching:
            wasm = await self._modules(digest)
        if wasm is None:
            raise KeyError(f"no module {digest}")
        metrics.module_fetched(self.verified_peer)
        log.info("module %s (%d bytes) sent to %s", digest[:12], len(wasm), self.verified_peer)
        return wasm
