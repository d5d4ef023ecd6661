"""The Celery app of the beat baseline: beat (DatabaseScheduler) sends
`wwbeat.fire` to queue `wwbeat` on Redis db 12 (BENCH_BEAT_REDIS_URL), a
prefork worker runs it. The task records its own start (time.time() at its
top, in the pool process) and the periodic task's name in a Redis list,
then runs the wasm module like the other peers' task (bench/peer_task.py).

    celery -A bench.beat_project.celery_app worker -P prefork -c 2 -Q wwbeat
    celery -A bench.beat_project.celery_app beat \
        -S django_celery_beat.schedulers:DatabaseScheduler
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.beat_project.settings")

import django

django.setup()

from celery import Celery  # type: ignore[import-untyped]  # noqa: E402 - after django.setup()

from bench import peer_task  # noqa: E402
from bench.beat_project import QUEUE, REDIS_URL, STARTS_KEY, TASK  # noqa: E402

app = Celery("wwbeat", broker=REDIS_URL)
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    task_default_queue=QUEUE,
    task_ignore_result=True,
    timezone="UTC",
    enable_utc=True,
    broker_connection_retry_on_startup=True,
    beat_scheduler="django_celery_beat.schedulers:DatabaseScheduler",
    # No celery.backend_cleanup entry (it exists only with a result backend).
    result_expires=None,
)

_state: dict[str, Any] = {}


def _redis() -> Any:
    if _state.get("redis_pid") != os.getpid():  # a connection per process, made after the fork
        import redis

        _state.update(redis=redis.Redis.from_url(REDIS_URL), redis_pid=os.getpid())
    return _state["redis"]


@app.task(name=TASK)
def fire(name: str, digest: str, wasm_b64: str) -> None:
    started = time.time()
    _redis().rpush(STARTS_KEY, json.dumps({"name": name, "t": started}))
    peer_task.run_wasm(digest, wasm_b64, 1, 2, started)
