"""The Celery 5 baseline: one task that runs a wasm module's run(a, b)
through wasmtime, with a per-process compiled-module cache keyed by the
module's SHA-256. Redis is broker and result backend, on its own database
(BENCH_REDIS_URL, default redis://127.0.0.1:6379/9).

Worker (what bench/run.py starts):
    celery -A bench.celery_app worker -P prefork -c 2 -Q wwbench

BENCH_ACKS_LATE=1 turns on task_acks_late and task_reject_on_worker_lost
(the configuration under which Celery re-runs a task whose pool process died).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from typing import Any

import wasmtime
from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
QUEUE = "wwbench"
STARTS_KEY = "wwbench:starts"

app = Celery("wwbench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=True,
)
if os.environ.get("BENCH_ACKS_LATE") == "1":
    app.conf.update(task_acks_late=True, task_reject_on_worker_lost=True)

# Per process (created after the prefork fork, on first use).
_state: dict[str, Any] = {"pid": None}


def _engine() -> tuple[wasmtime.Engine, dict[str, wasmtime.Module]]:
    if _state["pid"] != os.getpid():
        _state.update(pid=os.getpid(), engine=wasmtime.Engine(), cache={}, redis=None)
    return _state["engine"], _state["cache"]


def _redis() -> Any:
    if _state.get("redis") is None:
        import redis

        _state["redis"] = redis.Redis.from_url(REDIS_URL)
    return _state["redis"]


@app.task(name="wwbench.run_wasm", bind=True)
def run_wasm(
    self: Any, digest: str, wasm_b64: str, a: int, b: int, record: bool = False
) -> dict[str, Any]:
    started = time.time()
    if record:
        _redis().rpush(
            STARTS_KEY, json.dumps({"id": self.request.id, "pid": os.getpid(), "t": started})
        )
    engine, cache = _engine()
    module = cache.get(digest)
    if module is None:
        wasm = base64.b64decode(wasm_b64)
        if hashlib.sha256(wasm).hexdigest() != digest:
            raise ValueError("module bytes do not match their hash")
        module = cache[digest] = wasmtime.Module(engine, wasm)
    store = wasmtime.Store(engine)
    run = wasmtime.Instance(store, module, []).exports(store)["run"]
    value = run(store, a, b)
    finished = time.time()
    return {
        "result": str(int(value) & ((1 << 64) - 1)),
        "started": started,
        "finished": finished,
        "pid": os.getpid(),
    }
