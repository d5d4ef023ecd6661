"""The seed's multiaddr forms, parsed and printed canonically.

Accepted: ``/ip4/A/tcp/P``, ``/ip4/A/udp/P`` and ``/ip4/G/udp/P/multicast/IFACE``
(``lo0`` is read as ``lo``). Pure: no Django, no sockets.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

Transport = Literal["tcp", "udp"]

_MULTICAST_NET = ipaddress.IPv4Network("224.0.0.0/4")
_PORT = re.compile(r"[0-9]{1,5}")
# Linux interface names: at most 15 bytes (IFNAMSIZ - 1), no '/' or whitespace.
_IFACE = re.compile(r"[A-Za-z0-9_.:@-]{1,15}")
_IFACE_ALIASES = {"lo0": "lo"}


class MultiaddrError(ValueError):
    """Text that is not one of the supported multiaddr forms."""


@dataclass(frozen=True)
class Multiaddr:
    """An IPv4 TCP/UDP address, optionally a multicast group on an interface."""

    ip: str
    transport: Transport
    port: int
    multicast_iface: str | None = None

    def __post_init__(self) -> None:
        _check_ip(self.ip)
        if self.transport not in ("tcp", "udp"):
            raise MultiaddrError(f"transport must be tcp or udp, got {self.transport!r}")
        low = 0 if self.transport == "tcp" else 1
        if not isinstance(self.port, int) or not low <= self.port <= 65535:
            raise MultiaddrError(f"{self.transport} port must be {low}..65535, got {self.port!r}")
        if self.multicast_iface is not None:
            if self.transport != "udp":
                raise MultiaddrError("multicast needs udp, not tcp")
            if ipaddress.IPv4Address(self.ip) not in _MULTICAST_NET:
                raise MultiaddrError(f"multicast group must be in 224.0.0.0/4, got {self.ip}")
            if not _IFACE.fullmatch(self.multicast_iface) or self.multicast_iface in (
                ".",
                "..",
            ):
                raise MultiaddrError(f"bad interface name {self.multicast_iface!r}")
            if self.multicast_iface in _IFACE_ALIASES:
                object.__setattr__(self, "multicast_iface", _IFACE_ALIASES[self.multicast_iface])

    @property
    def is_multicast(self) -> bool:
        return self.multicast_iface is not None

    @property
    def sockaddr(self) -> tuple[str, int]:
        """The ``(host, port)`` pair for the socket API."""
        return (self.ip, self.port)

    def __str__(self) -> str:
        text = f"/ip4/{self.ip}/{self.transport}/{self.port}"
        if self.multicast_iface is not None:
            text += f"/multicast/{self.multicast_iface}"
        return text


def _check_ip(ip: object) -> None:
    if not isinstance(ip, str):
        raise MultiaddrError(f"ip4 address must be text, got {type(ip).__name__}")
    try:
        parsed = ipaddress.IPv4Address(ip)
    except ValueError as exc:
        raise MultiaddrError(f"bad ip4 address {ip!r}: {exc}") from None
    if str(parsed) != ip:
        raise MultiaddrError(f"ip4 address must be dotted decimal, got {ip!r}")


def _port(text: str, transport: str) -> int:
    if not _PORT.fullmatch(text):
        raise MultiaddrError(f"bad {transport} port {text!r}: expected a decimal number")
    return int(text)


def parse_multiaddr(text: str) -> Multiaddr:
    """Parse one multiaddr; raises MultiaddrError saying what is wrong."""
    if not isinstance(text, str):
        raise MultiaddrError(f"multiaddr must be text, got {type(text).__name__}")
    if not text.startswith("/"):
        raise MultiaddrError(f"multiaddr must start with '/': {text!r}")
    if text.endswith("/") and len(text) > 1:
        raise MultiaddrError(f"multiaddr must not end with '/': {text!r}")
    parts = text[1:].split("/")
    if parts[0] != "ip4":
        raise MultiaddrError(f"only /ip4 multiaddrs are supported: {text!r}")
    if len(parts) < 4:
        raise MultiaddrError(f"incomplete multiaddr, expected /ip4/A/tcp|udp/PORT: {text!r}")
    _, ip, transport, port_text, *rest = parts
    if transport not in ("tcp", "udp"):
        raise MultiaddrError(f"transport must be tcp or udp, got {transport!r} in {text!r}")
    port = _port(port_text, transport)
    iface: str | None = None
    if rest:
        if rest[0] != "multicast":
            raise MultiaddrError(f"unexpected {'/'.join(rest)!r} after the port in {text!r}")
        if len(rest) != 2 or not rest[1]:
            raise MultiaddrError(f"multicast needs exactly one interface name: {text!r}")
        iface = rest[1]
    return Multiaddr(ip=ip, transport=transport, port=port, multicast_iface=iface)  # type: ignore[arg-type]  # Multiaddr.__post_init__ refuses any other transport


def parse_multiaddrs(text: str) -> list[Multiaddr]:
    """Parse a comma- and/or whitespace-separated list of multiaddrs."""
    if not isinstance(text, str):
        raise MultiaddrError(f"multiaddr list must be text, got {type(text).__name__}")
    return [parse_multiaddr(item) for item in re.split(r"[,\s]+", text) if item]
