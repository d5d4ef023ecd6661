"""Micro-benchmark of the hand-written write paths (tasks_app/storage.py):
storing a 1-run task and writing a journal batch of sent+ended runs, each
through Django's connection and through the event loop's own connection
(tasks_app/loop_db.py), on a fresh SQLite file.

    .venv/bin/python -m bench.storage_micro [--rounds 5] [--n 1000]

Prints the best of `rounds` (µs per call) for each measure: best-of because
other processes share the machine, and the fastest round is the one they
disturbed least. The clock is the process's CPU time by default (these
paths do no waiting of their own: SQLite in WAL mode with synchronous=NORMAL
does not sync at commit), which a loaded machine disturbs less than the
wall clock; `--clock wall` for the other."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIELDS: dict[str, Any] = {
    "description": "",
    "duration": 5.0,
    "start": 0.0,
    "delay": 0.0,
    "input": 7,
    "difficulty": 3,
}


def _setup(state_dir: str) -> None:
    os.environ["WW_STATE_DIR"] = state_dir
    os.environ["DATABASE_URL"] = f"sqlite:///{state_dir}/db.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "wwproject.settings")
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


CLOCK = time.process_time


def _best(rounds: int, n: int, one_round: Callable[[int, int], None]) -> float:
    """µs per call: the fastest of `rounds` rounds of `n` calls."""
    best = float("inf")
    for r in range(rounds):
        start = CLOCK()
        one_round(r, n)
        best = min(best, (CLOCK() - start) / n)
    return best * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=32, help="runs per journal batch")
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    with tempfile.TemporaryDirectory(prefix="ww-storage-bench-") as state_dir:
        _setup(state_dir)
        _run(args.rounds, args.n, args.batch)


def _run(rounds: int, n: int, batch: int) -> None:
    from django.utils import timezone

    from tasks_app import run_records, services
    from tasks_app.journal import RunEnded, RunSent
    from tasks_app.loop_db import loop_database
    from tasks_app.models import Iteration

    wasm = (ROOT / "hash.wasm").read_bytes()
    loop_db = loop_database()
    assert loop_db is not None
    services.create_task(task_id="warm", wasm=wasm, repeats=1, **FIELDS)

    def create(prefix: str, here: bool) -> Callable[[int, int], None]:
        def one_round(r: int, n: int) -> None:
            for i in range(n):
                task_id = f"{prefix}-{r}-{i}"
                if here:
                    services.create_task_here(
                        loop_db, task_id=task_id, wasm=wasm, repeats=1, **FIELDS
                    )
                else:
                    services.create_task(task_id=task_id, wasm=wasm, repeats=1, **FIELDS)

        return one_round

    def batches(task_id: str, count: int, batch: int) -> list[list[RunSent | RunEnded]]:
        """`count` batches of `batch` runs each sent and ended, on a new task."""
        services.create_task(task_id=task_id, wasm=wasm, repeats=count * batch, **FIELDS)
        runs = list(
            Iteration.objects.filter(task_id=task_id).order_by("index").values_list("pk", "index")
        )
        now = timezone.now()
        out = []
        for b in range(count):
            records: list[RunSent | RunEnded] = []
            for pk, index in runs[b * batch : (b + 1) * batch]:
                key: dict[str, Any] = {
                    "iteration_id": pk,
                    "task_id": task_id,
                    "index": index,
                    "number": 1,
                }
                records.append(RunSent(**key, worker_peer_id="w", sent_at=now))
                records.append(
                    RunEnded(
                        **key,
                        worker_peer_id="w",
                        outcome="succeeded",
                        run_state="succeeded",
                        result="3",
                        started_at=now,
                        finished_at=now,
                    )
                )
            out.append(records)
        return out

    def record(prefix: str, here: bool, batch: int) -> float:
        """µs per batch, the fastest of `rounds` rounds (the setup not timed)."""
        best = float("inf")
        count = max(n // batch, 1)
        for r in range(rounds):
            todo = batches(f"{prefix}-{r}", count, batch)
            start = CLOCK()
            for records in todo:
                if here:
                    run_records.record_runs_here(loop_db, records)
                else:
                    run_records.record_runs(records)
            best = min(best, (CLOCK() - start) / count)
        return best * 1e6

    measures = [
        ("create_task, 1 run (Django's connection)", lambda: _best(rounds, n, create("dj", False))),
        ("create_task_here, 1 run (loop's)", lambda: _best(rounds, n, create("lp", True))),
        ("record_runs, 1 sent+ended (Django's)", lambda: record("rdj1", False, 1)),
        ("record_runs_here, 1 sent+ended (loop's)", lambda: record("rlp1", True, 1)),
        (f"record_runs, {batch} sent+ended (Django's)", lambda: record("rdj", False, batch)),
        (f"record_runs_here, {batch} sent+ended (loop's)", lambda: record("rlp", True, batch)),
    ]
    for name, measure in measures:
        print(f"{name:45} {measure():8.1f} µs")
    loop_db.close()


if __name__ == "__main__":
    main()
