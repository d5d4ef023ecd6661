"""`python manage.py runworker --dial PEERID`: a worker node.

Overrides Channels' own runworker: this one joins the cluster and executes
WebAssembly modules the gateway assigns."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import capnp
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cluster_app import lifetime, state_lock
from cluster_app.cli import add_cluster_options, cluster_key, configure_logging
from cluster_app.identity import (
    Identity,
    InvalidIdentityFile,
    InvalidPeerID,
    public_key_from_peer_id,
)
from cluster_app.multiaddr import MultiaddrError, parse_multiaddr, parse_multiaddrs
from workers.agent import WorkerAgent
from workers.config import WorkerConfig
from workers.executor import Executor
from workers.routing_options import BadRoutingOption, parse_labels, parse_queues

log = logging.getLogger("ww.worker")

# SIGHUP is what closing the terminal sends: a graceful stop, like the others.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

NO_TRUST_ANCHOR = (
    "runworker needs to know whom it joins: give --dial PEERID (the gateway's peer ID, "
    "which the gateway must prove over TLS), or a cluster key with --cluster-key-file FILE "
    "(env WW_CLUSTER_KEY_FILE), or both. Without either, any host answering surveys "
    "(or listening at --addr) could pose as the gateway and be handed this worker."
)


class Command(BaseCommand):
    help = "Run a worker: find the gateway, offer this node to it, execute assigned modules."

    def add_arguments(self, parser: Any) -> None:
        add_cluster_options(parser)
        parser.add_argument(
            "--dial",
            default=settings.WW_WORKERS.dial,
            help="peer ID of the gateway to join (env WW_DIAL)",
        )
        parser.add_argument(
            "--addr",
            default=settings.WW_WORKERS.addr,
            help="static bootstrap multiaddrs; skips discovery (env WW_ADDR)",
        )
        parser.add_argument(
            "--concurrency",
            type=int,
            default=os.cpu_count() or 1,
            help="modules run at once (default: CPU count, %(default)s)",
        )
        parser.add_argument(
            "--labels",
            default="",
            help="labels this worker has, k=v,k=v: runs whose constraints ask for labels "
            "go only to workers having them all (default: none)",
        )
        parser.add_argument(
            "--queues",
            default="default",
            help="queues this worker serves, a,b: a run goes only to a worker serving its "
            "task's queue (default: %(default)s)",
        )
        parser.add_argument(
            "--grace",
            type=float,
            default=settings.WW_WORKERS.stop_grace,
            help="on SIGTERM/Ctrl-C, seconds to finish runs in flight (default %(default)s)",
        )
        parser.add_argument(
            "--identity-file",
            default="",
            help="keep this worker's key in FILE, so its peer ID survives restarts "
            "(default: a new key and peer ID at each start)",
        )
        parser.add_argument(
            "--parent-pid",
            type=int,
            default=0,
            help="stop when the process with this pid exits (runcluster passes its own)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["log_level"])
        if options["parent_pid"]:
            lifetime.stop_with_parent(options["parent_pid"], grace=options["grace"] + 15)
        dial = options["dial"].strip() or None
        if dial is not None:
            try:
                public_key_from_peer_id(dial)
            except InvalidPeerID as exc:
                raise CommandError(f"--dial: {exc}") from None
        key = cluster_key(options)
        # A static --addr does not help: TLS there proves only that the peer
        # holds *some* key, and without --dial any key is accepted.
        if dial is None and key is None:
            raise CommandError(NO_TRUST_ANCHOR)
        try:
            addrs = tuple(parse_multiaddrs(options["addr"])) if options["addr"] else ()
            discover = parse_multiaddr(options["discover"])
        except MultiaddrError as exc:
            raise CommandError(str(exc)) from None
        if options["concurrency"] < 1:
            raise CommandError("--concurrency must be at least 1")
        try:
            labels = parse_labels(options["labels"])
            queues = parse_queues(options["queues"])
        except BadRoutingOption as exc:
            raise CommandError(str(exc)) from None
        identity, lock = _identity(options["identity_file"])
        sys.stdout.write(f"worker {identity.peer_id}\n")
        sys.stdout.flush()
        config = WorkerConfig(
            identity=identity,
            namespace=options["ns"],
            dial=dial,
            addrs=addrs,
            discover=discover,
            concurrency=options["concurrency"],
            labels=labels,
            queues=tuple(queues),
            ping_interval=settings.WW_CLUSTER.ping_interval,
            ping_timeout=settings.WW_CLUSTER.ping_timeout,
            stop_grace=options["grace"],
            cluster_key=key,
        )
        # Run threads and the RPC loop share the GIL; a run thread that wants
        # it back waits at most this long (Python's default, 5 ms, would make
        # back-to-back short runs late whenever the loop is busy).
        sys.setswitchinterval(0.0005)
        # Every run allocates a few hundred short-lived objects; with Python's
        # default thresholds the cyclic collector runs every few runs and now
        # and then walks the whole heap (milliseconds in the middle of a burst
        # of short runs). Long-lived start-up objects are frozen out of its way.
        gc.freeze()
        gc.set_threshold(50_000, 50, 100)
        asyncio.run(_main(config))
        if lock is not None:
            lock.release()


def _identity(path: str) -> tuple[Identity, state_lock.ProcessLock | None]:
    """A fresh identity, or the one kept at `path`, locked: two workers with
    one key would be one peer ID to the gateway."""
    if not path:
        return Identity.generate(), None
    try:
        lock = state_lock.acquire(Path(f"{path}.lock"), what=f"worker identity file {path}")
        return Identity.load_or_create(Path(path)), lock
    except (state_lock.LockHeld, InvalidIdentityFile) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"--identity-file {path}: {exc.strerror}") from None


async def _main(config: WorkerConfig) -> None:
    # The one place the executor's options are taken from the settings.
    executor = Executor(
        concurrency=config.concurrency,
        memory_limit=settings.WW_WORKERS.run_memory_bytes,
        output_limit=settings.WW_WORKERS.run_output_bytes,
        result_limit=settings.WW_CLUSTER.result_max_bytes,
        compile_memory_limit=settings.WW_TASKS.module_compile_bytes,
        default_time_limit=settings.WW_TASKS.default_duration,
    )
    loop = asyncio.get_running_loop()
    try:
        async with capnp.kj_loop():
            agent = WorkerAgent(config, executor)
            task = asyncio.create_task(agent.run(), name="worker-agent")

            def on_signal(sig: int) -> None:
                if agent.stopping:
                    log.warning("second %s: stopping now", signal.Signals(sig).name)
                    executor.cancel_all()
                    task.cancel()
                else:
                    log.info(
                        "%s: stopping gracefully (again to stop now)", signal.Signals(sig).name
                    )
                    agent.request_stop()

            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, on_signal, sig)
            await asyncio.gather(task, return_exceptions=True)
            if not task.cancelled() and task.exception() is not None:
                log.error("worker failed", exc_info=task.exception())
    finally:
        executor.cancel_all()
        executor.close()
    log.info("worker %s stopped", config.identity.peer_id)
