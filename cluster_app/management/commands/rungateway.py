"""`python manage.py rungateway`: the gateway node.

One process: daphne serves the ASGI app (REST, admin) and, on the same
event loop, a Channels worker runs the GatewayConsumer, which hosts the
Cap'n Proto listener, the channel loop, discovery answers and the scheduler.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import daphne.server  # noqa: F401 - installs Twisted's asyncio reactor first
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from cluster_app.identity import Identity
from cluster_app.multiaddr import MultiaddrError, parse_multiaddr
from wwproject.cli import add_cluster_options, cluster_key, configure_logging

log = logging.getLogger("ww.gateway")


class Command(BaseCommand):
    help = "Run the gateway: REST API and admin over HTTP, the RPC channel and the scheduler."

    def add_arguments(self, parser: Any) -> None:
        add_cluster_options(parser)
        parser.add_argument(
            "--http",
            default=settings.WW_HTTP,
            help="HTTP address to serve on, host:port (default %(default)s; env WW_HTTP)",
        )
        parser.add_argument(
            "--identity-file",
            default=str(settings.WW_IDENTITY_FILE),
            help="where the gateway's key is kept (default %(default)s)",
        )
        parser.add_argument(
            "--no-discovery",
            action="store_true",
            help="do not answer multicast surveys (workers then need --addr)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["log_level"])
        try:
            listen = parse_multiaddr(options["listen"])
            discover = None if options["no_discovery"] else parse_multiaddr(options["discover"])
        except MultiaddrError as exc:
            raise CommandError(str(exc)) from None
        host, _, port = options["http"].rpartition(":")
        if not host or not port.isdigit():
            raise CommandError(f"--http must be host:port, not {options['http']!r}")
        from tasks_app.api.permissions import publish_http_bind

        publish_http_bind(host)  # WW_WRITES_NEED_AUTH=auto: anonymous writes on loopback only
        identity = Identity.load_or_create(options["identity_file"])
        # The peer ID alone on a line, first, so scripts can read it.
        sys.stdout.write(identity.peer_id + "\n")
        sys.stdout.flush()

        from cluster_app.gateway import GatewayConfig
        from cluster_app.gateway_process import GatewayProcess

        config = GatewayConfig(
            identity=identity,
            namespace=options["ns"],
            listen=listen,
            discover=discover,
            max_attempts=settings.WW_MAX_ATTEMPTS,
            default_duration=settings.WW_DEFAULT_DURATION,
            ping_interval=settings.WW_PING_INTERVAL,
            ping_timeout=settings.WW_PING_TIMEOUT,
            cluster_key=cluster_key(options),
            sweep_interval=settings.WW_SWEEP_INTERVAL,
            prefetch=settings.WW_PREFETCH,
            prefetch_below=settings.WW_PREFETCH_BELOW,
            batch=settings.WW_BATCH,
            batch_seconds=settings.WW_BATCH_SECONDS,
            send_ahead=settings.WW_SEND_AHEAD,
        )
        # Request threads, the journal's thread and the event loop share the
        # GIL; the loop (dispatching runs, answering workers) waits at most
        # this long for it (Python's default, 5 ms, shows up as late runs and
        # slow round trips whenever a request is being served).
        sys.setswitchinterval(0.0005)
        process = GatewayProcess(config, http_host=host.strip("[]"), http_port=int(port))
        code = process.run(signals=(signal.SIGINT, signal.SIGTERM))
        if code:
            raise SystemExit(code)
