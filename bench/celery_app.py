"""The Celery 5 baseline: one task that runs a wasm module's run(a, b)
through wasmtime (bench/peer_task.py: a per-process compiled-module cache
keyed by the module's SHA-256, a fresh Store per run). Redis is broker and
result backend, on its own database (BENCH_REDIS_URL, default
redis://127.0.0.1:6379/9).

Worker (what bench/run.py starts):
    celery -A bench.celery_app worker -P prefork -c 2 -Q wwbench

BENCH_ACKS_LATE=1 turns on task_acks_late and task_reject_on_worker_lost
(the configuration under which Celery re-runs a task whose pool process died).
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery, group  # type: ignore[import-untyped]  # noqa: F401 - group: bench/shapes/batch.py; Celery publishes no type information

from bench import peer_task

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

_state: dict[str, Any] = {}


def _redis() -> Any:
    if _state.get("redis_pid") != os.getpid():  # a connection per process, made after the fork
        import redis

        _state.update(redis=redis.Redis.from_url(REDIS_URL), redis_pid=os.getpid())
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
    return peer_task.run_wasm(digest, wasm_b64, a, b, started)
