"""Cap'n Proto RPC over TCP: the gateway's listener and the worker's dial.

Only transport lives here. What is exported on a connection (the Host
capability) is the caller's business, given as a factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import capnp

import schema
from cluster_app.multiaddr import Multiaddr

log = logging.getLogger("ww.rpc")

BootstrapFactory = Callable[[int, str], Any]
DisconnectHook = Callable[[int], None]


@dataclass(eq=False)
class ServerConnection:
    id: int
    address: str  # the remote end, "ip:port"
    server: Any  # capnp.TwoPartyServer
    stream: Any  # capnp.AsyncIoStream

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.server.close()
        with contextlib.suppress(Exception):
            self.stream.close()


@dataclass(eq=False)
class Listener:
    """Accepts RPC connections and serves `bootstrap(connection_id, address)`
    on each. Owns the accept loop and every connection's task."""

    sock: socket.socket
    bootstrap: BootstrapFactory
    on_disconnect: DisconnectHook
    connections: dict[int, ServerConnection] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _accept_task: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, addr: Multiaddr, bootstrap: BootstrapFactory, on_disconnect: DisconnectHook
    ) -> Listener:
        if addr.transport != "tcp":
            raise ValueError(f"cannot listen for RPC on {addr}: not a TCP multiaddr")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr.ip, addr.port))
        sock.listen(128)
        sock.setblocking(False)
        listener = cls(sock=sock, bootstrap=bootstrap, on_disconnect=on_disconnect)
        listener._accept_task = asyncio.create_task(listener._accept_loop(), name="rpc-accept")
        return listener

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def multiaddrs(self) -> list[str]:
        """Where peers can reach this listener."""
        ip = self.sock.getsockname()[0]
        if ip == "0.0.0.0":
            ips = _host_ipv4_addresses()
        else:
            ips = [ip]
        return [f"/ip4/{ip}/tcp/{self.port}" for ip in ips]

    async def _accept_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            conn, (ip, port) = await loop.sock_accept(self.sock)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = asyncio.create_task(self._serve(conn, f"{ip}:{port}"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(self, conn: socket.socket, address: str) -> None:
        connection_id = next(self._ids)
        stream = await capnp.AsyncIoStream.create_connection(sock=conn)
        server = capnp.TwoPartyServer(stream, bootstrap=self.bootstrap(connection_id, address))
        connection = ServerConnection(connection_id, address, server, stream)
        self.connections[connection_id] = connection
        log.info("rpc connection %d from %s", connection_id, address)
        try:
            await server.on_disconnect()
        except Exception as exc:  # noqa: BLE001 - any transport failure ends the connection
            log.info("rpc connection %d from %s failed: %s", connection_id, address, exc)
        finally:
            self.connections.pop(connection_id, None)
            log.info("rpc connection %d from %s closed", connection_id, address)
            self.on_disconnect(connection_id)
            connection.close()

    def drop(self, connection_id: int) -> None:
        """Close one connection (its pending calls fail)."""
        connection = self.connections.get(connection_id)
        if connection is not None:
            connection.close()

    async def close(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
        self.sock.close()
        for connection in list(self.connections.values()):
            connection.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.connections.clear()


@dataclass(eq=False)
class ClientConnection:
    """A worker's connection to a gateway; `host` is the gateway's Host."""

    client: Any  # capnp.TwoPartyClient
    stream: Any
    host: Any  # schema.host.Host client
    address: str

    @classmethod
    async def dial(cls, addr: Multiaddr, *, timeout: float = 5.0) -> ClientConnection:
        if addr.transport != "tcp":
            raise ValueError(f"cannot dial {addr}: not a TCP multiaddr")
        stream = await asyncio.wait_for(
            capnp.AsyncIoStream.create_connection(addr.ip, addr.port), timeout
        )
        client = capnp.TwoPartyClient(stream)
        host = client.bootstrap().cast_as(schema.host.Host)
        return cls(client=client, stream=stream, host=host, address=str(addr))

    async def wait_closed(self) -> None:
        await self.client.on_disconnect()

    def close(self) -> None:
        self.host = None
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.stream.close()


def _host_ipv4_addresses() -> list[str]:
    """This host's IPv4 addresses, loopback last (for 0.0.0.0 listeners)."""
    addresses: list[str] = []
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            ip = str(info[4][0])
            if ip not in addresses and not ip.startswith("127."):
                addresses.append(ip)
    addresses.append("127.0.0.1")
    return addresses


def is_disconnect(exc: BaseException) -> bool:
    """Whether an RPC failure means the peer is gone (rather than the call
    itself failing)."""
    text = str(exc)
    return isinstance(exc, (capnp.KjException, ConnectionError, OSError)) and (
        "disconnected" in text.lower() or isinstance(exc, (ConnectionError, OSError))
    )
