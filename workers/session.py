"""One session of a worker with a gateway, from finding it to leaving it.

Find the gateway (static addresses, or a survey on the multicast group),
dial it over TLS (its certificate proves its peer ID), check that it says it
is who it proved to be, prove our own peer ID by signing its nonce, then
send our Worker capability into its ``workers`` channel and serve: ping it
every ``ping_interval`` until the connection closes or we are told to stop.
Stopping while joined is graceful (:meth:`GatewaySession._leave`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import sys
from typing import Any

from cluster_app.channel import WORKERS_CHANNEL
from cluster_app.discovery import find_peer
from cluster_app.multiaddr import MultiaddrError, parse_multiaddr
from cluster_app.rpc import ClientConnection
from cluster_app.tls import PeerAuthError, TlsConfig, join_message
from workers.config import WorkerConfig
from workers.execution_log import ExecutionLog
from workers.executor import Executor
from workers.fetch import ModuleFetcher
from workers.server import WorkerServer

log = logging.getLogger("ww.worker")


class WrongPeer(Exception):
    """The gateway we reached is not the one we were told to dial."""


class GatewaySession:
    def __init__(
        self,
        config: WorkerConfig,
        executor: Executor,
        *,
        stopping: asyncio.Event,
        execution_log: ExecutionLog | None,
    ) -> None:
        self.config = config
        self.executor = executor
        self.peer_id = config.identity.peer_id
        self._stopping = stopping
        self._execution_log = execution_log
        # True from when the gateway took our capability until the session
        # ends: a stop then drains instead of cutting the session short.
        self.joined = False

    async def run(self) -> None:
        connection = await self._connect()
        try:
            await self._offer_and_serve(connection)
        finally:
            self.joined = False
            connection.close()

    async def _connect(self) -> ClientConnection:
        if self.config.addrs:
            candidates = list(self.config.addrs)
        else:
            log.info("surveying %s for %s", self.config.discover, self.config.dial or "a gateway")
            peer, addrs = await find_peer(
                identity=self.config.identity,
                namespace=self.config.namespace,
                group=self.config.discover,
                target=self.config.dial,
                interval=self.config.survey_interval,
            )
            log.info("found %s at %s", peer, ", ".join(addrs))
            candidates = []
            for text in addrs:
                with contextlib.suppress(MultiaddrError):
                    candidates.append(parse_multiaddr(text))
        errors = []
        for addr in candidates:
            if addr.transport != "tcp":
                continue
            try:
                return await ClientConnection.dial(
                    addr,
                    tls=TlsConfig(self.config.identity, self.config.cluster_key),
                    expect_peer=self.config.dial,
                )
            except PeerAuthError as exc:
                raise WrongPeer(f"not joining: {exc}") from None
            except ssl.SSLError as exc:
                errors.append(f"{addr}: TLS handshake failed ({exc.reason or exc})")
            except (OSError, TimeoutError) as exc:
                errors.append(f"{addr}: {exc or type(exc).__name__}")
        raise ConnectionError("no address answered: " + ("; ".join(errors) or "none given"))

    async def _offer_and_serve(self, connection: ClientConnection) -> None:
        host = connection.host
        gateway = connection.peer_id  # proven by its TLS certificate
        claimed = str((await asyncio.wait_for(host.peer(), self.config.ping_timeout)).id)
        if claimed != gateway:
            raise WrongPeer(f"{connection.address} says it is {claimed} but proved {gateway}")
        nonce = bytes((await host.challenge()).nonce)
        signature = self.config.identity.sign(join_message(gateway, nonce))
        await host.authenticate(peer=self.peer_id, signature=signature)
        sender = (await host.channel(WORKERS_CHANNEL)).sender
        server = WorkerServer(
            self.executor,
            peer_id=self.peer_id,
            concurrency=self.config.concurrency,
            labels=self.config.labels,
            queues=self.config.queues,
            modules=ModuleFetcher(functools.partial(fetch_module, host)),
            execution_log=self._execution_log,
        )
        # Synchronous channel: this returns once the gateway has taken us.
        await sender.send(value={"worker": server})
        self.joined = True
        log.info("joined gateway %s at %s as %s", gateway, connection.address, self.peer_id)
        _say(f"worker {self.peer_id} joined {gateway}")
        closed = asyncio.ensure_future(connection.wait_closed())
        stop = asyncio.ensure_future(self._stopping.wait())
        try:
            while True:
                done, _ = await asyncio.wait(
                    {closed, stop},
                    timeout=self.config.ping_interval,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                if stop in done:
                    await self._leave(host, server)
                    return
                if closed in done:
                    raise ConnectionError("gateway closed the connection")
                await asyncio.wait_for(host.peer(), self.config.ping_timeout)
        finally:
            for future in (closed, stop):
                future.cancel()
            await asyncio.gather(closed, stop, return_exceptions=True)

    async def _leave(self, host: Any, server: WorkerServer) -> None:
        """Graceful stop: the gateway sends nothing new and answers once our
        runs in flight are done; past the grace period we go anyway (the
        gateway re-runs what was cut short elsewhere)."""
        log.info("stopping: finishing %d runs in flight", server.in_flight)
        try:
            await asyncio.wait_for(host.leave(), self.config.stop_grace)
            log.info("left the gateway with nothing in flight")
        except TimeoutError:
            log.warning(
                "grace period of %.1f s over with %d runs in flight; leaving anyway",
                self.config.stop_grace,
                server.in_flight,
            )
        _say(f"worker {self.peer_id} left")


async def fetch_module(host: Any, digest: str) -> bytes:
    """A module's bytes from the gateway (its `Host` capability)."""
    return bytes((await host.module(digest)).wasm)


def _say(line: str) -> None:
    """A line on stdout for people and scripts (joins and leaves)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
