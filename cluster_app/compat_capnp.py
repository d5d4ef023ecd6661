"""pycapnp's private part the RPC transport relies on, in one guarded place.

pycapnp makes its asyncio streams itself (``AsyncIoStream.create_server`` /
``create_connection``) and keeps the transport out of reach; the RPC needs
the transport, to read the peer's TLS certificate before any call is
answered. ``AsyncIoStream._connect(callback)`` is the protocol factory those
public functions use: it hands the stream to ``callback`` once the
connection is made, so the transport stays the caller's
(`cluster_app.rpc._tls_stream`). It is private, so importing this module
checks that the installed pycapnp is the one this was written against
(requirements.txt pins it). No other module touches pycapnp's private names
(tests/unit/test_compat_capnp.py checks both).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
from collections.abc import Callable
from typing import Any

WRITTEN_FOR = "2.2.4"


class CapnpVersionError(ImportError):
    """The installed pycapnp is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise CapnpVersionError(
            f"cluster_app/compat_capnp.py was written for pycapnp {WRITTEN_FOR} "
            f"(its private AsyncIoStream._connect) but pycapnp {installed} is "
            f"installed: install pycapnp=={WRITTEN_FOR} (requirements.txt), or "
            f"check this module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("pycapnp"))

import capnp  # noqa: E402


def stream_protocol(on_stream: Callable[[Any], object]) -> asyncio.Protocol:
    """An asyncio protocol that carries Cap'n Proto RPC: give it to
    `loop.create_connection` or `create_server` (plain or TLS); once the
    connection is made, `on_stream` gets the pycapnp stream for
    `capnp.TwoPartyClient` / `TwoPartyServer`."""
    protocol: asyncio.Protocol = capnp.AsyncIoStream._connect(on_stream)
    return protocol
