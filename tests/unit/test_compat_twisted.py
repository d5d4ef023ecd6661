"""cluster_app.compat_twisted: the header deadline on Twisted's HTTPChannel
and the count of a connection's unsent bytes, guarded by Twisted's version.
Real Twisted channels on Twisted's own test transport and clock."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.abstract import FileDescriptor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.web import http

from cluster_app import compat_twisted
from cluster_app.compat_twisted import HeaderDeadlineChannel, http_channel_protocol, unsent_bytes
from tests.unit.compat import import_with_installed, pinned, users_of


def test_written_for_the_pinned_twisted() -> None:
    assert compat_twisted.WRITTEN_FOR == pinned("Twisted")


def test_another_twisted_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match=r"written for Twisted 26\.10\.0") as err:
        import_with_installed(monkeypatch, compat_twisted, "27.1.0")
    assert type(err.value).__name__ == "TwistedVersionError"
    assert "Twisted 27.1.0 is installed" in str(err.value)


def test_no_other_module_uses_twisteds_private_names() -> None:
    pattern = r"\bhttp\.HTTPChannel\b|_GenericHTTPChannelProtocol|_tempDataLen|\bdataBuffer\b"
    assert users_of(pattern) == {"cluster_app/compat_twisted.py"}


def connected(channel: http.HTTPChannel, clock: Clock) -> tuple[Any, StringTransport]:
    """`channel` as an HTTP factory hands it out, connected, on `clock`."""
    channel.callLater = clock.callLater  # as Twisted's HTTPFactory.buildProtocol does
    protocol = http_channel_protocol(channel)
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def deadline_channel(timeout: float) -> HeaderDeadlineChannel:
    channel = HeaderDeadlineChannel()
    channel.header_timeout = timeout
    return channel


def test_headers_trickling_past_the_deadline_get_a_408_and_the_connection_closes() -> None:
    clock = Clock()
    protocol, transport = connected(deadline_channel(10.0), clock)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: gateway\r\n")
    for n in range(9):  # a header line a second resets nothing
        clock.advance(1.0)
        protocol.dataReceived(b"X-Slow-%d: yes\r\n" % n)
    assert transport.value() == b""
    clock.advance(1.5)
    assert transport.value().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert transport.disconnecting


def test_twisteds_own_channel_keeps_a_trickling_client() -> None:
    # What the deadline is for: Twisted's idle timeout is reset by each byte.
    clock = Clock()
    protocol, transport = connected(http.HTTPChannel(), clock)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: gateway\r\n")
    for n in range(30):
        clock.advance(1.0)
        protocol.dataReceived(b"X-Slow-%d: yes\r\n" % n)
    assert transport.value() == b"" and not transport.disconnecting


def test_headers_complete_in_time_stop_the_deadline() -> None:
    clock = Clock()
    protocol, transport = connected(deadline_channel(10.0), clock)
    protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: gateway\r\n\r\n")
    clock.advance(30.0)  # the request is being answered: no 408
    assert transport.value() == b"" and not transport.disconnecting


class Held(FileDescriptor):
    """A connected descriptor that never gets to send what it is given."""

    connected = 1

    def startWriting(self) -> None:  # Twisted's name
        pass


class TlsLike:
    def __init__(self, below: Any) -> None:
        self.transport = below


def test_unsent_bytes_counts_what_the_connection_still_holds() -> None:
    held = Held(reactor=Clock())
    assert unsent_bytes(held) == 0
    held.write(b"x" * 100)
    held.write(b"y" * 20)
    assert unsent_bytes(held) == 120
    # Part of an earlier buffer sent: only the rest counts.
    held.dataBuffer, held.offset = b"abcdef", 2
    assert unsent_bytes(held) == 124
    assert unsent_bytes(TlsLike(TlsLike(held))) == 124  # TLS writes through to TCP
    assert unsent_bytes(TlsLike(None)) is None
    assert unsent_bytes(StringTransport()) is None
