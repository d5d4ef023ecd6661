"""Connection admission for the gateway's HTTP server: a deadline for each
request's headers and a cap of connections per source address.

A client trickling a header line every few seconds (slowloris) would hold
its connection and a descriptor for ever, and a thousand of them exhaust
the process's descriptors, the RPC listener's included. So the headers of a
request must be complete within `WW_HTTP_HEADER_TIMEOUT` seconds, however
slowly they trickle in (cluster_app.compat_twisted.HeaderDeadlineChannel),
and one address may hold at most `WW_HTTP_MAX_PER_SOURCE` connections,
websockets included, so one client cannot crowd out the rest
(`PerSourceFactory`). cluster_app.compat_daphne puts both into daphne.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from twisted.internet.interfaces import IAddress
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

from cluster_app.admission import LogThrottle, PerSourceLimit

log = logging.getLogger("ww.http")

_quiet = LogThrottle()


def warn(key: str, message: str, *args: Any) -> None:
    """Log a warning of kind `key`, unless a flood of them is being held back."""
    held_back = _quiet.allow(key)
    if held_back is not None:
        suffix = f" ({held_back} more like this not logged)" if held_back else ""
        log.warning(message + suffix, *args)


class _CountedConnection(ProtocolWrapper):
    source = ""


class PerSourceFactory(WrappingFactory):
    """Wraps the HTTP factory and refuses (closes at once) a connection from
    an address that holds `limit` already. It counts at the transport, so a
    connection upgraded to a websocket is still counted until it closes."""

    protocol = _CountedConnection

    def __init__(self, wrapped: Any, limit: int) -> None:
        super().__init__(wrapped)
        self.sources = PerSourceLimit(limit)

    def buildProtocol(self, addr: IAddress | None) -> Any:  # Twisted's name
        source = str(getattr(addr, "host", addr))
        if not self.sources.acquire(source):
            warn(
                f"cap {source}",
                "refused HTTP connection from %s: it holds %d connections already "
                "(WW_HTTP_MAX_PER_SOURCE)",
                source,
                self.sources.held(source),
            )
            return None
        try:
            wrapper = cast(_CountedConnection, super().buildProtocol(addr))
        except BaseException:
            self.sources.release(source)
            raise
        wrapper.source = source
        return wrapper

    def unregisterProtocol(self, p: Any) -> None:  # Twisted's name
        super().unregisterProtocol(p)
        self.sources.release(p.source)
