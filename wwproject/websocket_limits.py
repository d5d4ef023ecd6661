"""A websocket client that does not read cannot make the gateway hold its
frames: past a bound on what waits unsent for it, it is closed.

daphne writes each frame a consumer sends straight into the connection's
Twisted transport, which buffers without limit: a client that stops
reading (or reads slower than events come) makes the gateway keep every
frame it is sent, for as long as the connection lives (ten such sockets
during a burst of runs with 64 KiB results held 1.3 GB). So before a
frame is written the transport's unsent bytes are measured; when the frame
would take them past `max_buffered`, it is dropped, and so is everything
after it: the client is sent a close frame with code `SLOW_READER_CODE`
(4008, reason "slow reader"), queued after what it has not read yet, so a
client that is only behind reads what it was sent and then learns why it
was closed. One that does not finish the closing handshake within
`close_grace` seconds is disconnected, which frees its buffer. A client
that was closed reconnects and catches up from `GET /tasks/<id>`.
"""

from __future__ import annotations

import logging
from typing import Any

from twisted.internet.abstract import FileDescriptor

from tasks_app.events import SLOW_READER_CODE, SLOW_READER_REASON

log = logging.getLogger("ww.websocket")


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


def bounded_websocket_writes(*, max_buffered: int, close_grace: float) -> None:
    """Make daphne (in this process) close websocket clients that have more
    than `max_buffered` bytes unread, as the module docstring says."""
    import daphne.ws_protocol

    factory = daphne.ws_protocol.WebSocketFactory
    base = factory.protocol
    if getattr(base, "ww_bounded", False):
        base.max_buffered, base.close_grace = max_buffered, close_grace
        return

    class BoundedWebSocketProtocol(base):  # type: ignore[misc, valid-type]
        ww_bounded = True
        slow_reader = False

        def handle_reply(self, message: dict[str, Any]) -> None:
            if message.get("type") == "websocket.send" and self.state != self.STATE_CONNECTING:
                if self.slow_reader or self.state != self.STATE_OPEN:
                    return  # closing: nothing more is written for this client
                frame = message.get("bytes") or message.get("text") or ""
                unsent = unsent_bytes(self.transport)
                # A text frame's length in characters: close enough to its bytes.
                if unsent is not None and unsent + len(frame) > self.max_buffered:
                    self._close_slow_reader(unsent)
                    return
            elif message.get("type") == "websocket.close" and self.state == self.STATE_OPEN:
                # daphne drops the reason a consumer gives; clients show it.
                self.sendClose(code=message.get("code") or 1000, reason=message.get("reason"))
                return
            super().handle_reply(message)

        def _close_slow_reader(self, unsent: int) -> None:
            self.slow_reader = True
            log.warning(
                "closing websocket %s of %s: slow reader, %d bytes unread (limit %d)",
                getattr(self, "path", b"").decode("latin-1"),
                ":".join(map(str, self.client_addr or ())),
                unsent,
                self.max_buffered,
            )
            # autobahn disconnects a client that does not answer the close
            # within this many seconds (`onCloseHandshakeTimeout`).
            self.closeHandshakeTimeout = self.close_grace
            self.sendCloseFrame(code=SLOW_READER_CODE, reasonUtf8=SLOW_READER_REASON.encode())

    BoundedWebSocketProtocol.max_buffered = max_buffered
    BoundedWebSocketProtocol.close_grace = close_grace
    # daphne's HTTPFactory makes a WebSocketFactory, which builds this class.
    factory.protocol = BoundedWebSocketProtocol
