"""Beat's schedules as rows, written through django-celery-beat's models in a
process of their own (the bench process never configures Django):

    BENCH_BEAT_DB=... python -m bench.beat_project.seed < spec.json

spec: {"prefix", "count", "every" (whole seconds: IntervalSchedule's unit),
"first" (epoch s of the first schedule's first fire time), "spread" (s
between consecutive schedules' first fire times), "digest", "wasm_b64"}.
The tables are migrated first. Schedule k is the PeriodicTask `<prefix>-k`
on one IntervalSchedule, its `last_run_at` set to its first fire time less
one interval: beat computes an interval entry's next fire time as
last_run_at + every, so that is when beat first sends it (after which beat
counts each interval from its own sending: see bench/README.md). Prints
{"seconds": time to write the rows}."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.beat_project.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django_celery_beat.models import (  # type: ignore[import-untyped]  # noqa: E402
    IntervalSchedule,
    PeriodicTask,
    PeriodicTasks,
)

from bench.beat_project import QUEUE, TASK  # noqa: E402


def seed(spec: dict[str, object]) -> float:
    call_command("migrate", "--noinput", verbosity=0)
    started = time.perf_counter()
    every = int(spec["every"])  # type: ignore[call-overload]
    interval, _ = IntervalSchedule.objects.get_or_create(
        every=every, period=IntervalSchedule.SECONDS
    )
    first = float(spec["first"])  # type: ignore[arg-type]
    spread = float(spec["spread"])  # type: ignore[arg-type]
    rows = []
    for k in range(int(spec["count"])):  # type: ignore[call-overload]
        name = f"{spec['prefix']}-{k}"
        fire = datetime.fromtimestamp(first + k * spread, UTC)
        rows.append(
            PeriodicTask(
                name=name,
                task=TASK,
                interval=interval,
                args=json.dumps([name, spec["digest"], spec["wasm_b64"]]),
                queue=QUEUE,
                last_run_at=fire - timedelta(seconds=every),
                enabled=True,
            )
        )
    PeriodicTask.objects.bulk_create(rows, batch_size=1000)
    PeriodicTasks.update_changed()  # bulk_create sends no signals: tell beat
    return time.perf_counter() - started


if __name__ == "__main__":
    print(json.dumps({"seconds": seed(json.load(sys.stdin))}))
