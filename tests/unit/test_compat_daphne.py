"""cluster_app.compat_daphne: the gateway's limits put into daphne, guarded
by daphne's version. daphne's real factory and protocols, on Twisted's test
transport and clock; each patch is undone after its test."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import daphne.http_protocol
import daphne.server
import daphne.ws_protocol
import pytest
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from cluster_app import compat_daphne
from cluster_app.compat_twisted import HeaderDeadlineChannel
from tasks_app.events import SLOW_READER_CODE
from tests.unit.compat import import_with_installed, pinned, users_of
from tests.unit.test_compat_twisted import Held


def test_written_for_the_pinned_daphne() -> None:
    assert compat_daphne.WRITTEN_FOR == pinned("daphne")


def test_another_daphne_is_refused_at_import(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ImportError, match=r"written for daphne 4\.2\.3") as err:
        import_with_installed(monkeypatch, compat_daphne, "4.3.0")
    assert type(err.value).__name__ == "DaphneVersionError"
    assert "daphne 4.3.0 is installed" in str(err.value)


def test_no_other_module_replaces_daphnes_classes() -> None:
    pattern = (
        r"daphne\.(http_protocol|ws_protocol)|daphne\.server\.HTTPFactory|WebSocketFactory"
        r"|handle_reply"
    )
    assert users_of(pattern) == {"cluster_app/compat_daphne.py"}


@pytest.fixture(autouse=True)
def daphne_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a test installs into daphne is taken out after it."""
    monkeypatch.setattr(daphne.http_protocol, "WebRequest", daphne.http_protocol.WebRequest)
    monkeypatch.setattr(daphne.server, "HTTPFactory", daphne.server.HTTPFactory)
    factory = daphne.ws_protocol.WebSocketFactory
    monkeypatch.setattr(factory, "protocol", factory.protocol)
    monkeypatch.setattr(daphne.server.Server, "handle_reply", daphne.server.Server.handle_reply)


class Server(daphne.server.Server):  # type: ignore[misc]  # daphne is untyped
    """daphne's server, not listening: its bookkeeping of connections and
    its `handle_reply`, without an application (these tests never reach it)."""

    def __init__(self) -> None:
        self.connections: dict[Any, dict[str, Any]] = {}


def http_server(*, max_body: int = 100, header_timeout: float = 10.0, per_source: int = 0) -> Any:
    """daphne's HTTP factory, as the gateway's server builds it."""
    compat_daphne.bound_request_bodies(max_body)
    compat_daphne.guard_connections(header_timeout=header_timeout, max_per_source=per_source)
    return daphne.server.HTTPFactory(Server())


def connect(factory: Any, clock: Clock, host: str = "127.0.0.1") -> tuple[Any, StringTransport]:
    inner = getattr(factory, "wrappedFactory", factory)
    inner.reactor = clock
    address = IPv4Address("TCP", host, 40000)
    protocol = factory.buildProtocol(address)
    transport = StringTransport(peerAddress=address)
    if protocol is not None:
        protocol.makeConnection(transport)
    return protocol, transport


def test_a_declared_oversized_body_is_refused_with_413_by_daphne() -> None:
    protocol, transport = connect(http_server(max_body=100), Clock())
    protocol.dataReceived(
        b"POST /tasks HTTP/1.1\r\nHost: gateway\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000
    )
    head, _, body = transport.value().partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert json.loads(body)["problem"] == "request body is larger than the limit of 100 bytes"


def test_a_chunked_body_passing_the_limit_is_refused_with_413_by_daphne() -> None:
    protocol, transport = connect(http_server(max_body=100), Clock())
    protocol.dataReceived(
        b"POST /tasks HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    for _ in range(5):
        protocol.dataReceived(b"40\r\n" + b"x" * 64 + b"\r\n")
    protocol.dataReceived(b"0\r\n\r\n")
    assert transport.value().startswith(b"HTTP/1.1 413 ")


def test_requests_do_not_parse_forms_into_twisteds_args() -> None:
    http_server()
    request = daphne.http_protocol.WebRequest(connect(http_server(), Clock())[0]._channel)
    assert request._parsePOSTFormSubmission is False


def test_connections_get_the_header_deadline() -> None:
    clock = Clock()
    protocol, transport = connect(http_server(header_timeout=3.0), clock)
    assert isinstance(protocol._channel, HeaderDeadlineChannel)
    protocol.dataReceived(b"GET / HTTP/1.1\r\n")
    clock.advance(3.5)
    assert transport.value().startswith(b"HTTP/1.1 408 ")


def test_one_source_holds_at_most_its_share_of_connections() -> None:
    factory, clock = http_server(per_source=2), Clock()
    first, _ = connect(factory, clock)
    assert connect(factory, clock)[0] is not None
    assert connect(factory, clock)[0] is None  # a third from the same address
    assert connect(factory, clock, host="127.0.0.2")[0] is not None
    first.connectionLost(Failure(ConnectionDone()))
    assert connect(factory, clock)[0] is not None  # room again once one closed


def websocket(max_buffered: int, stall: float) -> tuple[Any, list[Any], list[Any]]:
    """daphne's websocket protocol as the gateway bounds it, open, on a
    connection holding `unsent` bytes; with what it sends and closes recorded
    (autobahn's frame writing is below what is tested)."""
    compat_daphne.bound_websocket_writes(max_buffered=max_buffered, stall=stall, close_grace=3.0)
    cls = daphne.ws_protocol.WebSocketFactory.protocol
    protocol = cls.__new__(cls)
    protocol.state = cls.STATE_OPEN
    protocol.transport = Held(reactor=Clock())
    protocol.path, protocol.client_addr = b"/ws/tasks/", ("127.0.0.1", 40000)
    sent: list[Any] = []
    closed: list[Any] = []
    protocol.serverSend = lambda payload, binary: sent.append(payload)
    protocol.sendCloseFrame = lambda code, reasonUtf8: closed.append(code)
    return protocol, sent, closed


def send(protocol: Any, text: str) -> None:
    server = Server()
    server.protocol_connected(protocol)
    message = {"type": "websocket.send", "text": text}
    asyncio.run(daphne.server.Server.handle_reply(server, protocol, message))


def test_a_websocket_reader_that_keeps_up_gets_its_frames() -> None:
    protocol, sent, closed = websocket(max_buffered=1000, stall=5.0)
    protocol.transport.write(b"x" * 500)
    send(protocol, "event")
    assert sent == ["event"] and closed == []


def test_a_websocket_reader_that_stays_behind_is_closed_as_a_slow_reader() -> None:
    protocol, sent, closed = websocket(max_buffered=1000, stall=0.05)
    protocol.transport.write(b"x" * 5000)
    send(protocol, "event")
    assert sent == [] and closed == [SLOW_READER_CODE]
    assert protocol.closeHandshakeTimeout == 3.0
    send(protocol, "later")  # nothing more is written for it
    assert sent == [] and closed == [SLOW_READER_CODE]
