"""Enqueue the hash puzzle on a running cluster (`make run`) through
Django's task framework and print its result once a worker has run it:

    .venv/bin/python examples/django_tasks/run_puzzle.py [DIFFICULTY]
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[1])]  # this project, and tasks_app
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "puzzle_site.settings")

import django  # noqa: E402

django.setup()

from django.utils import timezone  # noqa: E402
from django_tasks import TaskResultStatus, default_task_backend  # noqa: E402
from puzzle_site.tasks import hash_puzzle  # noqa: E402


def main() -> int:
    difficulty = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    # Due in one second: run_after becomes the run's due time.
    deferred = hash_puzzle.using(run_after=timezone.now() + timedelta(seconds=1))
    result = deferred.enqueue(input=0, difficulty=difficulty, duration=30)
    print(f"enqueued {result.id}: {result.status}")

    deadline = time.monotonic() + 60
    while not result.is_finished and time.monotonic() < deadline:
        time.sleep(0.5)
        result.refresh()
    # The same result, read by its id alone (from any process).
    result = default_task_backend.get_result(result.id)
    print(f"{result.id}: {result.status} after {result.attempts} attempt(s)")
    if result.status != TaskResultStatus.SUCCESSFUL:
        for error in result.errors:
            print(f"  {error.exception_class_path}: {error.traceback}")
        return 1
    print(f"  return value {result.return_value} from worker {result.worker_ids[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
