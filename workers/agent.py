"""The worker node: finds the gateway, offers its Worker capability into
the gateway's channel, runs what it is assigned, and starts over when the
gateway goes away."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import ssl
import sys
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

import schema
from cluster_app.discovery import find_peer
from cluster_app.host import WORKERS_CHANNEL
from cluster_app.identity import Identity
from cluster_app.multiaddr import Multiaddr, MultiaddrError, parse_multiaddr
from cluster_app.rpc import ClientConnection
from cluster_app.tls import PeerAuthError, TlsConfig, join_message
from tasks_app.modules import module_hash
from workers.executor import Executor, RunOutcome, RunRequest
from workers.fetch import ModuleFetcher, ModuleUnavailable

log = logging.getLogger("ww.worker")

_STATES = {
    "succeeded": "succeeded",
    "failed": "failed",
    "timed_out": "timedOut",
    "cancelled": "cancelled",
}


def run_key(task_id: str, iteration: int) -> str:
    return f"{task_id}#{iteration}"


class ExecutionLog:
    """What this worker ran, for checking it against what the gateway
    recorded (tests/faults/harness.py): one JSON object per finished run,
    appended to the file WW_EXECUTION_LOG names (off when empty). Each batch
    is one write() on an O_APPEND descriptor before the results are answered,
    so a run the gateway hears of is in the file even if the worker is then
    killed, and workers sharing one file do not interleave lines."""

    def __init__(self, path: str, peer_id: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._peer_id = peer_id

    def record(self, requests: list[RunRequest], outcomes: list[RunOutcome]) -> None:
        lines = []
        for request, outcome in zip(requests, outcomes, strict=True):
            task_id, _, iteration = request.run_key.rpartition("#")
            if not task_id:
                continue  # `assign`: not a scheduled run
            entry = {
                "task": task_id,
                "run": int(iteration),
                "worker": self._peer_id,
                "state": outcome.state,
                "started": outcome.started_at,
                "finished": outcome.finished_at,
                "error": outcome.error[:200],
            }
            lines.append(json.dumps(entry, separators=(",", ":")) + "\n")
        if lines:
            os.write(self._fd, "".join(lines).encode())


class WrongPeer(Exception):
    """The gateway we reached is not the one we were told to dial."""


class WorkerServer(schema.worker.Worker.Server):
    """The Worker capability: what the gateway calls."""

    def __init__(
        self,
        executor: Executor,
        *,
        peer_id: str,
        concurrency: int,
        modules: ModuleFetcher | None = None,
        execution_log: ExecutionLog | None = None,
    ) -> None:
        self._executor = executor
        self._peer_id = peer_id
        self._concurrency = concurrency
        self._modules = modules
        self._execution_log = execution_log
        self.in_flight = 0

    async def assign(
        self, wasm: bytes, input: int, difficulty: int, _context: Any, **kw: Any
    ) -> str:
        wasm = bytes(wasm)
        request = RunRequest(
            task_id="assign",
            module_hash=module_hash(wasm),
            wasm=wasm,
            input=input,
            difficulty=difficulty,
            time_limit=0,
        )
        [outcome] = await self._run([request])
        return outcome.result if outcome.state == "succeeded" else f"error: {outcome.error}"

    async def info(self, _context: Any, **kw: Any) -> None:
        _context.results.info.peer = self._peer_id
        _context.results.info.concurrency = self._concurrency

    async def execute(self, job: Any, _context: Any, **kw: Any) -> None:
        [outcome] = await self._run([await self._request(job)])
        _fill(_context.results.outcome, outcome)

    async def executeMany(self, jobs: Any, _context: Any, **kw: Any) -> None:
        requests = [await self._request(job) for job in jobs]
        outcomes = await self._run(requests)
        results = _context.results.init("outcomes", len(outcomes))
        for i, outcome in enumerate(outcomes):
            _fill(results[i], outcome)

    async def _request(self, job: Any) -> RunRequest:
        digest = str(job.moduleHash)
        wasm = bytes(job.wasm)
        if not wasm and self._modules is not None and not self._executor.has_module(digest):
            # A module that cannot be fetched fails the call, not the runs: the
            # gateway counts their attempts lost and tries them again.
            try:
                wasm = await self._modules.get(digest)
            except ModuleUnavailable as exc:
                log.warning("%s", exc)
                raise
        return RunRequest(
            task_id=str(job.taskId),
            module_hash=digest,
            wasm=wasm,
            input=int(job.input),
            difficulty=int(job.difficulty),
            time_limit=job.timeLimitMs / 1000.0,
            run_key=run_key(str(job.taskId), int(job.iteration)),
            not_before=job.notBeforeNs / 1e9,
        )

    async def ping(self, _context: Any, **kw: Any) -> None:
        return None

    async def cancel(self, taskId: str, iteration: int, _context: Any, **kw: Any) -> bool:
        found = self._executor.cancel(run_key(str(taskId), int(iteration)))
        log.info(
            "task %s#%d: cancel requested (%s)",
            taskId,
            iteration,
            "running" if found else "not here",
        )
        return found

    async def _run(self, requests: list[RunRequest]) -> list[RunOutcome]:
        self.in_flight += len(requests)
        try:
            outcomes = await self._executor.run_many(requests)
        finally:
            self.in_flight -= len(requests)
        if self._execution_log is not None:
            self._execution_log.record(requests, outcomes)
        for request, outcome in zip(requests, outcomes, strict=True):
            # One line per run is too many for a busy worker: failures at INFO only.
            (log.debug if outcome.state == "succeeded" else log.info)(
                "task %s: %s in %.3f s%s",
                request.task_id,
                outcome.state,
                outcome.finished_at - outcome.started_at,
                f" ({outcome.error})" if outcome.error else "",
            )
        return outcomes


def _fill(result: Any, outcome: RunOutcome) -> None:
    """An Outcome struct from what the executor says."""
    result.state = _STATES[outcome.state]
    result.result = outcome.result
    result.error = outcome.error
    result.hasExitCode = outcome.exit_code is not None
    result.exitCode = outcome.exit_code or 0
    result.startedAtNs = int(outcome.started_at * 1e9)
    result.finishedAtNs = int(outcome.finished_at * 1e9)


@dataclass(frozen=True)
class WorkerConfig:
    identity: Identity
    namespace: str
    dial: str | None  # the gateway's peer ID; None: the first gateway found
    addrs: tuple[Multiaddr, ...]  # static bootstrap; empty: discover by multicast
    discover: Multiaddr
    concurrency: int
    survey_interval: float = 0.25
    ping_interval: float = 2.0
    ping_timeout: float = 5.0
    max_backoff: float = 5.0
    stop_grace: float = 30.0
    cluster_key: bytes | None = None


class WorkerAgent:
    def __init__(self, config: WorkerConfig, executor: Executor) -> None:
        self.config = config
        self.executor = executor
        self.peer_id = config.identity.peer_id
        self._execution_log = (
            ExecutionLog(settings.WW_EXECUTION_LOG, self.peer_id)
            if settings.WW_EXECUTION_LOG
            else None
        )
        self._stopping = asyncio.Event()
        self._joined = False

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Stop gracefully: take no new runs, finish those in flight (within
        the grace period), then leave."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve gateways until stopped, reconnecting with backoff."""
        backoff = 0.25
        while not self._stopping.is_set():
            started = time.monotonic()
            session = asyncio.create_task(self._session(), name="worker-session")
            stop = asyncio.create_task(self._stopping.wait())
            try:
                await asyncio.wait({session, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not session.done() and not self._joined:
                    session.cancel()  # stopped while still looking for the gateway
                await session  # a joined session drains by itself when stopping
            except asyncio.CancelledError:
                # A hard stop: no draining.
                session.cancel()
                await asyncio.gather(session, return_exceptions=True)
                raise
            except WrongPeer as exc:
                log.error("%s", exc)
            except Exception as exc:  # noqa: BLE001 - any failure: start over
                log.warning("gateway connection ended: %s", _first_line(exc))
            finally:
                stop.cancel()
            if self._stopping.is_set():
                return
            if time.monotonic() - started > 10:
                backoff = 0.25  # that session went well; retry quickly
            log.info("reconnecting in %.2f s", backoff)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), backoff)
            backoff = min(backoff * 2, self.config.max_backoff)

    async def _session(self) -> None:
        connection = await self._connect()
        try:
            await self._offer_and_serve(connection)
        finally:
            self._joined = False
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
            modules=ModuleFetcher(functools.partial(fetch_module, host)),
            execution_log=self._execution_log,
        )
        # Synchronous channel: this returns once the gateway has taken us.
        await sender.send(value={"worker": server})
        self._joined = True
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


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
