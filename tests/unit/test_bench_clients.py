"""The bench's websocket reader (bench/clients.RunEvents) against a real
`websockets` server on loopback: messages in order (a fragmented one
reassembled), the server's pings answered, a timeout when nothing comes,
a close and a refused handshake reported."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from websockets.http11 import Request, Response
from websockets.sync.server import ServerConnection, serve

from bench.clients import RunEvents


@contextmanager
def server(
    handler: Callable[[ServerConnection], None],
    process_request: Callable[[ServerConnection, Request], Response | None] | None = None,
) -> Iterator[int]:
    """A websockets server on 127.0.0.1 in a thread; yields its port."""
    srv = serve(handler, "127.0.0.1", 0, process_request=process_request)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(srv.socket.getsockname()[1])
    finally:
        srv.shutdown()
        thread.join(10)


def test_messages_arrive_in_order_and_fragments_are_joined() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send(json.dumps({"state": "running", "index": 0}))
        ws.send(['{"state": ', '"succeeded", ', '"index": 0}'])  # three frames
        ws.recv()  # until the client closes

    with server(handler) as port, RunEvents(port, "/ws/tasks/") as events:
        assert events.recv_json(timeout=5) == {"state": "running", "index": 0}
        assert events.recv_json(timeout=5) == {"state": "succeeded", "index": 0}


def test_a_ping_from_the_server_is_answered() -> None:
    answered: list[bool] = []

    def handler(ws: ServerConnection) -> None:
        pong = ws.ping()
        ws.send('"after the ping"')
        answered.append(pong.wait(5))
        ws.send('"pong seen"')
        ws.recv()

    with server(handler) as port, RunEvents(port, "/ws/tasks/") as events:
        assert events.recv_json(timeout=5) == "after the ping"
        assert events.recv_json(timeout=5) == "pong seen"
    assert answered == [True]


def test_nothing_in_time_is_a_timeout() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.recv()

    with server(handler) as port, RunEvents(port, "/ws/tasks/") as events:
        with pytest.raises(TimeoutError):
            events.recv_json(timeout=0.2)


def test_a_server_close_is_a_connection_error() -> None:
    def handler(ws: ServerConnection) -> None:
        ws.send('"last"')
        ws.close()

    with server(handler) as port, RunEvents(port, "/ws/tasks/") as events:
        assert events.recv_json(timeout=5) == "last"
        with pytest.raises(ConnectionError):
            events.recv_json(timeout=5)


def test_a_refused_handshake_is_a_connection_error() -> None:
    def refuse(ws: ServerConnection, request: Request) -> Response:
        return ws.respond(403, "no\n")

    def handler(ws: ServerConnection) -> None:
        raise AssertionError("never reached")

    with server(handler, refuse) as port, pytest.raises(ConnectionError, match="403"):
        RunEvents(port, "/ws/tasks/")
