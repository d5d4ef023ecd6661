"""Connection admission for daphne's HTTP server (in this process): a
deadline for each request's headers and a cap of connections per source
address.

Twisted's HTTPChannel has only an idle timeout, which every byte resets: a
client trickling a header line every few seconds (slowloris) holds its
connection and a descriptor for ever, and a thousand of them exhaust the
process's descriptors, the RPC listener's included. Here the headers of a
request must be complete within `header_timeout` seconds, however slowly
they trickle in, and one address may hold at most `max_per_source`
connections, websockets included, so one client cannot crowd out the rest.
"""

from __future__ import annotations

import logging
from typing import Any

import daphne.http_protocol
import daphne.server
from twisted.internet.interfaces import IAddress
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.web import http

from cluster_app.admission import LogThrottle, PerSourceLimit

log = logging.getLogger("ww.http")

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_quiet = LogThrottle()


def _warn(key: str, message: str, *args: Any) -> None:
    held_back = _quiet.allow(key)
    if held_back is not None:
        suffix = f" ({held_back} more like this not logged)" if held_back else ""
        log.warning(message + suffix, *args)


class HeaderDeadlineChannel(http.HTTPChannel):
    """An HTTPChannel whose request headers must arrive in time: counted
    from the connection, and on a kept-alive connection from the first byte
    of each later request (idle keep-alive stays under Twisted's idle
    timeout). A late client gets a 408 and the connection is closed."""

    header_timeout = 10.0
    _head_timer: Any = None
    _awaiting_head = True

    def connectionMade(self) -> None:  # Twisted's name
        super().connectionMade()
        self._arm()

    def dataReceived(self, data: bytes) -> None:  # Twisted's name
        if self._awaiting_head and self._head_timer is None:
            self._arm()
        super().dataReceived(data)

    def allHeadersReceived(self) -> None:  # Twisted's name
        self._disarm()
        self._awaiting_head = False
        super().allHeadersReceived()

    def requestDone(self, request: Any) -> None:  # Twisted's name
        self._awaiting_head = True
        super().requestDone(request)

    def connectionLost(self, reason: Any) -> None:  # Twisted's name
        self._disarm()
        super().connectionLost(reason)

    def _arm(self) -> None:
        if self.header_timeout > 0:
            self._head_timer = self.callLater(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            if self._head_timer.active():
                self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        peer = self.transport.getPeer() if self.transport is not None else None
        _warn(
            "header-timeout",
            "closed HTTP connection from %s: request headers not complete within %g s "
            "(WW_HTTP_HEADER_TIMEOUT)",
            getattr(peer, "host", "?"),
            self.header_timeout,
        )
        if self.transport is not None:
            self.transport.write(_TIMED_OUT)
        # Twisted's own time-out: close, and abort if the peer does not let go.
        self.timeoutConnection()


class _CountedConnection(ProtocolWrapper):
    source = ""


class PerSourceFactory(WrappingFactory):  # type: ignore[type-arg]
    """Wraps the HTTP factory and refuses (closes at once) a connection from
    an address that holds `limit` already. It counts at the transport, so a
    connection upgraded to a websocket is still counted until it closes."""

    protocol = _CountedConnection

    def __init__(self, wrapped: Any, limit: int) -> None:
        super().__init__(wrapped)
        self.sources = PerSourceLimit(limit)

    def buildProtocol(self, addr: IAddress | None) -> Any:  # Twisted's name
        source = str(getattr(addr, "host", addr))
        if not self.sources.acquire(source):
            _warn(
                f"cap {source}",
                "refused HTTP connection from %s: it holds %d connections already "
                "(WW_HTTP_MAX_PER_SOURCE)",
                source,
                self.sources.held(source),
            )
            return None
        try:
            wrapper = super().buildProtocol(addr)
        except BaseException:
            self.sources.release(source)
            raise
        wrapper.source = source
        return wrapper

    def unregisterProtocol(self, p: Any) -> None:  # Twisted's name
        super().unregisterProtocol(p)
        self.sources.release(p.source)


def guard_daphne_connections(*, header_timeout: float, max_per_source: int) -> None:
    """Make the daphne servers this process starts from now on use both
    guards. daphne builds its factory by name in `daphne.server`, so the
    name is replaced there."""
    base = daphne.http_protocol.HTTPFactory
    HeaderDeadlineChannel.header_timeout = header_timeout

    class DeadlineHTTPFactory(base):  # type: ignore[misc, valid-type]
        def protocol(self) -> Any:  # Twisted's factory hook; http's default, our channel
            return http._GenericHTTPChannelProtocol(HeaderDeadlineChannel())

    def make_factory(server: Any) -> Any:
        factory = DeadlineHTTPFactory(server)
        return factory if max_per_source <= 0 else PerSourceFactory(factory, max_per_source)

    daphne.server.HTTPFactory = make_factory
