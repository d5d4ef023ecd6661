"""Runs WebAssembly modules on the worker: one fresh, capped store per run.

A run is bounded in time by epoch interruption (a ticker thread advances the
engine's epoch every ``TICK`` seconds; at each tick the store's deadline
callback ends the run if its time is up or it was cancelled), and inside
host calls that could wait by ``workers.wasi_bounds``; in memory by the
store's limiter, in stack by ``max_wasm_stack``, in what it sends back by
``workers.output``. Its module is compiled in a child process bounded in
memory, the wait counted against the run's time limit
(``tasks_app.bounded_compile``). Runs go
to a thread pool: wasmtime releases the GIL while wasm executes, so runs in
different threads use different cores. Whatever the module does, ``execute``
returns a :class:`RunOutcome`; it never raises for the module's faults.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Literal, Self, TypeVar

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime import _func as wasmtime_func

from tasks_app.bounded_compile import Compiler, CompilerUnavailable
from tasks_app.compile_child import make_engine
from tasks_app.modules import InvalidModule, ModuleKind, inspect_compiled, module_hash
from tasks_app.run_control import RunControl, RunStopped, running
from tasks_app.run_times import Kind, RunTimes
from workers.output import TRUNCATED_MARKER, Sink, capped
from workers.wasi_bounds import bound_blocking_calls

logger = logging.getLogger("ww.executor")

RunState = Literal["succeeded", "failed", "timed_out", "cancelled"]
T = TypeVar("T")

TICK = 0.01  # seconds between epoch increments: the granularity of time limits
# A run of a kind (module and inputs) seen to take less than this runs on the
# caller's thread (the worker's event loop): handing it to a pool thread and
# back costs more than the run. Mispredicted, it is stopped after
# INLINE_BUDGET (plus up to a tick) and run again, from the start, on the pool.
INLINE_BELOW = 0.001
INLINE_BUDGET = 0.005
TABLE_ELEMENTS_LIMIT = 100_000  # 8 bytes each
INSTANCES_LIMIT = 4
TABLES_LIMIT = 4
MEMORIES_LIMIT = 4
ERROR_LIMIT = 500  # characters of a trap message kept in RunOutcome.error
STDERR_TAIL = 1024  # last bytes of stderr kept in the error of a failed WASI command
__all__ = ["TRUNCATED_MARKER", "Executor", "RunOutcome", "RunRequest"]


@dataclass(frozen=True)
class RunRequest:
    task_id: str
    module_hash: str
    wasm: bytes  # may be b"" when the executor already has module_hash cached
    input: int
    difficulty: int
    time_limit: float  # seconds; <= 0 means the executor's default
    run_key: str = ""  # names the run for `Executor.cancel` (e.g. "task1#0")
    not_before: float = 0.0  # time.time() before which the run must not start


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
    uses_wasi: bool  # imports anything: its store needs a WASI context
    run_params: tuple[str, ...] = ()  # "i32"/"i64" of run's parameters (kind "run")
    run_bits: int = 64  # width of run's result


_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_NoFinalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)


def _deadline_callback(control: RunControl) -> Any:
    """Called by wasmtime on the run's thread at every epoch tick: go on for
    one more tick, or end the run with an error (which becomes a trap)."""

    def check(context: Any, data: Any, delta: Any, kind: Any) -> int:
        if not control.stop_reason():
            delta[0] = 1
            kind[0] = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE
            return 0
        error = ffi.wasmtime_error_new(control.reason.encode())
        return ctypes.cast(error, ctypes.c_void_p).value or 0

    return _DeadlineCallback(check)


class _RunFailed(Exception):
    """Internal: ends a run early; carries what goes into the outcome."""

    def __init__(
        self,
        error: str,
        state: RunState = "failed",
        result: str = "",
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
        result_limit: int = 64 * 1024,
        default_time_limit: float = 60.0,
        cache_size: int = 64,
        compile_memory_limit: int = 512 * 1024 * 1024,
        compile_time_limit: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.concurrency = concurrency
        self.memory_limit = memory_limit
        self.output_limit = output_limit
        self.result_limit = result_limit
        self.default_time_limit = default_time_limit
        self.cache_size = max(1, cache_size)
        self.compile_time_limit = compile_time_limit

        # Modules are compiled in a child with this very engine configuration
        # (epoch interruption, stack limit) and deserialized here.
        self._engine = make_engine("executor")
        self._linker = wasmtime.Linker(self._engine)
        self._linker.define_wasi()
        bound_blocking_calls(self._linker)
        self._compiler = Compiler("executor", memory_bytes=compile_memory_limit, keep=1)
        # Started now, so that a run's first module does not wait for a process start.
        self._compiler.warm()

        self._lock = threading.Lock()
        self._active: dict[str, list[RunControl]] = {}
        self._cache: OrderedDict[str, _Compiled] = OrderedDict()
        self._compile_locks: dict[str, threading.Lock] = {}
        self._compiled_count = 0
        self._run_times = RunTimes()
        self.inline_count = 0

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
        self._compiler.close()

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

    def _compiled(self, digest: str, wasm: bytes, control: RunControl) -> _Compiled:
        with self._lock:
            hit = self._lookup(digest)
            if hit is not None:
                return hit
            key_lock = self._compile_locks.setdefault(digest, threading.Lock())
        # One compile per module even if several runs of it arrive at once;
        # different modules still compile in parallel. A run waiting for
        # another's compile waits no longer than its own time allows.
        if not key_lock.acquire(timeout=max(0.0, min(control.deadline - time.monotonic(), 1e6))):
            raise RunStopped("timed_out")
        try:
            with self._lock:
                hit = self._lookup(digest)
            if hit is not None:
                return hit
            try:
                compiled = self._compile(digest, wasm, control)
            finally:
                with self._lock:
                    self._compile_locks.pop(digest, None)
            with self._lock:
                self._compiled_count += 1
                self._cache[digest] = compiled
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return compiled
        finally:
            key_lock.release()

    def _compile(self, digest: str, wasm: bytes, control: RunControl) -> _Compiled:
        """Compile in a child: bounded in memory, its wait by the run's
        deadline (and the compile time limit) and ended by its cancel."""
        if not wasm:
            raise _RunFailed(f"module {digest} is not cached and no bytes were sent")
        if module_hash(wasm) != digest:
            raise _RunFailed(f"module bytes do not match module hash {digest}")
        seconds = max(0.0, min(control.deadline - time.monotonic(), self.compile_time_limit))
        try:
            result = self._compiler.compile(wasm, seconds=seconds, control=control)
            module = wasmtime.Module.deserialize(self._engine, result.artifact)
            kind = inspect_compiled(module, self._linker)
            return _compiled_of(module, kind, self._linker)
        except InvalidModule as exc:
            if control.stop_reason() == "timed_out":  # the run's time ran out, not the limit's
                raise RunStopped("timed_out") from exc
            raise _RunFailed(str(exc)) from exc
        except CompilerUnavailable as exc:
            raise _RunFailed(str(exc)) from exc

    def _lookup(self, digest: str) -> _Compiled | None:
        # Caller holds self._lock.
        hit = self._cache.get(digest)
        if hit is not None:
            self._cache.move_to_end(digest)
        return hit

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
            self._register(request.run_key, control)
        outcomes: list[RunOutcome | None] = [None] * len(requests)

        def lane(indexes: list[int]) -> None:
            for i in indexes:
                outcomes[i] = self._execute(requests[i], controls[i])

        order = sorted(range(len(requests)), key=lambda i: requests[i].not_before)
        lanes = min(self.concurrency, len(requests))
        try:
            await asyncio.gather(
                *(loop.run_in_executor(self._pool, lane, order[k::lanes]) for k in range(lanes))
            )
        except asyncio.CancelledError:
            for control in controls:
                control.cancel()
            raise
        finally:
            for request, control in zip(requests, controls, strict=True):
                self._unregister(request.run_key, control)
        for request, outcome, was_cached in zip(requests, outcomes, cached, strict=True):
            if outcome is not None and was_cached:
                self._learn(request, outcome)
        return [outcome for outcome in outcomes if outcome is not None]

    # -- tiny runs on the caller's thread ----------------------------------

    def _runs_inline(self, request: RunRequest) -> bool:
        typical = self._run_times.typical(_kind_of(request))
        return (
            typical is not None
            and typical < INLINE_BELOW
            and request.not_before <= time.time()
            and self.has_module(request.module_hash)
        )

    def _run_inline(self, request: RunRequest) -> RunOutcome | None:
        """Run on this thread with a budget of INLINE_BUDGET; None if the
        run needed more (it is then to be run again on the pool)."""
        limit = request.time_limit
        if not (math.isfinite(limit) and limit > 0):
            limit = self.default_time_limit
        budget = min(limit, INLINE_BUDGET)
        outcome = self.execute(replace(request, time_limit=budget))
        if outcome.state == "timed_out" and budget < limit:
            self._run_times.forget(_kind_of(request))  # not tiny after all
            return None
        self.inline_count += 1
        self._learn(request, outcome)
        return outcome

    def _learn(self, request: RunRequest, outcome: RunOutcome) -> None:
        self._run_times.learn(_kind_of(request), outcome.finished_at - outcome.started_at)

    def cancel(self, run_key: str) -> bool:
        """Interrupt the run(s) named `run_key`; they end `cancelled` within
        a tick. False if no such run is executing."""
        with self._lock:
            controls = list(self._active.get(run_key, ()))
        for control in controls:
            control.cancel()
        return bool(controls)

    def cancel_all(self) -> int:
        """Interrupt every run that has a run_key; returns how many."""
        with self._lock:
            controls = [c for group in self._active.values() for c in group]
        for control in controls:
            control.cancel()
        return len(controls)

    def _register(self, run_key: str, control: RunControl) -> None:
        if run_key:
            with self._lock:
                self._active.setdefault(run_key, []).append(control)

    def _unregister(self, run_key: str, control: RunControl) -> None:
        if run_key:
            with self._lock:
                controls = self._active.get(run_key, [])
                if control in controls:
                    controls.remove(control)
                if not controls:
                    self._active.pop(run_key, None)

    def execute(self, request: RunRequest) -> RunOutcome:
        """Run on the calling thread."""
        control = RunControl()
        self._register(request.run_key, control)
        try:
            return self._execute(request, control)
        finally:
            self._unregister(request.run_key, control)

    def _execute(self, request: RunRequest, control: RunControl) -> RunOutcome:
        started_at = time.time()
        limit = request.time_limit
        if not (math.isfinite(limit) and limit > 0):
            limit = self.default_time_limit
        exit_code: int | None = None
        try:
            _wait_until(request.not_before, control)
            started_at = time.time()
            control.deadline = time.monotonic() + limit
            if control.cancelled:
                raise _RunFailed("cancelled before it started", "cancelled")
            with running(control):
                compiled = self._compiled(request.module_hash, request.wasm, control)
                store = self._new_store(control)
                if compiled.kind == "run":
                    result = self._call_run(store, compiled, request, control, limit)
                else:
                    exit_code, result = self._call_start(store, compiled, request, control, limit)
            state: RunState = "succeeded"
            error = ""
        except RunStopped as stop:  # while compiling: the module never ran
            state, error, result = _stopped(stop.reason, limit, "compiling the module")
        except _RunFailed as exc:
            state, error, result, exit_code = exc.state, exc.error, exc.result, exc.exit_code
        # What goes back to the gateway is bounded, whatever the module printed.
        result, error = capped(result, self.result_limit), capped(error, self.result_limit)
        finished_at = time.time()
        # The module's own faults are routine for a scheduler: INFO, not WARNING.
        log = logger.debug if state == "succeeded" else logger.info
        log(
            "task %s: %s in %.3f s%s",
            request.task_id,
            state,
            finished_at - started_at,
            f": {error}" if error else "",
        )
        return RunOutcome(
            state=state,
            result=result,
            error=error,
            exit_code=exit_code,
            started_at=started_at,
            finished_at=finished_at,
        )

    def _new_store(self, control: RunControl) -> wasmtime.Store:
        store = wasmtime.Store(self._engine)
        store.set_limits(
            memory_size=self.memory_limit,
            table_elements=TABLE_ELEMENTS_LIMIT,
            instances=INSTANCES_LIMIT,
            tables=TABLES_LIMIT,
            memories=MEMORIES_LIMIT,
        )
        # The callback runs at every tick and decides whether the run goes on.
        control.callback = _deadline_callback(control)
        ffi.wasmtime_store_epoch_deadline_callback(
            store.ptr(), control.callback, None, _NoFinalizer
        )
        store.set_epoch_deadline(1)
        return store

    def _call_run(
        self,
        store: wasmtime.Store,
        compiled: _Compiled,
        request: RunRequest,
        control: RunControl,
        limit: float,
    ) -> str:
        if compiled.uses_wasi:
            # WASI is defined (with nothing granted) so that modules built
            # against wasi-libc still instantiate.
            store.set_wasi(wasmtime.WasiConfig())
            control.clock_origin_ns = time.monotonic_ns()
        try:
            run = _run_export(store, self._instantiate(store, compiled, control, limit))
            args = (request.input, request.difficulty)
            value = self._guarded(
                lambda: _call_run_export(store, run, compiled.run_params, args), control, limit
            )
        except _ExitCode as exc:
            # e.g. wasi-libc's exit() inside run(): there is no return value to report.
            raise _RunFailed(
                f"module exited with code {exc.code} instead of returning from run",
                exit_code=exc.code,
            ) from exc
        return str(int(value) & ((1 << compiled.run_bits) - 1))

    def _call_start(
        self,
        store: wasmtime.Store,
        compiled: _Compiled,
        request: RunRequest,
        control: RunControl,
        limit: float,
    ) -> tuple[int, str]:
        # Output goes to bounded in-memory sinks rather than files: a module that
        # prints without end keeps running until its time limit but can neither
        # fill the worker's disk nor its memory.
        stdout = Sink(self.output_limit, keep="head")
        stderr = Sink(STDERR_TAIL, keep="tail")
        wasi = wasmtime.WasiConfig()
        wasi.argv = [request.task_id, str(request.input), str(request.difficulty)]
        wasi.stdout_custom = stdout.write
        wasi.stderr_custom = stderr.write
        store.set_wasi(wasi)
        control.clock_origin_ns = time.monotonic_ns()
        exit_code = 0
        try:
            start = self._instantiate(store, compiled, control, limit).exports(store)["_start"]
            assert isinstance(start, wasmtime.Func)
            self._guarded(lambda: start(store), control, limit)
        except _ExitCode as exc:
            exit_code = exc.code
        except _RunFailed as exc:
            # Keep what the module printed before it trapped or timed out.
            exc.result = stdout.text()
            raise
        if exit_code != 0:
            tail = stderr.text().strip()
            raise _RunFailed(
                f"exit code {exit_code}" + (f"; stderr: {tail}" if tail else ""),
                result=stdout.text(),
                exit_code=exit_code,
            )
        return exit_code, stdout.text()

    def _instantiate(
        self, store: wasmtime.Store, compiled: _Compiled, control: RunControl, limit: float
    ) -> wasmtime.Instance:
        # Instantiation runs the module's start function, so it is guarded too.
        return self._guarded(lambda: compiled.pre.instantiate(store), control, limit)

    def _guarded(self, call: Callable[[], T], control: RunControl, limit: float) -> T:
        """Run a call into wasm, translating traps, stops and WASI exits."""
        try:
            return call()
        except wasmtime.ExitTrap as exc:
            raise _ExitCode(exc.code) from exc
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            raise _failure(exc, control, limit) from exc


def _wait_until(not_before: float, control: RunControl) -> None:
    """Hold a run sent ahead of its due time until then: sleep most of the
    way, spin the last millisecond (a sleep alone wakes up late)."""
    while not control.cancelled:
        left = not_before - time.time()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(min(left - 0.001, 0.05))


def _stopped(reason: str, limit: float, doing: str) -> tuple[RunState, str, str]:
    """State, error and result of a run stopped by its control while `doing`."""
    if reason == "cancelled":
        return "cancelled", f"cancelled while {doing}", ""
    return "timed_out", f"time limit of {float(limit)!r} s exceeded while {doing}", ""


def _failure(exc: Exception, control: RunControl, limit: float) -> _RunFailed:
    """What a trap or error out of wasm means for the run."""
    code = exc.trap_code if isinstance(exc, wasmtime.Trap) else None
    if control.reason == "timed_out" or code == wasmtime.TrapCode.INTERRUPT:
        return _RunFailed(f"time limit of {float(limit)!r} s exceeded", "timed_out")
    if control.reason == "cancelled":
        return _RunFailed("cancelled while running", "cancelled")
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return _RunFailed(f"stack overflow ({_summary(str(exc))})")
    return _RunFailed(_summary(str(exc)))


class _ExitCode(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _compiled_of(module: wasmtime.Module, kind: ModuleKind, linker: wasmtime.Linker) -> _Compiled:
    """What every run of a module needs, worked out once when it is compiled."""
    compiled = _Compiled(
        kind=kind, pre=linker.instantiate_pre(module), uses_wasi=bool(module.imports)
    )
    if kind != "run":
        return compiled
    run_type = next(e.type for e in module.exports if e.name == "run")
    assert isinstance(run_type, wasmtime.FuncType)
    return replace(
        compiled,
        run_params=tuple(str(t) for t in run_type.params),
        run_bits=32 if str(run_type.results[0]) == "i32" else 64,
    )


_RUN_NAME = b"run"


def _run_export(store: wasmtime.Store, instance: wasmtime.Instance) -> Any:
    """The instance's `run` function, looked up by name alone (listing every
    export, as `Instance.exports` does, costs more than a short run)."""
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(),
        ctypes.byref(instance._instance),
        ctypes.cast(_RUN_NAME, ctypes.POINTER(ctypes.c_char)),
        len(_RUN_NAME),
        ctypes.byref(item),
    )
    if not found or item.kind != ffi.WASMTIME_EXTERN_FUNC.value:
        raise _RunFailed("module has no run function")  # checked at compile time
    return item.of.func


def _call_run_export(
    store: wasmtime.Store, run: Any, param_types: tuple[str, ...], args: tuple[int, int]
) -> int:
    """`run(input, difficulty)` straight through wasmtime's C API: its
    signature was checked when the module was compiled, so the per-call type
    lookup and value boxing of `Func.__call__` (half the cost of a short run)
    are skipped. Traps and errors surface as `Func.__call__` raises them."""
    params = (ffi.wasmtime_val_t * 2)()
    for param, valtype, value in zip(params, param_types, args, strict=True):
        if valtype == "i32":
            param.kind = ffi.WASMTIME_I32
            param.of.i32 = _wrap(value, 32)
        else:
            param.kind = ffi.WASMTIME_I64
            param.of.i64 = _wrap(value, 64)
    results = (ffi.wasmtime_val_t * 1)()
    with wasmtime_func.enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(run), params, 2, results, 1, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    result = results[0]
    return int(result.of.i32 if result.kind == ffi.WASMTIME_I32.value else result.of.i64)


def _wrap(value: int, bits: int) -> int:
    """`value` as a two's-complement integer of `bits` bits."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def _summary(message: str) -> str:
    """The cause of a wasmtime error, without the backtrace, bounded in length."""
    _, _, cause = message.rpartition("Caused by:")
    lines = [line.strip() for line in (cause or message).strip().splitlines() if line.strip()]
    text = lines[0] if lines else "unknown error"
    return text if len(text) <= ERROR_LIMIT else text[: ERROR_LIMIT - 1] + "…"


def _kind_of(request: RunRequest) -> Kind:
    return (request.module_hash, request.input, request.difficulty)
