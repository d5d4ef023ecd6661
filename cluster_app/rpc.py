"""Cap'n Proto RPC over TLS over TCP: the gateway's listener and the
worker's dial.

Only transport lives here. What is exported on a connection (the Host
capability) is the caller's business, given as a factory; who may connect
is decided by the TLS contexts (`cluster_app.tls`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import capnp

import schema
from cluster_app.admission import LogThrottle, PerSourceLimit
from cluster_app.compat_capnp import stream_protocol
from cluster_app.multiaddr import Multiaddr
from cluster_app.tls import SERVER_NAME, PeerAuthError, TlsConfig, peer_id_of_certificate

log = logging.getLogger("ww.rpc")

HANDSHAKE_TIMEOUT = 10.0
# Out of descriptors (or kernel memory), accept() fails while the connection
# waits in the backlog, so the socket stays readable: retrying at once would
# spin. The loop waits, doubling from the first to the second, and goes on.
ACCEPT_BACKOFF = (0.05, 1.0)
_OUT_OF_RESOURCES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}

# (connection id, remote address, peer ID proven by the TLS certificate or None)
BootstrapFactory = Callable[[int, str, str | None], Any]
DisconnectHook = Callable[[int], None]
# Whether the object a connection bootstrapped has been proven a member.
AuthenticatedCheck = Callable[[Any], bool]


def _always(_bootstrap: Any) -> bool:
    return True


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
    on each. Owns the accept loop and every connection's task.

    Admission: at most `max_per_source` connections per source address and
    `max_unauthenticated` connections not yet authenticated in all (0: no
    cap), and a connection whose peer has not authenticated within
    `auth_timeout` seconds of being accepted (TLS handshake and membership
    proof, as `authenticated(bootstrap object)` tells) is closed, so idle or
    stalled connections cannot pile up descriptors and memory (asyncio's TLS
    transport alone holds a 256 KiB buffer per connection)."""

    sock: socket.socket
    bootstrap: BootstrapFactory
    on_disconnect: DisconnectHook
    tls: TlsConfig
    auth_timeout: float = HANDSHAKE_TIMEOUT
    authenticated: AuthenticatedCheck = _always
    max_per_source: int = 0
    max_unauthenticated: int = 0
    connections: dict[int, ServerConnection] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _accept_task: asyncio.Task[None] | None = None
    _context: ssl.SSLContext | None = None
    _sources: PerSourceLimit = field(default_factory=lambda: PerSourceLimit(0))
    # Connections not yet authenticated: serving task -> bootstrap object
    # (None while the TLS handshake runs).
    _unproven: dict[asyncio.Task[None], Any] = field(default_factory=dict)
    _quiet: LogThrottle = field(default_factory=LogThrottle)

    @classmethod
    async def open(
        cls,
        addr: Multiaddr,
        bootstrap: BootstrapFactory,
        on_disconnect: DisconnectHook,
        tls: TlsConfig,
        *,
        auth_timeout: float = HANDSHAKE_TIMEOUT,
        authenticated: AuthenticatedCheck = _always,
        max_per_source: int = 0,
        max_unauthenticated: int = 0,
    ) -> Listener:
        if addr.transport != "tcp":
            raise ValueError(f"cannot listen for RPC on {addr}: not a TCP multiaddr")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((addr.ip, addr.port))
        sock.listen(128)
        sock.setblocking(False)
        listener = cls(
            sock=sock,
            bootstrap=bootstrap,
            on_disconnect=on_disconnect,
            tls=tls,
            auth_timeout=auth_timeout,
            authenticated=authenticated,
            max_per_source=max_per_source,
            max_unauthenticated=max_unauthenticated,
            _sources=PerSourceLimit(max_per_source),
        )
        listener._context = tls.server_context()
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
        """Accepts until closed. No accept error ends it: running out of
        descriptors is waited out (logged, with the count when it passes),
        and any other failure concerns one connection only."""
        loop = asyncio.get_running_loop()
        backoff = 0.0
        failures = 0
        while True:
            try:
                conn, (ip, port) = await loop.sock_accept(self.sock)
            except OSError as exc:
                failures += 1
                if exc.errno in _OUT_OF_RESOURCES:
                    backoff = min(max(2 * backoff, ACCEPT_BACKOFF[0]), ACCEPT_BACKOFF[1])
                    self._warn(
                        "accept",
                        "cannot accept RPC connections: %s; retrying in %.2f s",
                        _reason(exc),
                        backoff,
                    )
                    await asyncio.sleep(backoff)
                else:
                    self._warn("accept", "accepting an RPC connection failed: %s", _reason(exc))
                continue
            if failures:
                log.warning("accepting RPC connections again (%d accepts failed)", failures)
                backoff, failures = 0.0, 0
            self._admit(conn, ip, port)

    def _admit(self, conn: socket.socket, ip: str, port: int) -> None:
        if not self._sources.acquire(ip):
            conn.close()
            self._warn(
                f"cap {ip}",
                "refused RPC connection from %s: it holds %d connections already "
                "(WW_RPC_MAX_PER_SOURCE)",
                ip,
                self._sources.held(ip),
            )
            return
        if self.max_unauthenticated > 0 and self._count_unproven() >= self.max_unauthenticated:
            self._sources.release(ip)
            conn.close()
            self._warn(
                "unproven",
                "refused RPC connection from %s: %d connections are not authenticated yet "
                "(WW_RPC_MAX_UNAUTHENTICATED)",
                ip,
                len(self._unproven),
            )
            return
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass  # the peer reset it already; the handshake will say so
        task = asyncio.create_task(self._serve(conn, f"{ip}:{port}"))
        self._tasks.add(task)
        self._unproven[task] = None
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(self._served)
        task.add_done_callback(lambda _task: self._sources.release(ip))

    def _served(self, task: asyncio.Task[None]) -> None:
        self._unproven.pop(task, None)

    def _count_unproven(self) -> int:
        """How many connections have not authenticated yet (forgetting those
        that have since the last count)."""
        for task, host in list(self._unproven.items()):
            if host is not None and self.authenticated(host):
                del self._unproven[task]
        return len(self._unproven)

    def _warn(self, key: str, message: str, *args: Any) -> None:
        """A warning a flood turns into one line per key every few seconds."""
        held_back = self._quiet.allow(key)
        if held_back is not None:
            suffix = f" ({held_back} more like this not logged)" if held_back else ""
            log.warning(message + suffix, *args)

    async def _serve(self, conn: socket.socket, address: str) -> None:
        connection_id = next(self._ids)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout
        try:
            transport, stream = await _tls_stream(
                lambda factory: loop.connect_accepted_socket(
                    factory,
                    sock=conn,
                    ssl=self._context,
                    ssl_handshake_timeout=self.auth_timeout,
                )
            )
        except (ssl.SSLError, OSError, TimeoutError) as exc:
            conn.close()
            self._warn(
                "handshake",
                "refused RPC connection from %s: TLS handshake failed (%s)%s",
                address,
                _reason(exc),
                "" if self.tls.open_cluster else " - not a member of this cluster?",
            )
            return
        cert = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
        proven = peer_id_of_certificate(cert) if cert else None
        host = self.bootstrap(connection_id, address, proven)
        task = asyncio.current_task()
        if task in self._unproven:
            self._unproven[task] = host
        server = capnp.TwoPartyServer(stream, bootstrap=host)
        connection = ServerConnection(connection_id, address, server, stream)
        self.connections[connection_id] = connection
        log.info("rpc connection %d from %s", connection_id, address)
        # The deadline counts from the accept: the handshake had its share.
        timer = loop.call_at(deadline, self._check_authenticated, connection, host)
        try:
            await server.on_disconnect()
        except Exception as exc:  # noqa: BLE001 - any transport failure ends the connection
            log.info("rpc connection %d from %s failed: %s", connection_id, address, exc)
        finally:
            timer.cancel()
            self.connections.pop(connection_id, None)
            log.info("rpc connection %d from %s closed", connection_id, address)
            self.on_disconnect(connection_id)
            connection.close()

    def _check_authenticated(self, connection: ServerConnection, host: Any) -> None:
        if self.authenticated(host):
            return
        self._warn(
            "auth",
            "closed RPC connection %d from %s: not authenticated within %g s (WW_RPC_AUTH_TIMEOUT)",
            connection.id,
            connection.address,
            self.auth_timeout,
        )
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
    peer_id: str  # the gateway's, proven by its TLS certificate

    @classmethod
    async def dial(
        cls,
        addr: Multiaddr,
        *,
        tls: TlsConfig,
        expect_peer: str | None,
        timeout: float = HANDSHAKE_TIMEOUT,
    ) -> ClientConnection:
        """Connect over TLS; the gateway must prove it holds the key of
        `expect_peer` (when given). Raises PeerAuthError if it does not."""
        if addr.transport != "tcp":
            raise ValueError(f"cannot dial {addr}: not a TCP multiaddr")
        context = tls.client_context()
        transport, stream = await asyncio.wait_for(
            _tls_stream(
                lambda factory: asyncio.get_running_loop().create_connection(
                    factory, addr.ip, addr.port, ssl=context, server_hostname=SERVER_NAME
                )
            ),
            timeout,
        )
        try:
            cert = transport.get_extra_info("ssl_object").getpeercert(binary_form=True)
            peer = peer_id_of_certificate(cert)
            if expect_peer is not None and peer != expect_peer:
                raise PeerAuthError(
                    f"{addr} proved it holds the key of {peer}, not of {expect_peer}"
                )
        except PeerAuthError:
            stream.close()
            raise
        client = capnp.TwoPartyClient(stream)
        host = client.bootstrap().cast_as(schema.host.Host)
        return cls(client=client, stream=stream, host=host, address=str(addr), peer_id=peer)

    async def wait_closed(self) -> None:
        await self.client.on_disconnect()

    def close(self) -> None:
        self.host = None
        with contextlib.suppress(Exception):
            self.client.close()
        with contextlib.suppress(Exception):
            self.stream.close()


async def _tls_stream(open_transport: Callable[[Any], Any]) -> tuple[Any, Any]:
    """A pycapnp stream on a TLS transport: `open_transport(factory)` is an
    asyncio call that makes the transport (connect, or wrap an accepted
    socket). pycapnp's own protocol is the transport's protocol, so the
    transport (and its certificates) stays ours to inspect."""
    ready: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    def factory() -> asyncio.Protocol:
        return stream_protocol(ready.set_result)

    transport, _ = await open_transport(factory)
    return transport, await ready


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or type(exc).__name__


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
    if isinstance(exc, OSError):  # ConnectionError is one
        return True
    if isinstance(exc, capnp.KjException):
        return getattr(exc, "type", None) == "DISCONNECTED" or "disconnected" in str(exc).lower()
    return False
