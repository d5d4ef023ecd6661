"""A websocket client that does not read cannot make the gateway hold its
frames: what waits unsent for it is bounded, and past a stall it is closed.

daphne writes each frame a consumer sends straight into the connection's
Twisted transport, which buffers without limit: a client that stops
reading (or reads slower than events come) makes the gateway keep every
frame it is sent, for as long as the connection lives (ten such sockets
during a burst of runs with 64 KiB results held 1.3 GB). So a consumer's
send waits while the transport holds more than `max_buffered` unsent bytes
(backpressure: a burst of events reaches a reader that keeps up, at its
pace); the consumer then falls behind on the channel layer, whose queue is
bounded too (wwproject/layers.py). A client whose backlog does not drop
under the bound within `stall` seconds is a slow reader: nothing more is
written for it, and it is sent a close frame with code 4008 (reason "slow
reader"), queued after what it has not read yet, so a client that is only
behind reads what it was sent and then learns why it was closed. One that
does not finish the closing handshake within `close_grace` seconds is
disconnected, which frees its buffer. A client that was closed reconnects
and catches up from `GET /tasks/<id>`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from twisted.internet.abstract import FileDescriptor

from tasks_app.events import SLOW_READER_CODE, SLOW_READER_REASON

log = logging.getLogger("ww.websocket")
# How often a waiting send looks at its client's backlog again.
_POLL = 0.005


def unsent_bytes(transport: Any) -> int | None:
    """Bytes written to `transport` and not yet handed to the kernel; None
    where that cannot be known. TLS (a protocol wrapper) writes through to
    the TCP connection below it, whose buffer is the one that grows."""
    while transport is not None and not isinstance(transport, FileDescriptor):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return None
    # Twisted keeps no public count: a bytes buffer partly sent (up to
    # `offset`) and a list of chunks written since, with their length.
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


def bounded_websocket_writes(*, max_buffered: int, stall: float, close_grace: float) -> None:
    """Make daphne (in this process) bound what it buffers for a websocket
    client and close slow readers, as the module docstring says."""
    import daphne.server
    import daphne.ws_protocol

    factory = daphne.ws_protocol.WebSocketFactory
    base = factory.protocol
    if getattr(base, "ww_bounded", False):
        base.max_buffered, base.stall, base.close_grace = max_buffered, stall, close_grace
        return

    class BoundedWebSocketProtocol(base):  # type: ignore[misc, valid-type]
        ww_bounded = True
        slow_reader = False

        async def room(self) -> None:
            """Returns once a frame may be written: the backlog is under the
            bound, or the client was found to be a slow reader."""
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.stall
            while self.state == self.STATE_OPEN and not self.slow_reader:
                unsent = unsent_bytes(self.transport)
                if unsent is None or unsent <= self.max_buffered:
                    return
                if loop.time() >= deadline:
                    self._close_slow_reader(unsent)
                    return
                await asyncio.sleep(_POLL)

        def handle_reply(self, message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.send" and self.state != self.STATE_CONNECTING:
                if self.slow_reader or self.state != self.STATE_OPEN:
                    return  # closing: nothing more is written for this client
            elif message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
                # daphne drops the reason a consumer gives; clients show it.
                self.sendClose(code=message.get("code") or 1000, reason=message.get("reason"))
                return
            super().handle_reply(message)

        def _close_slow_reader(self, unsent: int) -> None:
            self.slow_reader = True
            log.warning(
                "closing websocket %s of %s: slow reader, %d bytes unread for %.1f s (limit %d)",
                getattr(self, "path", b"").decode("latin-1"),
                ":".join(map(str, self.client_addr or ())),
                unsent,
                self.stall,
                self.max_buffered,
            )
            # autobahn disconnects a client that does not answer the close
            # within this many seconds (`onCloseHandshakeTimeout`).
            self.closeHandshakeTimeout = self.close_grace
            self.sendCloseFrame(code=SLOW_READER_CODE, reasonUtf8=SLOW_READER_REASON.encode())

    BoundedWebSocketProtocol.max_buffered = max_buffered
    BoundedWebSocketProtocol.stall = stall
    BoundedWebSocketProtocol.close_grace = close_grace
    # daphne's HTTPFactory makes a WebSocketFactory, which builds this class.
    factory.protocol = BoundedWebSocketProtocol

    # A consumer's `send` is daphne's Server.handle_reply: the one place
    # that may wait (the protocol's own handle_reply is synchronous).
    server = daphne.server.Server
    handle_reply = server.handle_reply

    async def handle_reply_with_room(self: Any, protocol: Any, message: dict[str, Any]) -> None:
        if message.get("type") == "websocket.send" and isinstance(
            protocol, BoundedWebSocketProtocol
        ):
            await protocol.room()
        await handle_reply(self, protocol, message)

    server.handle_reply = handle_reply_with_room
