"""``manage.py casm_ls``: print every boot packet heard on the discovery group."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cluster_app.multiaddr import Multiaddr, MultiaddrError, parse_multiaddr
from cluster_app.multicast import MulticastSocket
from cluster_app.packet import PacketError, Response, Survey, decode, now_ms, packet_type
from cluster_app.replay import ReplayGuard


def format_packet(
    elapsed: float,
    data: bytes,
    namespace: str | None = None,
    replay: ReplayGuard | None = None,
    now: int | None = None,
) -> str | None:
    """The casm-style report of one datagram, or None if it is in another namespace.

    With ``replay``, a packet that is stale, from the future or a replay of an
    earlier one is reported as invalid, like one that does not verify.
    """
    header = f"[{int(elapsed):04d}] Got multicast packet ({len(data)} byte)\n"
    try:
        packet = decode(data)
    except PacketError as exc:
        return f"{header}  invalid:   {exc}\n\n"
    if namespace is not None and packet.namespace != namespace:
        return None
    if replay is not None:
        clock = now if now is not None else now_ms()
        rejected = replay.check(packet.body.peer, packet.stamp_ms, clock)
        if rejected is not None:
            return f"{header}  invalid:   {rejected}\n\n"
    body = packet.body
    lines = [
        header,
        f"  type:      {packet_type(packet)}\n",
        f"  namespace: {packet.namespace}\n",
        f"  size:      {len(data)} bytes\n",
        f"  peer:      {body.peer}\n",
    ]
    if isinstance(body, Response):
        lines.append(f"  addrs:     {', '.join(body.addrs) if body.addrs else '(none)'}\n")
    if isinstance(body, Survey):
        lines.append(f"  distance:   {body.distance}\n")
    lines.append("\n")
    return "".join(lines)


class Command(BaseCommand):
    help = "Join the discovery multicast group and print every boot packet heard."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--discover",
            default=None,
            help="multicast group multiaddr (default: WW_DISCOVER, "
            f"currently {settings.WW_CLUSTER.discover})",
        )
        parser.add_argument(
            "--ns", default=None, help="only show packets of this namespace (default: all)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        text = options["discover"] or settings.WW_CLUSTER.discover
        try:
            group = parse_multiaddr(text)
        except MultiaddrError as exc:
            raise CommandError(f"--discover {text!r}: {exc}") from None
        if not group.is_multicast:
            raise CommandError(f"--discover {text!r} is not a /multicast/IFACE multiaddr")
        try:
            asyncio.run(self._listen(group, options["ns"]))
        except BrokenPipeError:
            pass  # the reader went away (e.g. `| head`): nothing left to do
        except OSError as exc:
            raise CommandError(f"cannot listen on {group}: {exc}") from None

    async def _listen(self, group: Multiaddr, namespace: str | None) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with MulticastSocket(group) as sock:
                where = f" (namespace {namespace})" if namespace else ""
                self.stderr.write(f"listening on {group}{where}")
                self.stderr.flush()
                printer = asyncio.create_task(self._print_packets(sock, namespace, started))
                stopper = asyncio.create_task(stop.wait())
                try:
                    await asyncio.wait({printer, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in (printer, stopper):
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)

    async def _print_packets(
        self, sock: MulticastSocket, namespace: str | None, started: float
    ) -> None:
        loop = asyncio.get_running_loop()
        replay = ReplayGuard()
        while True:
            data, _sender = await sock.recv()
            report = format_packet(loop.time() - started, data, namespace, replay)
            if report is not None:
                self.stdout.write(report, ending="")
                self.stdout.flush()
