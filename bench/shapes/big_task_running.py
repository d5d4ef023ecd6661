"""A 100,000-run task while it runs (issue 17.8, after issue 14.2's
bench/big_task.py, which reads one whose runs are not due): one multipart
`POST /tasks` of N no-op runs due at once on our two workers, then `GET
/tasks/<id>` (its first page of runs) back to back on one keep-alive
connection until every run is final (a thread polls the gateway's database,
read-only, every 50 ms). p50/p99 of the reads, and the task's runs/s
meanwhile. Ours only: no peer has a task of many runs to read."""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.measures import pct
from bench.ours import OurSystem
from bench.progress import log


def measure(sys_: OurSystem, wasm: bytes, runs: int) -> dict[str, Any]:
    log(f"big task running: one task of {runs} runs, GET /tasks/<id> while it runs")
    before = sys_.db.max_iteration_id()
    task_id = sys_.new_id("bigrun")
    finished = threading.Event()
    end: dict[str, Any] = {}

    def watch() -> None:
        end["done"], end["states"] = sys_.db.wait_final(
            before, runs, timeout=max(300, runs / 100), interval=0.05
        )
        finished.set()

    t0 = time.time()
    sys_.submit(wasm, task_id=task_id, repeats=runs)
    t_posted = time.time()
    watcher = threading.Thread(target=watch)
    watcher.start()
    times: list[float] = []
    client = sys_.lean_client()
    try:
        while not finished.is_set():
            t = time.perf_counter()
            client.detail(task_id)
            times.append((time.perf_counter() - t) * 1000)
    finally:
        client.close()
        watcher.join()
    done = end.get("done")
    return {
        "runs_per_big_task": runs,
        "post_seconds": t_posted - t0,
        "runs_per_s": runs / (done - t0) if done else None,
        "states": end.get("states"),
        "detail_while_running": {
            "n": len(times),
            "p50_ms": pct(times, 50),
            "p99_ms": pct(times, 99),
            "max_ms": max(times) if times else None,
        },
        "how": "one multipart POST /tasks (repeats=N, delay=0) on 2 worker slots; GET "
        "/tasks/<id> back to back on one keep-alive connection until the database shows "
        "every run final",
    }
