"""The worker node: serves gateways one session after another until stopped.

Each session (``workers.session``) finds the gateway, offers this worker's
capability (``workers.server``) and serves it; when the gateway goes away the
agent starts over after a backoff (``workers.backoff``). A stop while joined
drains the runs in flight; a stop while still looking leaves at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings

from workers.backoff import LONG_SESSION, reconnect_wait
from workers.config import WorkerConfig
from workers.execution_log import ExecutionLog
from workers.executor import Executor
from workers.session import GatewaySession, WrongPeer

log = logging.getLogger("ww.worker")


class WorkerAgent:
    def __init__(self, config: WorkerConfig, executor: Executor) -> None:
        self.config = config
        self.executor = executor
        self.peer_id = config.identity.peer_id
        self._execution_log = (
            ExecutionLog(settings.WW_WORKERS.execution_log, self.peer_id)
            if settings.WW_WORKERS.execution_log
            else None
        )
        self._stopping = asyncio.Event()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def request_stop(self) -> None:
        """Stop gracefully: take no new runs, finish those in flight (within
        the grace period), then leave."""
        self._stopping.set()

    async def run(self) -> None:
        """Serve gateways until stopped, reconnecting with backoff."""
        wait: float | None = None
        lost_at = time.monotonic()  # since when no session has lasted
        while not self._stopping.is_set():
            started = time.monotonic()
            session = GatewaySession(
                self.config,
                self.executor,
                stopping=self._stopping,
                execution_log=self._execution_log,
            )
            serving = asyncio.create_task(session.run(), name="worker-session")
            stop = asyncio.create_task(self._stopping.wait())
            try:
                await asyncio.wait({serving, stop}, return_when=asyncio.FIRST_COMPLETED)
                if not serving.done() and not session.joined:
                    serving.cancel()  # stopped while still looking for the gateway
                await serving  # a joined session drains by itself when stopping
            except asyncio.CancelledError:
                # A hard stop: no draining.
                serving.cancel()
                await asyncio.gather(serving, return_exceptions=True)
                raise
            except WrongPeer as exc:
                log.error("%s", exc)
            except Exception as exc:  # noqa: BLE001 - any failure: start over
                log.warning("gateway connection ended: %s", _first_line(exc))
            finally:
                stop.cancel()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            if now - started > LONG_SESSION:
                lost_at = now
            wait = reconnect_wait(
                wait, now - started, lost_for=now - lost_at, maximum=self.config.max_backoff
            )
            log.info("reconnecting in %.2f s", wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
