"""The wasm work every peer's task does (Celery's and Dramatiq's alike):
run(a, b) of the module through wasmtime, compiled once per process and
cached by the module's SHA-256, a fresh Store per run. The bytes travel in
every message (base64); only the first run in a process compiles them.

The cache is per process: made on first use after a fork (Celery's prefork
pool, Dramatiq's worker processes), shared by a process's threads
(Dramatiq's --threads) under a lock held only while it is made or filled."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from typing import Any

import wasmtime

_lock = threading.Lock()
_state: dict[str, Any] = {"pid": None}


def _module(digest: str, wasm_b64: str) -> tuple[wasmtime.Engine, wasmtime.Module]:
    with _lock:
        if _state["pid"] != os.getpid():
            _state.update(pid=os.getpid(), engine=wasmtime.Engine(), cache={})
        engine: wasmtime.Engine = _state["engine"]
        cache: dict[str, wasmtime.Module] = _state["cache"]
        module = cache.get(digest)
        if module is None:
            wasm = base64.b64decode(wasm_b64)
            if hashlib.sha256(wasm).hexdigest() != digest:
                raise ValueError("module bytes do not match their hash")
            module = cache[digest] = wasmtime.Module(engine, wasm)
    return engine, module


def run_wasm(digest: str, wasm_b64: str, a: int, b: int, started: float) -> dict[str, Any]:
    """One run; `started` is the task's own time.time() at its top."""
    engine, module = _module(digest, wasm_b64)
    store = wasmtime.Store(engine)
    run = wasmtime.Instance(store, module, []).exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    value = run(store, a, b)
    return {
        "result": str(int(value) & ((1 << 64) - 1)),
        "started": started,
        "finished": time.time(),
        "pid": os.getpid(),
    }
