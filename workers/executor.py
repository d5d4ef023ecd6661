"""Runs WebAssembly modules on the worker: where each run goes, and its lifecycle.

Runs go to a thread pool: wasmtime releases the GIL while wasm executes, so
runs in different threads use different cores. Several runs of one call are
dealt to lanes, one per slot, and a lone tiny run stays on the caller's
thread (``workers.placement`` decides both). Each run is carried out by
``workers.runner`` in a fresh, capped store (``workers.sandbox``) of a module
compiled once (``workers.compile_cache``); a run can be cancelled by its key
(``workers.active_runs``). Whatever the module does, ``execute`` returns a
:class:`RunOutcome`; it never raises for the module's faults.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Self

import wasmtime

from cluster_app.conf import ClusterSettings
from tasks_app.bounded_compile import Compiler
from tasks_app.compile_child import make_engine
from tasks_app.conf import TasksSettings
from tasks_app.run_control import RunControl
from tasks_app.run_times import RunTimes
from workers import placement
from workers.active_runs import ActiveRuns
from workers.compile_cache import CompileCache
from workers.conf import WorkerSettings
from workers.runner import Runner
from workers.runs import RunOutcome, RunRequest, time_limit
from workers.sandbox import EpochTicker
from workers.wasi_bounds import bound_blocking_calls

# Its callers speak of runs in these terms.
__all__ = ["Executor", "RunOutcome", "RunRequest"]


class Executor:
    def __init__(
        self,
        *,
        concurrency: int,
        # The settings' defaults (runworker passes each from the settings
        # objects; these serve tests and benches that build an executor alone).
        memory_limit: int = WorkerSettings.run_memory_bytes,
        output_limit: int = WorkerSettings.run_output_bytes,
        result_limit: int = ClusterSettings.result_max_bytes,
        default_time_limit: float = TasksSettings.default_duration,
        cache_size: int = 64,
        compile_memory_limit: int = TasksSettings.module_compile_bytes,
        compile_time_limit: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.default_time_limit = default_time_limit

        # Modules are compiled in a child with this very engine configuration
        # (epoch interruption, stack limit) and deserialized here.
        engine = make_engine("executor")
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        bound_blocking_calls(linker)
        self._compiler = Compiler("executor", memory_bytes=compile_memory_limit, keep=1)
        # Started now, so that a run's first module does not wait for a process start.
        self._compiler.warm()
        self._modules = CompileCache(
            engine, linker, self._compiler, size=cache_size, compile_time_limit=compile_time_limit
        )
        self._runner = Runner(
            engine,
            self._modules,
            memory_limit=memory_limit,
            output_limit=output_limit,
            result_limit=result_limit,
            default_time_limit=default_time_limit,
        )
        self._active = ActiveRuns()
        self._run_times = RunTimes()
        self.inline_count = 0

        self._ticker = EpochTicker(engine)
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ww-wasm")

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Wait for running modules, then stop the ticker. Idempotent."""
        # The pool goes first: a module still running needs the ticker to reach
        # its deadline, so stopping the ticker first could hang here forever.
        self._pool.shutdown(wait=True)
        self._ticker.close()
        self._compiler.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- module cache ------------------------------------------------------

    @property
    def compiled_count(self) -> int:
        """How many times a module was actually compiled (cache misses that succeeded)."""
        return self._modules.compiled_count

    def has_module(self, module_hash: str) -> bool:
        return module_hash in self._modules

    # -- running -----------------------------------------------------------

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run on the pool. Cancelling the caller interrupts the module too
        (when the request has a run_key)."""
        [outcome] = await self.run_many([request])
        return outcome

    async def run_many(self, requests: Sequence[RunRequest]) -> list[RunOutcome]:
        """Run several on the pool, spread over its threads: each thread
        takes its share one after another, in due order. Outcomes are in
        the order of `requests`."""
        if len(requests) == 1 and self._runs_inline(requests[0]):
            outcome = self._run_inline(requests[0])
            if outcome is not None:
                return [outcome]
        # Compiling is not part of how long a kind of run takes.
        cached = [self.has_module(request.module_hash) for request in requests]
        loop = asyncio.get_running_loop()
        # Registered from now, not from when a thread takes them: runs waiting
        # for a free thread can be cancelled too.
        controls = [RunControl() for _ in requests]
        for request, control in zip(requests, controls, strict=True):
            self._active.add(request.run_key, control)
        outcomes: list[RunOutcome | None] = [None] * len(requests)
        execute = self._runner.execute

        def lane(indexes: list[int]) -> None:
            for i in indexes:
                outcomes[i] = execute(requests[i], controls[i])

        lanes = placement.lanes([request.not_before for request in requests], self.concurrency)
        try:
            await asyncio.gather(*(loop.run_in_executor(self._pool, lane, k) for k in lanes))
        except asyncio.CancelledError:
            for control in controls:
                control.cancel()
            raise
        finally:
            for request, control in zip(requests, controls, strict=True):
                self._active.remove(request.run_key, control)
        for request, outcome, was_cached in zip(requests, outcomes, cached, strict=True):
            if outcome is not None and was_cached:
                self._learn(request, outcome)
        return [outcome for outcome in outcomes if outcome is not None]

    def execute(self, request: RunRequest) -> RunOutcome:
        """Run on the calling thread."""
        control = RunControl()
        self._active.add(request.run_key, control)
        try:
            return self._runner.execute(request, control)
        finally:
            self._active.remove(request.run_key, control)

    def cancel(self, run_key: str) -> bool:
        """Interrupt the run(s) named `run_key`; they end `cancelled` within
        a tick. False if no such run is executing."""
        return self._active.cancel(run_key)

    def cancel_all(self) -> int:
        """Interrupt every run that has a run_key; returns how many."""
        return self._active.cancel_all()

    # -- tiny runs on the caller's thread ----------------------------------

    def _runs_inline(self, request: RunRequest) -> bool:
        return placement.runs_inline(
            self._run_times.typical(placement.kind_of(request)),
            not_before=request.not_before,
            now=time.time(),
            cached=self.has_module(request.module_hash),
        )

    def _run_inline(self, request: RunRequest) -> RunOutcome | None:
        """Run on this thread within the inline budget; None if the run
        needed more (it is then to be run again on the pool)."""
        limit = time_limit(request.time_limit, self.default_time_limit)
        budget = placement.inline_budget(limit)
        outcome = self.execute(replace(request, time_limit=budget))
        if placement.ran_over_budget(outcome.state, budget, limit):
            self._run_times.forget(placement.kind_of(request))
            return None
        self.inline_count += 1
        self._learn(request, outcome)
        return outcome

    def _learn(self, request: RunRequest, outcome: RunOutcome) -> None:
        self._run_times.learn(placement.kind_of(request), outcome.finished_at - outcome.started_at)
