"""The Dramatiq 2 baseline: the same task as Celery's (bench/peer_task.py:
the module's bytes in every message, wasmtime, a per-process compiled cache
by SHA-256, a fresh Store per run), Redis as broker and, through Dramatiq's
Results middleware, result backend, on its own database
(BENCH_DRAMATIQ_REDIS_URL, default redis://127.0.0.1:6379/10).

Worker (what bench/dramatiq_side.py starts, once per configuration):
    dramatiq bench.dramatiq_app --processes 2 --threads 1 --queues wwbench

Dramatiq's defaults otherwise (its default middleware, its Redis broker's
polling); retries off, as Celery's task has none.
"""

from __future__ import annotations

import os
import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

from bench import peer_task

REDIS_URL = os.environ.get("BENCH_DRAMATIQ_REDIS_URL", "redis://127.0.0.1:6379/10")
QUEUE = "wwbench"
ACTOR = "wwbench_run_wasm"
RESULT_TTL_MS = 3_600_000


def run_wasm(digest: str, wasm_b64: str, a: int, b: int) -> dict[str, Any]:
    return peer_task.run_wasm(digest, wasm_b64, a, b, time.time())


def connect(url: str) -> tuple[RedisBroker, RedisBackend, dramatiq.Actor[Any, Any]]:
    """A broker with its results backend on `url`, and the task declared on
    it: the worker's (below), and the bench client's, one per configuration
    (each on its own database)."""
    backend = RedisBackend(url=url)
    broker = RedisBroker(url=url)
    broker.add_middleware(Results(backend=backend, result_ttl=RESULT_TTL_MS))
    declare = dramatiq.actor(
        actor_name=ACTOR, queue_name=QUEUE, broker=broker, store_results=True, max_retries=0
    )
    return broker, backend, declare(run_wasm)


broker, backend, run_wasm_actor = connect(REDIS_URL)
dramatiq.set_broker(broker)
