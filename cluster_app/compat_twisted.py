"""Where the gateway's HTTP server goes below Twisted's public API, in one
guarded place.

daphne serves HTTP and websockets on Twisted; the gateway's guards
(cluster_app.compat_daphne puts them into daphne) need three things Twisted
does not offer publicly:

- **A deadline for a request's headers** (`HeaderDeadlineChannel`):
  Twisted's HTTPChannel has only an idle timeout, which every byte resets,
  so a client trickling a header line every few seconds (slowloris) holds
  its connection and a descriptor for ever. The channel overrides
  HTTPChannel's hooks (`allHeadersReceived`, `requestDone`, `dataReceived`)
  and is wrapped the way Twisted's own factory wraps it, in the private
  `http._GenericHTTPChannelProtocol` (`http_channel_protocol`).
- **How much a connection holds unsent** (`unsent_bytes`): Twisted keeps no
  public count; it reads FileDescriptor's `dataBuffer`, `offset` and
  `_tempDataLen`.

These are Twisted's private names and undocumented behaviour, so importing
this module checks that the installed Twisted is the one this was written
against (requirements.txt pins it); on any other version it refuses to load,
naming both. No other module touches them (tests/unit/test_compat_twisted.py
checks both).
"""

from __future__ import annotations

import importlib.metadata
from typing import Any

WRITTEN_FOR = "26.10.0"


class TwistedVersionError(ImportError):
    """The installed Twisted is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise TwistedVersionError(
            f"cluster_app/compat_twisted.py was written for Twisted {WRITTEN_FOR} "
            f"(HTTPChannel's hooks, http._GenericHTTPChannelProtocol, "
            f"FileDescriptor's write buffer) but Twisted {installed} is installed: "
            f"install Twisted=={WRITTEN_FOR} (requirements.txt), or check each use "
            f"in this module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("Twisted"))

from twisted.internet.abstract import FileDescriptor  # noqa: E402
from twisted.internet.protocol import connectionDone  # noqa: E402
from twisted.python.failure import Failure  # noqa: E402
from twisted.web import http  # noqa: E402

from cluster_app.http_guard import warn  # noqa: E402

_TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


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

    def connectionLost(self, reason: Failure = connectionDone) -> None:  # Twisted's name
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
        transport: Any = self.transport  # an ITransport (zope's interfaces confuse mypy)
        peer = transport.getPeer() if transport is not None else None
        warn(
            "header-timeout",
            "closed HTTP connection from %s: request headers not complete within %g s "
            "(WW_HTTP_HEADER_TIMEOUT)",
            getattr(peer, "host", "?"),
            self.header_timeout,
        )
        if transport is not None:
            transport.write(_TIMED_OUT)
        # Twisted's own time-out: close, and abort if the peer does not let go.
        self.timeoutConnection()


def http_channel_protocol(channel: http.HTTPChannel) -> Any:
    """`channel` as the protocol an HTTP factory builds: Twisted's own
    `HTTPFactory.protocol` wraps its HTTPChannel in this (the wrapper can
    switch the connection to HTTP/2)."""
    return http._GenericHTTPChannelProtocol(channel)


def unsent_bytes(transport: Any) -> int | None:
    """Bytes written to `transport` and not yet handed to the kernel; None
    where that cannot be known. TLS (a protocol wrapper) writes through to
    the TCP connection below it, whose buffer is the one that grows."""
    while transport is not None and not isinstance(transport, FileDescriptor):
        transport = getattr(transport, "transport", None)
    if transport is None:
        return None
    # A bytes buffer partly sent (up to `offset`) and a list of chunks
    # written since, with their length.
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
