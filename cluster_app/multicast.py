"""A UDP multicast socket for asyncio: join a group, send to it, receive from it.

I/O only; what the datagrams mean is cluster_app.packet's business.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
from types import TracebackType
from typing import Self

from cluster_app.multiaddr import Multiaddr

logger = logging.getLogger("ww.discovery")

Address = tuple[str, int]
# Datagrams wait here until recv() takes them; past this the newest are dropped
# rather than letting a flood of packets grow memory without bound.
QUEUE_LIMIT = 1024
_SIOCGIFADDR = 0x8915


class MulticastClosed(ConnectionError):
    """recv() on a socket that was closed."""


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, Address] | None]) -> None:
        self.queue = queue
        self.dropped = 0
        self.closed = False

    def datagram_received(self, data: bytes, addr: Address) -> None:
        try:
            self.queue.put_nowait((data, addr))
        except asyncio.QueueFull:
            self.dropped += 1

    def error_received(self, exc: Exception) -> None:
        logger.debug("multicast socket error: %s", exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        try:
            self.queue.put_nowait(None)  # wake a pending recv()
        except asyncio.QueueFull:
            pass


def _interface_index(name: str) -> int:
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise OSError(f"no network interface {name!r} for multicast: {exc}") from None


def _interface_ipv4(sock: socket.socket, name: str) -> str:
    """The interface's primary IPv4 address, or 0.0.0.0 if it has none."""
    try:
        req = struct.pack("256s", name.encode()[:15])
        res = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR, req)
    except OSError:
        return "0.0.0.0"
    return socket.inet_ntoa(res[20:24])  # ifr_addr is a sockaddr_in after the 16-byte name


def make_multicast_socket(group: Multiaddr) -> socket.socket:
    """A non-blocking UDP socket bound to the group's port and joined to it."""
    if group.multicast_iface is None or group.transport != "udp":
        raise ValueError(f"not a multicast multiaddr: {group}")
    ifindex = _interface_index(group.multicast_iface)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        # struct ip_mreqn { in_addr imr_multiaddr; in_addr imr_address; int imr_ifindex; }
        join = struct.pack("=4s4si", socket.inet_aton(group.ip), bytes(4), ifindex)
        # On lo the kernel will not pick the host-scoped 127.0.0.1 as the source
        # of a multicast datagram by itself (it sends from 0.0.0.0), so name it.
        source = socket.inet_aton(_interface_ipv4(sock, group.multicast_iface))
        send_if = struct.pack("=4s4si", socket.inet_aton(group.ip), source, ifindex)
        # Several processes on one host (gateway, workers, casm_ls) share the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        # Bound to the group address, the socket gets only that group's datagrams,
        # not unicast to the port nor other groups joined elsewhere on the host.
        sock.bind((group.ip, group.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, join)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, send_if)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class MulticastSocket:
    """An asyncio multicast endpoint; use ``async with MulticastSocket(group)``."""

    def __init__(self, group: Multiaddr | None = None) -> None:
        self.group = group
        self._transport: asyncio.DatagramTransport | None = None
        self._protocol: _Protocol | None = None
        self._queue: asyncio.Queue[tuple[bytes, Address] | None] = asyncio.Queue(QUEUE_LIMIT)

    async def open(self, group: Multiaddr | None = None) -> Self:
        """Join the group (given here or to the constructor)."""
        if self._transport is not None:
            raise RuntimeError("multicast socket is already open")
        self.group = group or self.group
        if self.group is None:
            raise ValueError("no multicast group given")
        sock = make_multicast_socket(self.group)
        loop = asyncio.get_running_loop()
        try:
            transport, protocol = await loop.create_datagram_endpoint(
                lambda: _Protocol(self._queue), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        self._transport, self._protocol = transport, protocol
        logger.debug("joined multicast group %s", self.group)
        return self

    @property
    def dropped(self) -> int:
        """Datagrams dropped because nobody was receiving fast enough."""
        return self._protocol.dropped if self._protocol else 0

    def send(self, data: bytes) -> None:
        """Send one datagram to the group."""
        if self._transport is None or self._transport.is_closing() or self.group is None:
            raise MulticastClosed("multicast socket is not open")
        self._transport.sendto(data, self.group.sockaddr)

    async def recv(self) -> tuple[bytes, Address]:
        """The next datagram and its sender's address."""
        if self._transport is None or self._protocol is None:
            raise MulticastClosed("multicast socket is not open")
        if self._protocol.closed and self._queue.empty():
            raise MulticastClosed("multicast socket closed")
        item = await self._queue.get()
        if item is None:
            raise MulticastClosed("multicast socket closed")
        return item

    def close(self) -> None:
        """Leave the group and close the socket."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    async def __aenter__(self) -> Self:
        if self._transport is None:
            await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        # Let the loop run the transport's connection_lost so the fd is released.
        await asyncio.sleep(0)
