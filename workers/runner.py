"""One run, start to end, on the calling thread.

Wait for the run's due time, get its module compiled (``workers.compile_cache``),
make a fresh capped store (``workers.sandbox``), then call ``run(input,
difficulty)`` (``workers.fast_call``) or a WASI command's ``_start`` with
exactly the argv, stdin and environment it is given (nothing of the
worker's own environment) and bounded output sinks (``workers.output``).
Whatever the module does, the result is a :class:`~workers.runs.RunOutcome`
(``workers.faults`` says what each fault means), its texts and output
capped at the result limit.
"""

from __future__ import annotations

import logging
import time

import wasmtime

from tasks_app.run_control import RunControl, RunStopped, running
from workers.compat_wasmtime import set_stdin_bytes
from workers.compile_cache import CompileCache, Compiled
from workers.fast_call import call_run, run_export
from workers.faults import ExitCode, RunFailed, guarded, stopped
from workers.output import Output, Sink, capped, command_output
from workers.runs import RunOutcome, RunRequest, RunState, time_limit
from workers.sandbox import new_store

logger = logging.getLogger("ww.executor")

STDERR_TAIL = 1024  # last bytes of stderr kept in the error of a failed WASI command


class Runner:
    def __init__(
        self,
        engine: wasmtime.Engine,
        modules: CompileCache,
        *,
        memory_limit: int,
        output_limit: int,
        result_limit: int,
        default_time_limit: float,
    ) -> None:
        self._engine = engine
        self._modules = modules
        self.memory_limit = memory_limit
        self.output_limit = output_limit
        self.result_limit = result_limit
        self.default_time_limit = default_time_limit

    def execute(self, request: RunRequest, control: RunControl) -> RunOutcome:
        started_at = time.time()
        limit = time_limit(request.time_limit, self.default_time_limit)
        exit_code: int | None = None
        output: Output | None = None  # a WASI command's
        compile_cached: bool | None = None
        try:
            _wait_until(request.not_before, control)
            started_at = time.time()
            control.deadline = time.monotonic() + limit
            if control.cancelled:
                raise RunFailed("cancelled before it started", "cancelled")
            with running(control):
                compile_cached = request.module_hash in self._modules
                compiled = self._modules.get(request.module_hash, request.wasm, control)
                store = new_store(self._engine, self.memory_limit, control)
                if compiled.kind == "run":
                    result = self._call_run(store, compiled, request, control, limit)
                else:
                    exit_code, output = self._call_start(store, compiled, request, control, limit)
                    result = output.text
            state: RunState = "succeeded"
            error = ""
        except RunStopped as stop:  # while compiling: the module never ran
            state, error, result = stopped(stop.reason, limit, "compiling the module")
        except RunFailed as exc:
            state, error, result, exit_code = exc.state, exc.error, exc.result, exc.exit_code
            output = exc.output
            if output is not None:
                result = output.text
        # What goes back to the gateway is bounded, whatever the module printed
        # (a command's output is bounded already).
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
            result_bytes=output.data if output else None,
            result_truncated=output.truncated if output else False,
            stderr=output.stderr if output else "",
            compile_cached=compile_cached,
        )

    def _call_run(
        self,
        store: wasmtime.Store,
        compiled: Compiled,
        request: RunRequest,
        control: RunControl,
        limit: float,
    ) -> str:
        signature = compiled.run
        assert signature is not None  # kind "run"
        if compiled.uses_wasi:
            # WASI is defined (with nothing granted) so that modules built
            # against wasi-libc still instantiate.
            store.set_wasi(wasmtime.WasiConfig())
            control.clock_origin_ns = time.monotonic_ns()
        try:
            run = run_export(store, _instantiate(store, compiled, control, limit))
            if run is None:
                raise RunFailed("module has no run function")  # checked at compile time
            args = (request.input, request.difficulty)
            value = guarded(lambda: call_run(store, run, signature, args), control, limit)
        except ExitCode as exc:
            # e.g. wasi-libc's exit() inside run(): there is no return value to report.
            raise RunFailed(
                f"module exited with code {exc.code} instead of returning from run",
                exit_code=exc.code,
            ) from exc
        return str(value)

    def _call_start(
        self,
        store: wasmtime.Store,
        compiled: Compiled,
        request: RunRequest,
        control: RunControl,
        limit: float,
    ) -> tuple[int, Output]:
        # Output goes to bounded in-memory sinks rather than files: a module that
        # prints without end keeps running until its time limit but can neither
        # fill the worker's disk nor its memory.
        stdout = Sink(self.output_limit, keep="head")
        stderr = Sink(max(self.result_limit, STDERR_TAIL), keep="tail")
        wasi = wasmtime.WasiConfig()
        args = request.args
        if args is None:  # the seed's
            args = (str(request.input), str(request.difficulty))
        wasi.argv = [request.task_id, *args]
        # A new WasiConfig inherits nothing: these pairs are the whole environment.
        if request.env:
            wasi.env = [[name, value] for name, value in request.env]
        if request.stdin:  # else stdin is empty: end of file at once
            set_stdin_bytes(wasi, request.stdin)
        wasi.stdout_custom = stdout.write
        wasi.stderr_custom = stderr.write
        store.set_wasi(wasi)
        control.clock_origin_ns = time.monotonic_ns()
        exit_code = 0
        try:
            start = _instantiate(store, compiled, control, limit).exports(store)["_start"]
            assert isinstance(start, wasmtime.Func)
            guarded(lambda: start(store), control, limit)
        except ExitCode as exc:
            exit_code = exc.code
        except RunFailed as exc:
            # Keep what the module printed before it trapped or timed out.
            exc.output = command_output(stdout, stderr, self.result_limit)
            raise
        output = command_output(stdout, stderr, self.result_limit)
        if exit_code != 0:
            tail = stderr.tail_text(STDERR_TAIL).strip()
            raise RunFailed(
                f"exit code {exit_code}" + (f"; stderr: {tail}" if tail else ""),
                output=output,
                exit_code=exit_code,
            )
        return exit_code, output


def _instantiate(
    store: wasmtime.Store, compiled: Compiled, control: RunControl, limit: float
) -> wasmtime.Instance:
    # Instantiation runs the module's start function, so it is guarded too.
    return guarded(lambda: compiled.pre.instantiate(store), control, limit)


def _wait_until(not_before: float, control: RunControl) -> None:
    """Hold a run sent ahead of its due time until then: sleep most of the
    way, spin the last millisecond (a sleep alone wakes up late)."""
    while not control.cancelled:
        left = not_before - time.time()
        if left <= 0:
            return
        if left > 0.002:
            time.sleep(min(left - 0.001, 0.05))
