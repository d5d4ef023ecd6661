"""The gateway node's cluster side: the RPC listener exporting the channel,
the loop that takes worker capabilities out of the channel into the pool,
discovery answers, liveness checks, and the scheduler that uses the pool.

`GatewayNode.start()` starts every piece as a task it owns; `stop()` cancels
and awaits them and lets go of every capability, so the KJ loop can end.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections

from cluster_app import discovery, liveness, services
from cluster_app.channel import WORKERS_CHANNEL, ChannelClosed, SyncChannel
from cluster_app.conf import ClusterSettings
from cluster_app.host import HostServer, Offer
from cluster_app.identity import Identity
from cluster_app.multiaddr import Multiaddr
from cluster_app.offers import Admitted, Refused, Routing, judge_offer
from cluster_app.rpc import Listener
from cluster_app.tls import TlsConfig
from cluster_app.worker_link import CapnpWorkerLink, read_routing
from tasks_app import charts, events, firing, loop_db, metrics, notify, run_records
from tasks_app import selectors as task_selectors
from tasks_app import services as task_services
from tasks_app.conf import TasksSettings
from tasks_app.journal import Journal
from tasks_app.loop_db import loop_database
from tasks_app.pool import PooledWorker, WorkerPool
from tasks_app.scheduler import Scheduler

log = logging.getLogger("ww.gateway")


@dataclass(frozen=True)
class GatewayConfig:
    """What a gateway node is told at start: who it is and where (from
    `rungateway`'s options), and the settings objects as read (every knob
    and its default is defined once, in tasks_app/conf.py and cluster_app/conf.py)."""

    identity: Identity
    namespace: str
    listen: Multiaddr
    discover: Multiaddr | None
    cluster_key: bytes | None  # None: an open cluster, as in the seed
    tasks: TasksSettings  # the scheduler's knobs
    cluster: ClusterSettings  # liveness, the sweep, what a worker may claim, admission


class GatewayNode:
    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.peer_id = config.identity.peer_id
        self.pool = WorkerPool(on_evict=self._evicted)
        self.channel: SyncChannel[Offer] = SyncChannel()
        # On SQLite, an idle gateway's small batches are written on the event
        # loop's own connection (tasks_app.loop_db); the rest on the journal's
        # thread.
        self._loop_db = loop_database()
        self.journal = Journal(
            _write_journal,
            publish=events.publish_runs,
            write_here=None
            if self._loop_db is None
            else functools.partial(run_records.record_runs_here, self._loop_db),
        )
        # The one place the scheduler's options are taken from the settings.
        tasks = config.tasks
        self.scheduler = Scheduler(
            self.pool,
            self.journal,
            max_attempts=tasks.max_attempts,
            default_duration=tasks.default_duration,
            short_run=tasks.prefetch_below,
            max_queue=tasks.prefetch,
            max_batch=tasks.batch,
            batch_time=tasks.batch_seconds,
            lead=tasks.send_ahead,
            max_faults=tasks.worker_max_faults,
            call_grace=tasks.call_grace,
            window=tasks.queue_window,
        )
        self.listener: Listener | None = None
        self.discovery_stats = discovery.DiscoveryStats()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._journal_task: asyncio.Task[None] | None = None
        self._modules: OrderedDict[str, bytes] = OrderedDict()  # recently fetched
        self._cancels = asyncio.Event()  # a cancel here: settle its runs now

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("gateway task %s died", task.get_name(), exc_info=task.exception())

    def multiaddrs(self) -> list[str]:
        return self.listener.multiaddrs() if self.listener else []

    async def start(self) -> None:
        await sync_to_async(services.forget_connections)()
        recovered = await sync_to_async(task_services.recover_interrupted_runs)()
        if recovered:
            log.warning("%d runs were in flight when the gateway stopped; re-queued", recovered)
        # Schedules' fire times missed while no gateway ran: run or recorded
        # skipped, before the queue is loaded (tasks_app.firing).
        caught_up = await sync_to_async(firing.catch_up_all)()
        if caught_up:
            log.warning("%d schedule firings made on catching up", caught_up)
        queued = await self.scheduler.load()
        metrics.bind_gateway(workers=lambda: len(self.pool), queue_depth=self.scheduler.queue_depth)
        tls = TlsConfig(self.config.identity, self.config.cluster_key)
        self.listener = await Listener.open(
            self.config.listen,
            self._bootstrap,
            self._disconnected,
            tls,
            auth_timeout=self.config.cluster.rpc_auth_timeout,
            authenticated=_is_member,
            max_per_source=self.config.cluster.rpc_max_per_source,
            max_unauthenticated=self.config.cluster.rpc_max_unauthenticated,
        )
        if tls.open_cluster:
            log.warning(
                "open cluster: any node that can reach %s may join as a worker and will be "
                "sent modules (give every node --cluster-key-file to close it)",
                ", ".join(self.multiaddrs()),
            )
        else:
            log.info("closed cluster: only nodes with the cluster key can join")
        log.info(
            "gateway %s listening on %s; %d runs queued",
            self.peer_id,
            ", ".join(self.multiaddrs()),
            queued,
        )
        self._journal_task = asyncio.create_task(self.journal.run(), name="journal")
        self._spawn(self._take_workers(), "channel-loop")
        self._spawn(self.scheduler.run(), "scheduler")
        notify.serve_locally(asyncio.get_running_loop(), self.scheduler.add, self._task_cancelled)
        self._spawn(self._settle(), "settle-cancellations")
        self._spawn(self._report_load(), "worker-load")
        self._spawn(self._sweep(), "sweep")
        # The status page's live charts: the metrics above, every 5 s, 15 minutes kept.
        self._spawn(charts.keep_sampling(), "charts")
        self._spawn(
            liveness.watch(
                self.pool,
                interval=self.config.cluster.ping_interval,
                timeout=self.config.cluster.ping_timeout,
                on_silent=self._silent,
            ),
            "liveness",
        )
        if self.config.discover is not None:
            self._spawn(
                discovery.serve_surveys(
                    identity=self.config.identity,
                    namespace=self.config.namespace,
                    group=self.config.discover,
                    addrs=self.multiaddrs,
                    stats=self.discovery_stats,
                ),
                "discovery",
            )

    async def stop(self) -> None:
        notify.stop_serving_locally()
        self.channel.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._journal_task is not None:
            # Last: it writes what the scheduler recorded before it stopped.
            self._journal_task.cancel()
            await asyncio.gather(self._journal_task, return_exceptions=True)
        if self._loop_db is not None:
            self._loop_db.close()
        self.pool.clear()
        if self.listener is not None:
            await self.listener.close()
        log.info("gateway %s stopped", self.peer_id)

    # -- RPC connections ----------------------------------------------------

    def _bootstrap(self, connection: int, address: str, proven_peer: str | None) -> HostServer:
        return HostServer(
            peer_id=self.peer_id,
            channels={WORKERS_CHANNEL: self.channel},
            connection=connection,
            address=address,
            on_leave=self._worker_leaving,
            modules=functools.partial(self._module_for, connection),
            proven_peer=proven_peer,
        )

    async def _module_for(self, connection: int, sha256: str) -> bytes | None:
        """A module's bytes for a worker of `connection` that was sent a run
        of it; PermissionError for any other module (a member may not read
        what it was never given)."""
        if not any(sha256 in worker.modules for worker in self.pool.on_connection(connection)):
            raise PermissionError(f"no run of module {sha256[:12]} was sent to you")
        return await self._module_bytes(sha256)

    async def _module_bytes(self, sha256: str) -> bytes | None:
        """A module's bytes for a worker that lacks them (from the database,
        the recent ones kept here: every worker fetches a new module at once)."""
        wasm = self._modules.get(sha256)
        if wasm is None:
            wasm = await sync_to_async(task_selectors.module_bytes)(sha256)
            if wasm is None:
                return None
            self._modules[sha256] = wasm
            while len(self._modules) > 16:
                self._modules.popitem(last=False)
        else:
            self._modules.move_to_end(sha256)
        return wasm

    async def _worker_leaving(self, connection: int) -> None:
        workers = self.pool.on_connection(connection)
        for worker in workers:
            log.info("worker %s is leaving: no new runs; waiting for its runs", worker.peer_id)
        await self.pool.drain(connection)

    def _evicted(self, worker: PooledWorker, reason: str) -> None:
        """The scheduler gave up on a worker: it is out of the pool; close
        its connection, so that it reconnects and offers itself afresh."""
        log.warning("worker %s disconnected: %s", worker.peer_id, reason)
        self._spawn(sync_to_async(services.worker_left)(peer_id=worker.peer_id), "worker-left")
        if self.listener is not None:
            with contextlib.suppress(Exception):
                self.listener.drop(worker.connection)

    def _disconnected(self, connection: int) -> None:
        for worker in self.pool.on_connection(connection):
            self._leave(worker, "connection closed")

    def _leave(self, worker: PooledWorker, reason: str) -> None:
        if self.pool.remove(worker):
            log.info("worker %s left (%s)", worker.peer_id, reason)
            self._spawn(sync_to_async(services.worker_left)(peer_id=worker.peer_id), "worker-left")

    # -- the channel loop: worker capabilities into the pool ----------------

    async def _take_workers(self) -> None:
        while True:
            try:
                offer = await self.channel.recv()
            except ChannelClosed:
                return
            self._spawn(self._admit(offer), "admit-worker")

    async def _admit(self, offer: Offer) -> None:
        try:
            response = await asyncio.wait_for(
                offer.capability.info(), self.config.cluster.ping_timeout
            )
        except Exception as exc:  # noqa: BLE001 - a worker that cannot say who it is stays out
            log.warning("worker offer from %s refused: %s", offer.address, exc)
            return
        peer_id = str(response.info.peer)
        verdict = judge_offer(
            says=peer_id,
            proved=offer.peer_id,
            claimed_concurrency=int(response.info.concurrency),
            max_concurrency=self.config.cluster.max_worker_concurrency,
            faults=self.pool.faults_of(offer.peer_id),
            max_faults=self.config.tasks.worker_max_faults,
        )
        if self.listener is None or offer.connection not in self.listener.connections:
            return  # its connection closed while we asked
        routing = read_routing(response.info)
        refused = next((v for v in (verdict, routing) if isinstance(v, Refused)), None)
        if refused is not None:
            log.warning("worker offer from %s refused: %s", offer.address, refused.reason)
            with contextlib.suppress(Exception):
                self.listener.drop(offer.connection)
            return
        assert isinstance(verdict, Admitted) and isinstance(routing, Routing)
        concurrency = verdict.concurrency
        if verdict.capped_from is not None:
            log.warning(
                "worker %s claims concurrency %d; taken as %d (WW_MAX_WORKER_CONCURRENCY)",
                peer_id,
                verdict.capped_from,
                concurrency,
            )
        for worker in self.pool:
            if worker.peer_id == peer_id:
                self._leave(worker, "replaced by a new connection")
        await sync_to_async(services.worker_joined)(
            peer_id=peer_id,
            address=offer.address,
            concurrency=concurrency,
            labels=routing.labels,
            queues=sorted(routing.queues),
        )
        self.pool.add(
            peer_id=peer_id,
            address=offer.address,
            concurrency=concurrency,
            queues=routing.queues,
            labels=routing.labels,
            link=CapnpWorkerLink(
                offer.capability, max_result_bytes=self.config.cluster.result_max_bytes
            ),
            connection=offer.connection,
        )
        log.info(
            "worker %s joined from %s (concurrency %d, queues %s, labels %s)",
            peer_id,
            offer.address,
            concurrency,
            ",".join(sorted(routing.queues)),
            ",".join(f"{k}={v}" for k, v in sorted(routing.labels.items())) or "none",
        )

    async def _sweep(self) -> None:
        """Now and then, queue due runs no notification told us about (and
        let go of a database connection that broke or grew old: the gateway's
        database thread outlives any request)."""
        while True:
            await asyncio.sleep(self.config.cluster.sweep_interval)
            try:
                await sync_to_async(close_old_connections)()
                # The loop's own SQLite connection never checkpoints the WAL.
                await sync_to_async(loop_db.checkpoint_wal)()
                await self.scheduler.sweep(horizon=2 * self.config.cluster.sweep_interval)
                await self.scheduler.reclaim(grace=self.config.cluster.reclaim_grace)
                # A schedule whose next firing was not made (tasks_app.firing).
                await sync_to_async(firing.repair_chains)()
            except Exception:
                log.exception("sweep failed; trying again later")

    def _task_cancelled(self, task_id: str) -> int:
        self._cancels.set()
        return self.scheduler.cancel_task(task_id)

    async def _settle(self) -> None:
        """Turn the runs a cancel left `pending` cancelled
        (tasks_app.services.settle_cancellations), chunk by chunk, soon after
        a cancel here, and every second for those of a cancel elsewhere or
        before a restart. (The cancel tells us before it commits: the short
        wait lets it.)"""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._cancels.wait(), 1.0)
                await asyncio.sleep(0.1)
            self._cancels.clear()
            try:
                while await sync_to_async(task_services.settle_cancellations)():
                    await asyncio.sleep(0.01)  # other writers between chunks
            except Exception:
                log.exception("settling cancellations failed; trying again later")

    async def _report_load(self) -> None:
        """Keep the registry's in-flight counts near the truth (the pool's),
        without a database write per run."""
        reported: dict[str, int] = {}
        while True:
            await asyncio.sleep(1.0)
            for worker in self.pool:
                if reported.get(worker.peer_id) != worker.in_flight:
                    reported[worker.peer_id] = worker.in_flight
                    await sync_to_async(services.worker_load)(
                        peer_id=worker.peer_id, in_flight=worker.in_flight
                    )

    def _silent(self, worker: PooledWorker, reason: str) -> None:
        """A worker that does not answer its pings: out of the pool, and its
        connection closed (it reconnects if it is alive after all)."""
        self._leave(worker, reason)
        if self.listener is not None:
            with contextlib.suppress(Exception):
                self.listener.drop(worker.connection)


def _is_member(host: HostServer) -> bool:
    """A connection's peer has proven its key (Host.authenticate): the
    listener's auth deadline stops counting for it."""
    return host.verified_peer is not None


def _write_journal(records: list[Any]) -> list[dict[str, Any]]:
    """The journal's batch write, on its own thread. That thread keeps its
    database connection between batches; one that broke or outlived
    CONN_MAX_AGE is replaced first."""
    close_old_connections()
    return run_records.record_runs(records)
