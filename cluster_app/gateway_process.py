"""The gateway process: daphne's Twisted reactor and our asyncio code on one
event loop, started and stopped in the order pycapnp needs.

The ASGI application daphne serves is built by the factory the process is
given (`rungateway` resolves the `ASGI_APPLICATION_FACTORY` setting), from
the gateway's runtime.

Start: daphne's limits are put in (cluster_app.compat_daphne); daphne
listens; the KJ loop is entered; the Channels worker starts and the
GatewayConsumer is told `gateway.start`.
Stop (signal, or daphne failing to listen): before the reactor shuts down,
the consumer is told `gateway.stop`, the Channels worker is cancelled, and
the KJ loop is left once no capability is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import signal as signals_module
import sys
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import capnp
import daphne.server
from channels.layers import get_channel_layer
from channels.routing import ChannelNameRouter
from channels.worker import Worker as ChannelsWorker
from twisted.internet import defer
from twisted.internet import reactor as _reactor

from cluster_app import compat_daphne
from cluster_app.consumers import GATEWAY_CHANNEL, GatewayConsumer
from cluster_app.gateway import GatewayConfig, GatewayNode
from cluster_app.process_memory import return_large_blocks_to_the_system, trim_now_and_then
from tasks_app import notify

# Twisted types the installed reactor as its module; it is the asyncio reactor
# daphne installed, with every reactor interface.
reactor: Any = _reactor

log = logging.getLogger("ww.gateway")


@dataclass(frozen=True)
class GatewayRuntime:
    """What the gateway process tells the ASGI application it serves."""

    # The scheduler runs on the same loop as daphne: a response ready when a
    # request has just handed it runs waits the loop turns their dispatch
    # takes, so the runs are not queued behind its writing.
    before_response: Callable[[], Awaitable[None]] = notify.dispatch_turns


# Builds the ASGI application daphne serves (wwproject.asgi.make_application).
AppFactory = Callable[[GatewayRuntime], Any]


class GatewayProcess:
    def __init__(
        self,
        config: GatewayConfig,
        *,
        http_host: str,
        http_port: int,
        app_factory: AppFactory,
    ) -> None:
        self.config = config
        self.http_host = http_host
        self.http_port = http_port
        self.app_factory = app_factory
        self.node = GatewayNode(config)
        self.exit_code = 0
        self._main: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopped = asyncio.Event()

    def run(self, *, signals: Iterable[int]) -> int:
        from django.conf import settings

        application = self.app_factory(GatewayRuntime())
        raise_descriptor_limit()
        return_large_blocks_to_the_system()
        compat_daphne.bound_request_bodies(settings.WW_TASKS.request_body_max_bytes)
        compat_daphne.bound_websocket_writes(
            max_buffered=settings.WW_CLUSTER.ws_max_buffered,
            stall=settings.WW_CLUSTER.ws_stall,
            close_grace=settings.WW_CLUSTER.ws_close_grace,
        )
        compat_daphne.guard_connections(
            header_timeout=settings.WW_CLUSTER.http_header_timeout,
            max_per_source=settings.WW_CLUSTER.http_max_per_source,
        )

        self.server = daphne.server.Server(
            application=application,
            endpoints=[f"tcp:port={self.http_port}:interface={_escape(self.http_host)}"],
            signal_handlers=False,
            verbosity=0,
        )
        reactor.callWhenRunning(self._started, list(signals))
        reactor.addSystemEventTrigger("before", "shutdown", self._before_shutdown)
        self.server.run()
        return self.exit_code

    def _started(self, signals: list[int]) -> None:
        loop = asyncio.get_event_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self._request_stop, sig)
        self._main = loop.create_task(self._cluster_main(), name="gateway-main")

    def _request_stop(self, sig: int) -> None:
        log.info("received %s, stopping", signals_module.Signals(sig).name)
        if reactor.running:
            reactor.stop()

    def _before_shutdown(self) -> defer.Deferred[None] | None:
        if self._main is None or self._main.done():
            return None
        self._stop.set()
        return defer.Deferred.fromFuture(asyncio.ensure_future(self._wait_main()))

    async def _wait_main(self) -> None:
        assert self._main is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._main

    async def _cluster_main(self) -> None:
        try:
            async with capnp.kj_loop():
                await self._serve()
        except Exception:
            log.exception("gateway failed")
            self.exit_code = 1
            if reactor.running:
                reactor.stop()

    async def _serve(self) -> None:
        layer = get_channel_layer()
        router = ChannelNameRouter(
            {GATEWAY_CHANNEL: GatewayConsumer.as_asgi(node=self.node, stopped=self._stopped)}
        )
        worker = ChannelsWorker(router, [GATEWAY_CHANNEL], layer)
        worker_task = asyncio.create_task(worker.arun(), name="channels-worker")
        trim_task = asyncio.create_task(trim_now_and_then(), name="memory-trim")
        try:
            await layer.send(GATEWAY_CHANNEL, {"type": "gateway.start"})
            await self._announce()
            await self._stop.wait()
            await layer.send(GATEWAY_CHANNEL, {"type": "gateway.stop"})
            await asyncio.wait_for(self._stopped.wait(), 30)
        finally:
            for task in (trim_task, worker_task):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            # Consumers hold no capability now; drop our own references too.
            self.node.pool.clear()

    async def _announce(self) -> None:
        """Say where everything is, once daphne listens and the node runs."""
        for _ in range(200):
            # A listen error stops the reactor (daphne's listen_error): stop
            # waiting then, so the process ends at once with its exit code.
            if self._stop.is_set():
                break
            if self.server.listening_addresses and self.node.listener is not None:
                break
            await asyncio.sleep(0.05)
        if not self.server.listening_addresses:
            log.error("daphne is not listening on %s:%d", self.http_host, self.http_port)
            self.exit_code = 1
            if reactor.running:
                reactor.stop()
            return
        if self._stop.is_set():
            return  # stopped while starting: nothing to announce
        host, port = self.server.listening_addresses[0]
        shown = f"[{host}]" if ":" in host else host
        sys.stdout.write(
            f"gateway {self.node.peer_id}\n"
            f"  http: http://{shown}:{port}/\n"
            f"  rpc:  {' '.join(self.node.multiaddrs())}\n"
        )
        sys.stdout.flush()


def raise_descriptor_limit() -> None:
    """Every HTTP and RPC connection holds a descriptor; the common soft
    limit of 1024 is soon reached by a flood, or by a big cluster. Raise the
    soft limit to the hard one (what an unprivileged process may)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        log.info("open file limit %d (the hard limit)", soft)
        return
    # An unlimited hard limit still has a ceiling the kernel enforces.
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError) as exc:
        log.warning("open file limit stays %d: cannot raise it to %d (%s)", soft, target, exc)
        return
    log.info("open file limit raised from %d to %d", soft, target)


def _escape(host: str) -> str:
    """Twisted endpoint strings escape ':' in IPv6 addresses."""
    return host.replace(":", "\\:")
