"""The seed's synchronous channel, in process.

Reliable: a value sent is held until it is received. Ordered: receivers are
served first come, first served, and get values in the order they were sent.
Synchronous: `send` returns once a receiver has taken the value; `recv`
waits until there is one. The RPC face of it is in `cluster_app.host`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")

# The channel a gateway exports for workers to offer themselves into.
WORKERS_CHANNEL = "workers"


class ChannelClosed(Exception):
    """The channel was closed; nothing more is sent or received."""


class SyncChannel(Generic[T]):
    def __init__(self) -> None:
        # A sender's future is None for a value put back by a cancelled receiver.
        self._senders: deque[tuple[T, asyncio.Future[None] | None]] = deque()
        self._receivers: deque[asyncio.Future[T]] = deque()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, value: T) -> None:
        """Hand `value` to a receiver; return once it has been received."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        while self._receivers:
            receiver = self._receivers.popleft()
            if not receiver.done():
                receiver.set_result(value)
                return
        delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry: tuple[T, asyncio.Future[None] | None] = (value, delivered)
        self._senders.append(entry)
        try:
            await delivered
        except asyncio.CancelledError:
            if not delivered.done():
                self._senders.remove(entry)
            raise

    async def recv(self) -> T:
        """Take the oldest value sent, waiting for one if there is none."""
        if self._closed:
            raise ChannelClosed("channel is closed")
        while self._senders:
            value, delivered = self._senders.popleft()
            if delivered is None:
                return value
            if not delivered.done():
                delivered.set_result(None)
                return value
        waiting: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._receivers.append(waiting)
        try:
            return await waiting
        except asyncio.CancelledError:
            if waiting.done() and not waiting.cancelled():
                # A sender handed us a value just as we were cancelled: give
                # it to the next receiver instead of dropping it.
                self._requeue(waiting.result())
            elif waiting in self._receivers:
                self._receivers.remove(waiting)
            raise

    def _requeue(self, value: T) -> None:
        self._senders.appendleft((value, None))

    def close(self) -> None:
        """Fail every waiting sender and receiver with ChannelClosed."""
        self._closed = True
        for _, delivered in self._senders:
            if delivered is not None and not delivered.done():
                delivered.set_exception(ChannelClosed("channel is closed"))
        for waiting in self._receivers:
            if not waiting.done():
                waiting.set_exception(ChannelClosed("channel is closed"))
        self._senders.clear()
        self._receivers.clear()
