"""Compiled modules on the worker, by content hash, least recently used out.

A module is compiled once per worker however many of its runs arrive at
once (different modules still compile in parallel): in a child process
bounded in memory (``tasks_app.bounded_compile``), its wait counted against
the time limit of the run that asked for it, then deserialized here against
this worker's engine. What every run of the module needs is worked out then,
once: its imports resolved against WASI, its kind, ``run``'s signature.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import wasmtime

from tasks_app.bounded_compile import Compiler, CompilerUnavailable
from tasks_app.modules import InvalidModule, ModuleKind, inspect_compiled, module_hash
from tasks_app.run_control import RunControl, RunStopped
from workers.fast_call import RunSignature, run_signature
from workers.faults import RunFailed


@dataclass(frozen=True)
class Compiled:
    kind: ModuleKind
    pre: wasmtime.InstancePre  # imports already resolved against WASI
    uses_wasi: bool  # imports anything: its store needs a WASI context
    run: RunSignature | None = None  # kind "run" only


def compiled_of(module: wasmtime.Module, kind: ModuleKind, linker: wasmtime.Linker) -> Compiled:
    """What every run of a module needs, worked out once when it is compiled."""
    return Compiled(
        kind=kind,
        pre=linker.instantiate_pre(module),
        uses_wasi=bool(module.imports),
        run=run_signature(module) if kind == "run" else None,
    )


class CompileCache:
    def __init__(
        self,
        engine: wasmtime.Engine,
        linker: wasmtime.Linker,
        compiler: Compiler,
        *,
        size: int,
        compile_time_limit: float,
    ) -> None:
        self._engine = engine
        self._linker = linker
        self._compiler = compiler
        self.size = max(1, size)
        self.compile_time_limit = compile_time_limit
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Compiled] = OrderedDict()
        self._compile_locks: dict[str, threading.Lock] = {}
        self._compiled_count = 0

    @property
    def compiled_count(self) -> int:
        """How many times a module was actually compiled (cache misses that succeeded)."""
        with self._lock:
            return self._compiled_count

    def __contains__(self, digest: str) -> bool:
        with self._lock:
            return digest in self._cache

    def get(self, digest: str, wasm: bytes, control: RunControl) -> Compiled:
        """The module ``digest``, compiled from ``wasm`` unless cached. Raises
        :class:`RunFailed` for a module that cannot run, :class:`RunStopped`
        when ``control`` ends the wait."""
        with self._lock:
            hit = self._lookup(digest)
            if hit is not None:
                return hit
            key_lock = self._compile_locks.setdefault(digest, threading.Lock())
        # A run waiting for another's compile of its module waits no longer
        # than its own time allows.
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
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            return compiled
        finally:
            key_lock.release()

    def _compile(self, digest: str, wasm: bytes, control: RunControl) -> Compiled:
        """Compile in a child: bounded in memory, its wait by the run's
        deadline (and the compile time limit) and ended by its cancel."""
        if not wasm:
            raise RunFailed(f"module {digest} is not cached and no bytes were sent")
        if module_hash(wasm) != digest:
            raise RunFailed(f"module bytes do not match module hash {digest}")
        seconds = max(0.0, min(control.deadline - time.monotonic(), self.compile_time_limit))
        try:
            result = self._compiler.compile(wasm, seconds=seconds, control=control)
            module = wasmtime.Module.deserialize(self._engine, result.artifact)
            kind = inspect_compiled(module, self._linker)
            return compiled_of(module, kind, self._linker)
        except InvalidModule as exc:
            if control.stop_reason() == "timed_out":  # the run's time ran out, not the limit's
                raise RunStopped("timed_out") from exc
            raise RunFailed(str(exc)) from exc
        except CompilerUnavailable as exc:
            raise RunFailed(str(exc)) from exc

    def _lookup(self, digest: str) -> Compiled | None:
        # Caller holds self._lock.
        hit = self._cache.get(digest)
        if hit is not None:
            self._cache.move_to_end(digest)
        return hit
