"""Runs WebAssembly modules on the worker: one fresh, capped store per run.

A run is bounded in time by epoch interruption (a ticker thread advances the
engine's epoch every ``TICK`` seconds and each store gets a deadline in ticks),
in memory by the store's limiter, and in stack by ``max_wasm_stack``. Runs go
to a thread pool: wasmtime releases the GIL while wasm executes, so runs in
different threads use different cores. Whatever the module does, ``execute``
returns a :class:`RunOutcome`; it never raises for the module's faults.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal, Self, TypeVar

import wasmtime

from workers.modules import (
    InvalidModule,
    ModuleKind,
    compile_module,
    inspect_compiled,
    module_hash,
)

logger = logging.getLogger("ww.executor")

RunState = Literal["succeeded", "failed", "timed_out"]
T = TypeVar("T")

TICK = 0.01  # seconds between epoch increments: the granularity of time limits
MAX_WASM_STACK = 1 << 20  # well under the 8 MiB default pthread stack of pool threads
TABLE_ELEMENTS_LIMIT = 100_000  # 8 bytes each
INSTANCES_LIMIT = 4
TABLES_LIMIT = 4
MEMORIES_LIMIT = 4
ERROR_LIMIT = 500  # characters of a trap message kept in RunOutcome.error
STDERR_TAIL = 1024  # last bytes of stderr kept in the error of a failed WASI command
TRUNCATED_MARKER = "…[truncated]"


@dataclass(frozen=True)
class RunRequest:
    task_id: str
    module_hash: str
    wasm: bytes  # may be b"" when the executor already has module_hash cached
    input: int
    difficulty: int
    time_limit: float  # seconds; <= 0 means the executor's default


@dataclass(frozen=True)
class RunOutcome:
    state: RunState
    result: str
    error: str
    exit_code: int | None
    started_at: float  # time.time() on the worker thread
    finished_at: float


@dataclass(frozen=True)
class _Compiled:
    kind: ModuleKind
    pre: wasmtime.InstancePre  # imports already resolved against WASI


class _RunFailed(Exception):
    """Internal: ends a run early; carries what goes into the outcome."""

    def __init__(
        self, error: str, state: RunState = "failed", result: str = "",
        exit_code: int | None = None,
    ) -> None:
        super().__init__(error)
        self.state: RunState = state
        self.error = error
        self.result = result
        self.exit_code = exit_code


class Executor:
    def __init__(
        self,
        *,
        concurrency: int,
        memory_limit: int = 256 * 1024 * 1024,
        output_limit: int = 64 * 1024,
        default_time_limit: float = 60.0,
        cache_size: int = 64,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.memory_limit = memory_limit
        self.output_limit = output_limit
        self.default_time_limit = default_time_limit
        self.cache_size = max(1, cache_size)

        config = wasmtime.Config()
        config.epoch_interruption = True
        config.consume_fuel = False
        config.max_wasm_stack = MAX_WASM_STACK
        self._engine = wasmtime.Engine(config)
        self._linker = wasmtime.Linker(self._engine)
        self._linker.define_wasi()

        self._lock = threading.Lock()
        self._cache: OrderedDict[str, _Compiled] = OrderedDict()
        self._compile_locks: dict[str, threading.Lock] = {}
        self._compiled_count = 0

        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="ww-epoch-ticker", daemon=True)
        self._ticker.start()
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="ww-wasm")

    # -- lifecycle ---------------------------------------------------------

    def _tick(self) -> None:
        while not self._stop.wait(TICK):
            self._engine.increment_epoch()

    def close(self) -> None:
        """Wait for running modules, then stop the ticker. Idempotent."""
        # The pool goes first: a module still running needs the ticker to reach
        # its deadline, so stopping the ticker first could hang here forever.
        self._pool.shutdown(wait=True)
        self._stop.set()
        if self._ticker.is_alive():
            self._ticker.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- module cache ------------------------------------------------------

    @property
    def compiled_count(self) -> int:
        """How many times a module was actually compiled (cache misses that succeeded)."""
        with self._lock:
            return self._compiled_count

    def has_module(self, module_hash: str) -> bool:
        with self._lock:
            return module_hash in self._cache

    def _compiled(self, digest: str, wasm: bytes) -> _Compiled:
        with self._lock:
            hit = self._lookup(digest)
            if hit is not None:
                return hit
            key_lock = self._compile_locks.setdefault(digest, threading.Lock())
        # One compile per module even if several runs of it arrive at once;
        # different modules still compile in parallel.
        with key_lock:
            with self._lock:
                hit = self._lookup(digest)
            if hit is not None:
                return hit
            try:
                if not wasm:
                    raise _RunFailed(f"module {digest} is not cached and no bytes were sent")
                module = compile_module(self._engine, wasm)
                kind = inspect_compiled(module, self._linker)
                compiled = _Compiled(kind=kind, pre=self._linker.instantiate_pre(module))
            except InvalidModule as exc:
                raise _RunFailed(str(exc)) from exc
            finally:
                with self._lock:
                    self._compile_locks.pop(digest, None)
            with self._lock:
                self._compiled_count += 1
                self._cache[digest] = compiled
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return compiled

    def _lookup(self, digest: str) -> _Compiled | None:
        # Caller holds self._lock.
        hit = self._cache.get(digest)
        if hit is not None:
            self._cache.move_to_end(digest)
        return hit

    # -- running -----------------------------------------------------------

    async def run(self, request: RunRequest) -> RunOutcome:
        """Run on the pool. Cancelling the caller does not stop the module: it ends at its limit."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self.execute, request)

    def execute(self, request: RunRequest) -> RunOutcome:
        started_at = time.time()
        limit = request.time_limit
        if not (math.isfinite(limit) and limit > 0):
            limit = self.default_time_limit
        exit_code: int | None = None
        try:
            if request.wasm and module_hash(request.wasm) != request.module_hash:
                raise _RunFailed(f"module bytes do not match module hash {request.module_hash}")
            compiled = self._compiled(request.module_hash, request.wasm)
            store = self._new_store(limit)
            if compiled.kind == "run":
                result = self._call_run(store, compiled, request, limit)
            else:
                exit_code, result = self._call_start(store, compiled, request, limit)
            state: RunState = "succeeded"
            error = ""
        except _RunFailed as exc:
            state, error, result, exit_code = exc.state, exc.error, exc.result, exc.exit_code
        finished_at = time.time()
        # The module's own faults are routine for a scheduler: INFO, not WARNING.
        log = logger.debug if state == "succeeded" else logger.info
        log("task %s: %s in %.3f s%s", request.task_id, state, finished_at - started_at,
            f": {error}" if error else "")
        return RunOutcome(state=state, result=result, error=error, exit_code=exit_code,
                          started_at=started_at, finished_at=finished_at)

    def _new_store(self, limit: float) -> wasmtime.Store:
        store = wasmtime.Store(self._engine)
        store.set_limits(
            memory_size=self.memory_limit,
            table_elements=TABLE_ELEMENTS_LIMIT,
            instances=INSTANCES_LIMIT,
            tables=TABLES_LIMIT,
            memories=MEMORIES_LIMIT,
        )
        # +1: the first tick may come almost at once, so never cut a run short.
        store.set_epoch_deadline(max(1, math.ceil(limit / TICK)) + 1)
        return store

    def _call_run(
        self, store: wasmtime.Store, compiled: _Compiled, request: RunRequest, limit: float
    ) -> str:
        # WASI is defined (with nothing granted) so that modules built against
        # wasi-libc still instantiate.
        store.set_wasi(wasmtime.WasiConfig())
        try:
            run = self._instantiate(store, compiled, limit).exports(store)["run"]
            assert isinstance(run, wasmtime.Func)
            functype = run.type(store)
            input_type, difficulty_type = functype.params
            args = (_to_val(input_type, request.input),
                    _to_val(difficulty_type, request.difficulty))
            value = self._guarded(lambda: run(store, *args), limit)
        except _ExitCode as exc:
            # e.g. wasi-libc's exit() inside run(): there is no return value to report.
            raise _RunFailed(f"module exited with code {exc.code} instead of returning from run",
                             exit_code=exc.code) from exc
        bits = 32 if str(functype.results[0]) == "i32" else 64
        return str(int(value) & ((1 << bits) - 1))

    def _call_start(
        self, store: wasmtime.Store, compiled: _Compiled, request: RunRequest, limit: float
    ) -> tuple[int, str]:
        # Output goes to bounded in-memory sinks rather than files: a module that
        # prints without end keeps running until its time limit but can neither
        # fill the worker's disk nor its memory.
        stdout = _Sink(self.output_limit, keep="head")
        stderr = _Sink(STDERR_TAIL, keep="tail")
        wasi = wasmtime.WasiConfig()
        wasi.argv = [request.task_id, str(request.input), str(request.difficulty)]
        wasi.stdout_custom = stdout.write
        wasi.stderr_custom = stderr.write
        store.set_wasi(wasi)
        exit_code = 0
        try:
            start = self._instantiate(store, compiled, limit).exports(store)["_start"]
            assert isinstance(start, wasmtime.Func)
            self._guarded(lambda: start(store), limit)
        except _ExitCode as exc:
            exit_code = exc.code
        except _RunFailed as exc:
            # Keep what the module printed before it trapped or timed out.
            exc.result = stdout.text()
            raise
        if exit_code != 0:
            tail = stderr.text().strip()
            raise _RunFailed(f"exit code {exit_code}" + (f"; stderr: {tail}" if tail else ""),
                             result=stdout.text(), exit_code=exit_code)
        return exit_code, stdout.text()

    def _instantiate(
        self, store: wasmtime.Store, compiled: _Compiled, limit: float
    ) -> wasmtime.Instance:
        # Instantiation runs the module's start function, so it is guarded too.
        return self._guarded(lambda: compiled.pre.instantiate(store), limit)

    def _guarded(self, call: Callable[[], T], limit: float) -> T:
        """Run a call into wasm, translating traps and WASI exits."""
        try:
            return call()
        except wasmtime.ExitTrap as exc:
            raise _ExitCode(exc.code) from exc
        except wasmtime.Trap as exc:
            if exc.trap_code == wasmtime.TrapCode.INTERRUPT:
                raise _RunFailed(f"time limit of {float(limit)!r} s exceeded", "timed_out") from exc
            if exc.trap_code == wasmtime.TrapCode.STACK_OVERFLOW:
                raise _RunFailed(f"stack overflow ({_summary(str(exc))})") from exc
            raise _RunFailed(_summary(str(exc))) from exc
        except wasmtime.WasmtimeError as exc:
            raise _RunFailed(_summary(str(exc))) from exc


