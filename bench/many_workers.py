"""Many worker connections from one process (for the fairness measure).

Each connection dials the gateway (static bootstrap, TLS, signed join
challenge, open cluster: no cluster key), takes the sending end
of its `workers` channel and offers its own Worker capability, with its own
peer ID and concurrency 1 (workers/server.py's WorkerServer). All of them
share one wasmtime Executor. Prints `ready N` once all have joined; runs
until SIGTERM/SIGINT, then closes every connection before leaving the KJ loop.

    python bench/many_workers.py --addr /ip4/127.0.0.1/tcp/PORT --dial PEERID --n 100
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")

import django

django.setup()

import capnp  # noqa: E402

from cluster_app.channel import WORKERS_CHANNEL  # noqa: E402
from cluster_app.identity import Identity  # noqa: E402
from cluster_app.multiaddr import parse_multiaddr  # noqa: E402
from cluster_app.rpc import ClientConnection  # noqa: E402
from cluster_app.tls import TlsConfig, join_message  # noqa: E402
from workers.executor import Executor  # noqa: E402
from workers.fetch import ModuleFetcher  # noqa: E402
from workers.server import WorkerServer  # noqa: E402
from workers.session import fetch_module  # noqa: E402


async def main(args: argparse.Namespace) -> None:
    addr = parse_multiaddr(args.addr)
    executor = Executor(concurrency=args.threads)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    connections: list[ClientConnection] = []
    servers: list[WorkerServer] = []
    try:
        async with capnp.kj_loop():
            try:
                for _ in range(args.n):
                    # What workers/session.py does per connection: TLS with our own
                    # identity, the gateway proves its peer ID, we sign its nonce.
                    identity = Identity.generate()
                    conn = await ClientConnection.dial(
                        addr, tls=TlsConfig(identity, None), expect_peer=args.dial
                    )
                    connections.append(conn)
                    host = conn.host
                    nonce = bytes((await host.challenge()).nonce)
                    signature = identity.sign(join_message(conn.peer_id, nonce))
                    await host.authenticate(peer=identity.peer_id, signature=signature)
                    sender = (await host.channel(WORKERS_CHANNEL)).sender
                    server = WorkerServer(
                        executor,
                        peer_id=identity.peer_id,
                        concurrency=1,
                        modules=ModuleFetcher(functools.partial(fetch_module, host)),
                    )
                    servers.append(server)
                    await sender.send(value={"worker": server})
                    del sender, host
                print(f"ready {len(connections)}", flush=True)
                await asyncio.wait_for(stop.wait(), args.max_seconds)
            except TimeoutError:
                pass
            finally:
                for conn in connections:
                    conn.close()
                connections.clear()
                servers.clear()
                await asyncio.sleep(0.1)
    finally:
        executor.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--dial", required=True)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-seconds", type=float, default=900)
    asyncio.run(main(parser.parse_args()))
