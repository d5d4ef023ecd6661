"""The gateway's limits, put into daphne: the one place that replaces
daphne's classes, guarded by its version.

daphne offers no hook for any of these, so each replaces a class daphne
looks up by name, or wraps one of its methods, in this process only (the
gateway process calls them before its server starts):

- `bound_request_bodies`: request bodies over the limit are discarded as
  they arrive and answered 413 by daphne itself (daphne's `WebRequest`);
  without it daphne holds a whole upload in memory before the ASGI guard
  (cluster_app.body_limit) sees it.
- `guard_connections`: the header deadline and the per-source cap
  (cluster_app.http_guard) on every HTTP connection (daphne's
  `server.HTTPFactory`).
- `bound_websocket_writes`: a websocket client that does not read cannot
  make the gateway hold its frames (daphne's `WebSocketFactory.protocol`
  and `Server.handle_reply`).

Importing this module checks that the installed daphne is the one this was
written against (requirements.txt pins it); on any other version it refuses
to load, naming both. No other module touches these names
(tests/unit/test_compat_daphne.py checks both).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import io
import logging
from typing import Any

WRITTEN_FOR = "4.2.3"


class DaphneVersionError(ImportError):
    """The installed daphne is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise DaphneVersionError(
            f"cluster_app/compat_daphne.py was written for daphne {WRITTEN_FOR} "
            f"(http_protocol.WebRequest, server.HTTPFactory, ws_protocol."
            f"WebSocketFactory.protocol, Server.handle_reply) but daphne {installed} "
            f"is installed: install daphne=={WRITTEN_FOR} (requirements.txt), or "
            f"check each use in this module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("daphne"))

import daphne.http_protocol  # noqa: E402
import daphne.server  # noqa: E402
import daphne.ws_protocol  # noqa: E402

from cluster_app.body_limit import too_large_body  # noqa: E402
from cluster_app.compat_twisted import (  # noqa: E402
    HeaderDeadlineChannel,
    http_channel_protocol,
    unsent_bytes,
)
from cluster_app.http_guard import PerSourceFactory  # noqa: E402
from tasks_app.events import SLOW_READER_CODE, SLOW_READER_REASON  # noqa: E402

log = logging.getLogger("ww.websocket")
# How often a waiting websocket send looks at its client's backlog again.
_POLL = 0.005


def bound_request_bodies(max_body: int) -> None:
    """Make daphne discard request bodies over `max_body` as they arrive and
    answer 413 itself, and never parse multipart forms into Twisted's
    `request.args` (about ten times the body in memory, and daphne does not
    use it)."""
    base = daphne.http_protocol.WebRequest
    if getattr(base, "ww_bounded", False):
        base.max_body = max_body
        return

    class BoundedWebRequest(base):  # type: ignore[misc, valid-type]  # daphne is untyped
        ww_bounded = True
        content: Any  # Twisted's Request: the body read so far (a file)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("parsePOSTFormSubmission", False)
            super().__init__(*args, **kwargs)
            self._body_seen = 0
            self._too_large = False

        def gotLength(self, length: int | None) -> None:  # Twisted's name
            if length is not None and length > self.max_body:
                self._drop_body()
                return
            super().gotLength(length)

        def handleContentChunk(self, data: bytes) -> None:  # Twisted's name
            if self._too_large:
                return
            self._body_seen += len(data)
            if self._body_seen > self.max_body:
                self._drop_body()
                return
            super().handleContentChunk(data)

        def _drop_body(self) -> None:
            if self.content is not None and not self.content.closed:
                self.content.close()
            self.content = io.BytesIO()
            self._too_large = True

        def process(self) -> None:
            if not self._too_large:
                super().process()
                return
            body = too_large_body(self.max_body)
            self.setResponseCode(413)
            for name, value in (
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ):
                self.responseHeaders.setRawHeaders(name, [value])
            self.write(body)
            self.finish()

    BoundedWebRequest.max_body = max_body
    # daphne's HTTPFactory looks the class up by name for each connection.
    daphne.http_protocol.WebRequest = BoundedWebRequest


def guard_connections(*, header_timeout: float, max_per_source: int) -> None:
    """Make the daphne servers this process starts from now on use both
    guards of cluster_app.http_guard. daphne builds its factory by name in
    `daphne.server`, so the name is replaced there."""
    base = daphne.http_protocol.HTTPFactory
    HeaderDeadlineChannel.header_timeout = header_timeout

    class DeadlineHTTPFactory(base):  # type: ignore[misc, valid-type]  # daphne is untyped
        def protocol(self) -> Any:  # Twisted's factory hook; http's default, our channel
            return http_channel_protocol(HeaderDeadlineChannel())

    def make_factory(server: Any) -> Any:
        factory = DeadlineHTTPFactory(server)
        return factory if max_per_source <= 0 else PerSourceFactory(factory, max_per_source)

    daphne.server.HTTPFactory = make_factory


def bound_websocket_writes(*, max_buffered: int, stall: float, close_grace: float) -> None:
    """Bound what the gateway buffers for a websocket client, and close slow
    readers.

    daphne writes each frame a consumer sends straight into the connection's
    Twisted transport, which buffers without limit: a client that stops
    reading (or reads slower than events come) makes the gateway keep every
    frame it is sent, for as long as the connection lives (ten such sockets
    during a burst of runs with 64 KiB results held 1.3 GB). So a consumer's
    send waits while the transport holds more than `max_buffered` unsent
    bytes (backpressure: a burst of events reaches a reader that keeps up,
    at its pace); the consumer then falls behind on the channel layer, whose
    queue is bounded too (tasks_app.compat_channels.LocalChannelLayer). A
    client whose backlog does not drop under the bound within `stall`
    seconds is a slow reader: nothing more is written for it, and it is sent
    a close frame with code 4008 (reason "slow reader"), queued after what
    it has not read yet, so a client that is only behind reads what it was
    sent and then learns why it was closed. One that does not finish the
    closing handshake within `close_grace` seconds is disconnected, which
    frees its buffer. A client that was closed reconnects and catches up
    from `GET /tasks/<id>`."""
    factory = daphne.ws_protocol.WebSocketFactory
    base = factory.protocol
    if getattr(base, "ww_bounded", False):
        base.max_buffered, base.stall, base.close_grace = max_buffered, stall, close_grace
        return

    class BoundedWebSocketProtocol(base):  # type: ignore[misc, valid-type]  # daphne is untyped
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
