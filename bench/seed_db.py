"""Store N finished one-run tasks directly through the ORM, as N POSTs and N
runs would have left them (task, one succeeded iteration, one attempt).
Run with the gateway's environment (WW_STATE_DIR) before it starts:
`python bench/seed_db.py N`."""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")

import django

django.setup()

from django.db import transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench import modules  # noqa: E402
from tasks_app.models import Attempt, Iteration, Task  # noqa: E402
from tasks_app.services import store_module  # noqa: E402


def main(n: int) -> None:
    module = store_module(wasm=modules.noop_wasm())
    now = timezone.now() - timedelta(hours=1)
    batch = 2000
    for lo in range(0, n, batch):
        hi = min(n, lo + batch)
        with transaction.atomic():
            tasks = Task.objects.bulk_create(
                Task(
                    id=f"seed-{i:06d}",
                    description="seeded",
                    module=module,
                    duration=0,
                    start=0,
                    delay=0,
                    repeats=1,
                    input=i,
                    difficulty=1,
                    received_at=now + timedelta(milliseconds=i),
                )
                for i in range(lo, hi)
            )
            its = Iteration.objects.bulk_create(
                Iteration(
                    task=t,
                    index=0,
                    due_at=t.received_at,
                    state="succeeded",
                    result=str(t.input + 1),
                    finished_at=t.received_at,
                )
                for t in tasks
            )
            Attempt.objects.bulk_create(
                Attempt(
                    iteration=it,
                    number=1,
                    worker_peer_id="12D3KooWseeded",
                    sent_at=it.due_at,
                    started_at=it.due_at,
                    finished_at=it.due_at,
                    outcome="succeeded",
                    result=it.result,
                )
                for it in its
            )
    print(f"seeded {n} tasks")


if __name__ == "__main__":
    main(int(sys.argv[1]))
