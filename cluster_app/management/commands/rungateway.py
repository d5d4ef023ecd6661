"""`python manage.py rungateway`: the gateway node.

One process: daphne serves the ASGI app (REST, admin) and, on the same
event loop, a Channels worker runs the GatewayConsumer, which hosts the
Cap'n Proto listener, the channel loop, discovery answers and the scheduler.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import daphne.server  # noqa: F401 - installs Twisted's asyncio reactor first
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from cluster_app import lifetime, state_lock
from cluster_app.cli import add_cluster_options, cluster_key, configure_logging
from cluster_app.identity import Identity, InvalidIdentityFile
from cluster_app.multiaddr import Multiaddr, MultiaddrError, parse_multiaddr
from cluster_app.port_check import PortInUse, ensure_free

if TYPE_CHECKING:
    from cluster_app.gateway import GatewayConfig

log = logging.getLogger("ww.gateway")

# SIGHUP is what closing the terminal sends: a graceful stop, like the others.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# After the parent given by --parent-pid is gone: a graceful stop takes at
# most ~30 s (the consumer's stop), then the process ends regardless.
PARENT_GONE_GRACE = 45.0


def state_lock_path() -> Path:
    """The lock a gateway holds on its state directory (SQLite, identity key)."""
    return settings.WW_CLUSTER.state_dir / "gateway.lock"


def gateway_config(
    *,
    identity: Identity,
    namespace: str,
    listen: Multiaddr,
    discover: Multiaddr | None,
    cluster_key: bytes | None,
) -> GatewayConfig:
    """The node's config: the command's options, and the settings objects as
    read (the scheduler's options are taken from them in GatewayNode)."""
    from cluster_app.gateway import GatewayConfig

    return GatewayConfig(
        identity=identity,
        namespace=namespace,
        listen=listen,
        discover=discover,
        cluster_key=cluster_key,
        tasks=settings.WW_TASKS,
        cluster=settings.WW_CLUSTER,
    )


class Command(BaseCommand):
    help = "Run the gateway: REST API and admin over HTTP, the RPC channel and the scheduler."

    def add_arguments(self, parser: Any) -> None:
        add_cluster_options(parser)
        parser.add_argument(
            "--http",
            default=settings.WW_TASKS.http,
            help="HTTP address to serve on, host:port (default %(default)s; env WW_HTTP)",
        )
        parser.add_argument(
            "--identity-file",
            default=str(settings.WW_CLUSTER.gateway_identity_file),
            help="where the gateway's key is kept (default %(default)s; env WW_IDENTITY_FILE)",
        )
        parser.add_argument(
            "--no-discovery",
            action="store_true",
            help="do not answer multicast surveys (workers then need --addr)",
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
            lifetime.stop_with_parent(options["parent_pid"], grace=PARENT_GONE_GRACE)
        try:
            listen = parse_multiaddr(options["listen"])
            discover = None if options["no_discovery"] else parse_multiaddr(options["discover"])
        except MultiaddrError as exc:
            raise CommandError(str(exc)) from None
        host, _, port = options["http"].rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"--http must be host:port, not {options['http']!r}")
        from tasks_app.api.permissions import set_http_bind

        set_http_bind(host)  # WW_WRITES_NEED_AUTH=auto: anonymous writes on loopback only
        # Before anything is printed: a second gateway on this state directory
        # or this port must fail here, not after it has shown a peer ID.
        try:
            lock = state_lock.acquire(
                state_lock_path(), what=f"state directory {settings.WW_CLUSTER.state_dir}"
            )
            ensure_free(host, int(port), what="HTTP address")
            if listen.port:
                ensure_free(listen.ip, listen.port, what="RPC address")
            identity = Identity.load_or_create(options["identity_file"])
        except (state_lock.LockHeld, PortInUse, InvalidIdentityFile) as exc:
            raise CommandError(str(exc)) from None
        # The peer ID alone on a line, first, so scripts can read it.
        sys.stdout.write(identity.peer_id + "\n")
        sys.stdout.flush()

        from cluster_app.gateway_process import GatewayProcess

        config = gateway_config(
            identity=identity,
            namespace=options["ns"],
            listen=listen,
            discover=discover,
            cluster_key=cluster_key(options),
        )
        # Request threads, the journal's thread and the event loop share the
        # GIL; the loop (dispatching runs, answering workers) waits at most
        # this long for it (Python's default, 5 ms, shows up as late runs and
        # slow round trips whenever a request is being served).
        sys.setswitchinterval(0.0005)
        process = GatewayProcess(
            config,
            http_host=host.strip("[]"),
            http_port=int(port),
            # The composition root (wwproject) builds the ASGI application;
            # named by a setting, so this command does not import it.
            app_factory=import_string(settings.ASGI_APPLICATION_FACTORY),
        )
        code = process.run(signals=STOP_SIGNALS)
        lock.release()
        if code:
            raise SystemExit(code)
