"""A hostile cluster member, as a real process: it joins a gateway the way a
worker does (TLS, a proven key, its Worker capability into the channel) and
then lies. Run: python tests/hostile/rogue_worker.py ADDR PEER MODE.

Modes:
  forge     claims concurrency 2**32 - 1 and answers every run "forged-by-rogue"
  garbage   answers every run with a result that is not UTF-8
  huge      answers every run with an 8 MB result
  huge_stderr   answers every run with an 8 MB stderr
  huge_bytes    answers every run with an 8 MB binary result (resultBytes)
  silent    takes every run and never answers
  labels    offers 10**6 labels (then answers runs "forged-by-rogue")
  queues    offers 10**6 queues (idem)
  long_label  offers one label with a 1 MB value (idem)
  fetch     asks for modules: one it was never sent, then 200 at once of one
            it was sent (prints what it got)

It prints "rogue joined" each time it is in the pool and "rogue
disconnected" when the gateway closes its connection, then joins again."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")

import capnp

import schema
from cluster_app.channel import WORKERS_CHANNEL
from cluster_app.identity import Identity
from cluster_app.multiaddr import parse_multiaddr
from cluster_app.rpc import ClientConnection
from cluster_app.tls import TlsConfig, join_message

NOW_NS = 1_800_000_000 * 10**9


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Rogue(schema.worker.Worker.Server):
    def __init__(self, mode: str, peer_id: str, host: Any) -> None:
        self.mode = mode
        self.peer_id = peer_id
        self.host = host
        self.fetched = False

    async def info(self, _context: Any, **kw: Any) -> None:
        _context.results.info.peer = self.peer_id
        _context.results.info.concurrency = 2**32 - 1 if self.mode == "forge" else 2
        if self.mode == "labels":
            labels = _context.results.info.init("labels", 10**6)
            for label in labels:
                label.key, label.value = "k", "v"
        elif self.mode == "queues":
            queues = _context.results.info.init("queues", 10**6)
            for i in range(10**6):
                queues[i] = "default"
        elif self.mode == "long_label":
            labels = _context.results.info.init("labels", 1)
            labels[0].key, labels[0].value = "gpu", "v" * (1 << 20)

    async def ping(self, _context: Any, **kw: Any) -> None:
        return None

    async def cancel(self, taskId: str, iteration: int, _context: Any, **kw: Any) -> bool:
        return False

    async def execute(self, job: Any, _context: Any, **kw: Any) -> None:
        await self._lie(job, _context.results.outcome)

    async def executeMany(self, jobs: Any, _context: Any, **kw: Any) -> None:
        jobs = list(jobs)
        outcomes = _context.results.init("outcomes", len(jobs))
        for i, job in enumerate(jobs):
            await self._lie(job, outcomes[i])

    async def _lie(self, job: Any, outcome: Any) -> None:
        if self.mode == "silent":
            say("rogue holds a run")
            await asyncio.Event().wait()
        if self.mode == "fetch" and not self.fetched:
            self.fetched = True
            await self._fetch(str(job.moduleHash))
        outcome.state = "succeeded"
        outcome.startedAtNs = NOW_NS
        outcome.finishedAtNs = NOW_NS + 1000
        if self.mode == "garbage":
            outcome.result = b"\xff\xfe\xfd not text"
        elif self.mode == "huge":
            outcome.result = "9" * (8 * 1024 * 1024)
        elif self.mode == "huge_stderr":
            # Taken, this answer would show: the runs' results are the honest 2832.
            outcome.result = "forged-by-rogue"
            outcome.stderr = "e" * (8 * 1024 * 1024)
        elif self.mode == "huge_bytes":
            outcome.resultBytes = b"\xff" * (8 * 1024 * 1024)
        else:
            outcome.result = "forged-by-rogue"

    async def _fetch(self, given: str) -> None:
        async def ask(digest: str) -> str:
            try:
                wasm = bytes((await self.host.module(digest)).wasm)
            except capnp.KjException as exc:
                return "refused: " + " ".join(str(exc).split())[-300:]
            return f"got {len(wasm)} bytes"

        say("never sent: " + await ask("ab" * 32))
        answers = await asyncio.gather(*(ask(given) for _ in range(200)))
        got = sum(answer.startswith("got") for answer in answers)
        say(f"200 at once: {got} answered")


async def session(addr: str, peer: str, mode: str, identity: Identity) -> None:
    connection = await ClientConnection.dial(
        parse_multiaddr(addr), tls=TlsConfig(identity, None), expect_peer=peer
    )
    try:
        host = connection.host
        nonce = bytes((await host.challenge()).nonce)
        await host.authenticate(
            peer=identity.peer_id, signature=identity.sign(join_message(peer, nonce))
        )
        sender = (await host.channel(WORKERS_CHANNEL)).sender
        await sender.send(value={"worker": Rogue(mode, identity.peer_id, host)})
        say("rogue joined")
        await connection.wait_closed()
    finally:
        connection.close()
    say("rogue disconnected")


async def main(addr: str, peer: str, mode: str) -> None:
    identity = Identity.generate()
    say(f"rogue {identity.peer_id}")
    async with capnp.kj_loop():
        while True:
            try:
                await session(addr, peer, mode, identity)
            except Exception as exc:  # noqa: BLE001 - a rogue tries again
                say(f"rogue session ended: {type(exc).__name__}: {exc}")
            await asyncio.sleep(0.5)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
