"""The Worker capability: what the gateway calls on this worker.

It turns the gateway's jobs (Cap'n Proto structs, wire names) into
:class:`~workers.runs.RunRequest` for the executor, fetching a module's bytes
from the gateway the first time a job names it, and the executor's outcomes
back into Outcome structs. Its methods are those of ``schema/worker.capnp``.
"""

from __future__ import annotations

import logging
from typing import Any

import schema
from cluster_app.wire_states import WIRE_STATES
from tasks_app.modules import module_hash
from workers.execution_log import ExecutionLog
from workers.executor import Executor
from workers.fetch import ModuleFetcher, ModuleUnavailable
from workers.runs import RunOutcome, RunRequest

log = logging.getLogger("ww.worker")


def run_key(task_id: str, iteration: int) -> str:
    return f"{task_id}#{iteration}"


class WorkerServer(schema.worker.Worker.Server):
    def __init__(
        self,
        executor: Executor,
        *,
        peer_id: str,
        concurrency: int,
        labels: dict[str, str] | None = None,
        queues: tuple[str, ...] = ("default",),
        modules: ModuleFetcher | None = None,
        execution_log: ExecutionLog | None = None,
    ) -> None:
        self._executor = executor
        self._peer_id = peer_id
        self._concurrency = concurrency
        self._labels = dict(labels or {})
        self._queues = queues
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
        labels = _context.results.info.init("labels", len(self._labels))
        for i, (key, value) in enumerate(self._labels.items()):
            labels[i].key, labels[i].value = key, value
        queues = _context.results.info.init("queues", len(self._queues))
        for i, queue in enumerate(self._queues):
            queues[i] = queue

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
            args=tuple(str(arg) for arg in job.args) if job.hasArgs else None,
            stdin=bytes(job.stdin),
            env=tuple((str(var.name), str(var.value)) for var in job.env),
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
    result.state = WIRE_STATES[outcome.state]
    result.result = outcome.result
    result.error = outcome.error
    result.hasExitCode = outcome.exit_code is not None
    result.exitCode = outcome.exit_code or 0
    result.startedAtNs = int(outcome.started_at * 1e9)
    result.finishedAtNs = int(outcome.finished_at * 1e9)
    if outcome.result_bytes:
        result.resultBytes = outcome.result_bytes
    result.resultTruncated = outcome.result_truncated
    if outcome.stderr:
        result.stderr = outcome.stderr
    if outcome.compile_cached is not None:
        result.compileCache = "hit" if outcome.compile_cached else "miss"
