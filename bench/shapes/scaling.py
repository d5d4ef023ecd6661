"""CPU-bound scaling: 8 runs of ~0.5 s with 1 slot and with 2 slots, submit
-> last result; speed-up = t1 / t2. Ours waits on the task's websocket
stream (a client polling the database every 5 ms took enough CPU from two
busy workers on two cores to slow each run by ~7%); the mean execution time
per run shows whether the cores were busy with something else."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.clients import run_timings
from bench.dramatiq_side import DramatiqBaseline
from bench.measures import div, med
from bench.ours import OurSystem
from bench.procs import Procs
from bench.progress import log

RUNS = 8


def ours(sys_: OurSystem, wasm: bytes, n: int, iters: int) -> dict[str, Any]:
    task_id = sys_.new_id("cpu")
    with sys_.watch(task_id) as watch:
        t0 = time.time()
        sys_.submit(wasm, task_id=task_id, repeats=n, input=1, difficulty=iters)
        done, states = watch.wait_final(n, timeout=120)
    runs = run_timings(sys_.detail(task_id))
    execs = [r["finished"] - r["started"] for r in runs if r["finished"] and r["started"]]
    return {
        "seconds": (done - t0) if done else None,
        "states": states,
        "mean_exec_s": statistics.mean(execs) if execs else None,
    }


def celery(c: CeleryBaseline, wasm: bytes, n: int, iters: int) -> dict[str, Any]:
    args = c.args(wasm, 1, iters)
    t0 = time.time()
    rs = [c.task.apply_async(args) for _ in range(n)]
    outs = [r.get(timeout=120) for r in rs]
    return {
        "seconds": time.time() - t0,
        "mean_exec_s": sum(o["finished"] - o["started"] for o in outs) / n,
    }


def dramatiq(d: DramatiqBaseline, wasm: bytes, n: int, iters: int) -> dict[str, Any]:
    t0 = time.time()
    messages = [d.send(wasm, 1, iters) for _ in range(n)]
    outs = [d.result(m, timeout=120) for m in messages]
    return {
        "seconds": time.time() - t0,
        "mean_exec_s": sum(o["finished"] - o["started"] for o in outs) / n,
    }


def measure(procs: Procs, wasm: bytes, iters: int, run_seconds: float, reps: int) -> dict[str, Any]:
    """Ours with one worker, then a second; Celery -c 1, then -c 2;
    Dramatiq --processes 1, then 2 (--threads 1: one slot per process);
    each `reps` times, medians."""
    log("scaling: ours with 1 slot")
    us = OurSystem(procs, label="scaling")
    us.start_gateway()
    us.start_worker()
    out: dict[str, Any] = {"runs": RUNS, "run_seconds": run_seconds}
    try:
        us.warm_up(wasm, runs=2, input=1, difficulty=1000)
        one = [ours(us, wasm, RUNS, iters) for _ in range(reps)]
        us.start_worker()
        us.warm_up(wasm, runs=4, input=1, difficulty=1000)
        log("scaling: ours with 2 slots")
        two = [ours(us, wasm, RUNS, iters) for _ in range(reps)]
    finally:
        us.stop()
    one_s, two_s = med([r["seconds"] for r in one]), med([r["seconds"] for r in two])
    out["ours"] = {
        "one_slot_s": one_s,
        "two_slots_s": two_s,
        "speedup": div(one_s, two_s),
        "mean_exec_s": {
            "one_slot": med([r["mean_exec_s"] for r in one]),
            "two_slots": med([r["mean_exec_s"] for r in two]),
        },
        "reps": {
            "one_slot_s": [r["seconds"] for r in one],
            "two_slots_s": [r["seconds"] for r in two],
        },
    }
    cel_t: dict[int, float | None] = {}
    cel_exec: dict[int, float | None] = {}
    for conc in (1, 2):
        log(f"scaling: celery -c {conc}")
        cel = CeleryBaseline(procs, concurrency=conc, label=f"celery-c{conc}")
        cel.start()
        try:
            cel.warm_up(wasm, 1, 1000, runs=2 * conc)
            rs = [celery(cel, wasm, RUNS, iters) for _ in range(reps)]
            cel_t[conc] = med([r["seconds"] for r in rs])
            cel_exec[conc] = med([r["mean_exec_s"] for r in rs])
        finally:
            cel.stop()
    out["celery"] = {
        "one_slot_s": cel_t[1],
        "two_slots_s": cel_t[2],
        "speedup": div(cel_t[1], cel_t[2]),
        "mean_exec_s": {"one_slot": cel_exec[1], "two_slots": cel_exec[2]},
    }
    dq_t: dict[int, float | None] = {}
    dq_exec: dict[int, float | None] = {}
    for processes in (1, 2):
        log(f"scaling: dramatiq --processes {processes} --threads 1")
        d = DramatiqBaseline(procs, processes=processes, threads=1, db=10)
        d.start()
        try:
            d.warm_up(wasm, 1, 1000, runs=2 * processes)
            rs = [dramatiq(d, wasm, RUNS, iters) for _ in range(reps)]
            dq_t[processes] = med([r["seconds"] for r in rs])
            dq_exec[processes] = med([r["mean_exec_s"] for r in rs])
        finally:
            d.stop()
    out["dramatiq"] = {
        "one_slot_s": dq_t[1],
        "two_slots_s": dq_t[2],
        "speedup": div(dq_t[1], dq_t[2]),
        "mean_exec_s": {"one_slot": dq_exec[1], "two_slots": dq_exec[2]},
        "configurations": "--processes 1 --threads 1, then --processes 2 --threads 1",
    }
    return out
