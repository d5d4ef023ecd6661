"""Whether a TCP address can be listened on, asked before a node says it is
up: a port already taken should stop the start with a clear message, not
show up later as a listener error after the peer ID has been printed."""

from __future__ import annotations

import errno
import socket


class PortInUse(RuntimeError):
    """Another socket listens on the address already."""


def ensure_free(host: str, port: int, *, what: str) -> None:
    """Raise `PortInUse` if `host:port` cannot be bound now. Port 0 (any
    free port) always passes."""
    if port == 0:
        return
    host = host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise PortInUse(f"{what} {host}:{port}: cannot resolve {host!r} ({exc})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As Twisted and the RPC listener do: a socket of a process that has
        # just stopped (TIME_WAIT) does not count as in use.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"{what} {host}:{port} is already in use (another gateway, or another "
                    "program, listens there)"
                ) from None
            raise PortInUse(f"{what} {host}:{port} cannot be used: {exc.strerror}") from None