class _Sink:
    """A WASI output stream kept in memory, bounded: its first or last ``limit`` bytes."""

    def __init__(self, limit: int, keep: Literal["head", "tail"]) -> None:
        self.limit = limit
        self.keep = keep
        self.data = bytearray()
        self.total = 0

    def write(self, chunk: bytes) -> int:
        # Called by wasmtime on the run's thread. Always report the whole chunk as
        # written, so the module sees an ordinary stream (like a pipe into `head`
        # that never closes) rather than an error it might turn into an exit code.
        self.total += len(chunk)
        if self.keep == "head":
            self.data += chunk[: max(0, self.limit - len(self.data))]
        else:
            self.data = (self.data + chunk)[-self.limit :]
        return len(chunk)

    def text(self) -> str:
        text = bytes(self.data).decode("utf-8", errors="replace")
        if self.total <= self.limit:
            return text
        return text + TRUNCATED_MARKER if self.keep == "head" else "…" + text


class _ExitCode(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _to_val(valtype: wasmtime.ValType, value: int) -> wasmtime.Val:
    if str(valtype) == "i32":
        return wasmtime.Val.i32((value + (1 << 31)) % (1 << 32) - (1 << 31))
    return wasmtime.Val.i64((value + (1 << 63)) % (1 << 64) - (1 << 63))


def _summary(message: str) -> str:
    """The cause of a wasmtime error, without the backtrace, bounded in length."""
    _, _, cause = message.rpartition("Caused by:")
    lines = [line.strip() for line in (cause or message).strip().splitlines() if line.strip()]
    text = lines[0] if lines else "unknown error"
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"
