"""Worker loss: 20 runs of ~0.5 s on 2 slots; SIGKILL one worker 0.25 s into
a run. Counted: runs lost, failed, re-run; seconds from the kill to the
loss being noticed, to the re-dispatch and to the re-run starting. Celery
with its defaults and with acks_late + reject_on_worker_lost."""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

from bench.celery_side import CeleryBaseline
from bench.clients import FINAL, ts
from bench.ours import OurSystem
from bench.procs import Procs, children
from bench.progress import log

RUNS = 20


def ours(sys_: OurSystem, wasm: bytes, iters: int, n: int = RUNS) -> dict[str, Any]:
    """SIGKILL the first worker 0.25 s into one of its runs."""
    victim, victim_peer = sys_.workers[0]
    before = sys_.db.max_iteration_id()
    task_id = sys_.new_id("loss")
    sys_.submit(wasm, task_id=task_id, repeats=n, input=1, difficulty=iters)
    kill_at = None
    killed_attempt = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = sys_.db.latest_running_attempt(before, victim_peer)
        sent = ts(running[1]) if running else None
        if running and sent is not None and time.time() - sent >= 0.25:
            os.kill(victim.pid, signal.SIGKILL)
            kill_at = time.time()
            killed_attempt = running[0]
            break
        time.sleep(0.005)
    if kill_at is None or killed_attempt is None:
        return {"error": "the victim never ran anything"}
    done, states = sys_.db.wait_final(before, n, timeout=120)
    runs = sys_.detail(task_id)["runs"]
    killed_run, lost_at, lost_outcome = sys_.db.attempt_end(killed_attempt)
    retry = sys_.db.next_attempt(killed_run, killed_attempt)
    lost_ts, retry_sent, retry_started = ts(lost_at), None, None
    if retry:
        retry_sent, retry_started = ts(retry[0]), ts(retry[1])
    return {
        "runs": n,
        "lost": sum(1 for r in runs if r["state"] not in FINAL),
        "failed": sum(1 for r in runs if r["state"] != "succeeded" and r["state"] in FINAL),
        "rerun": sum(1 for r in runs if len(r.get("attempts") or []) > 1),
        "killed_attempt_outcome": lost_outcome,
        "detect_s": (lost_ts - kill_at) if lost_ts is not None else None,
        "redispatch_s": (retry_sent - kill_at) if retry_sent is not None else None,
        "rerun_start_s": (retry_started - kill_at) if retry_started is not None else None,
        "all_done_s": (done - kill_at) if done else None,
        "states": states,
    }


def celery(c: CeleryBaseline, wasm: bytes, iters: int, n: int = RUNS) -> dict[str, Any]:
    """SIGKILL one prefork pool process 0.25 s into a run (the task records
    its start and PID in Redis)."""
    assert c.worker is not None
    r = c.redis()
    r.delete(c.mod.STARTS_KEY)
    args = c.args(wasm, 1, iters, record=True)
    rs = [c.task.apply_async(args) for _ in range(n)]
    kill_at, killed_id, killed_pid = None, None, None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and kill_at is None:
        pool = set(children(c.worker.pid))
        for raw in r.lrange(c.mod.STARTS_KEY, 0, -1):
            ev = json.loads(raw)
            if ev["pid"] in pool and time.time() - ev["t"] >= 0.25:
                os.kill(ev["pid"], signal.SIGKILL)
                kill_at, killed_id, killed_pid = time.time(), ev["id"], ev["pid"]
                break
        time.sleep(0.005)
    if kill_at is None:
        return {"error": "no pool process was seen running a task"}
    states: dict[str, int] = {}
    lost = 0
    # "No result within 60 s" counts from the kill for every run at once: a
    # timeout per get() kept a run whose results stopped coming 20 minutes.
    results_by = time.monotonic() + 60
    for res in rs:
        try:
            res.get(timeout=max(0.1, results_by - time.monotonic()), propagate=False)
            states[res.state] = states.get(res.state, 0) + 1
        except Exception:  # noqa: BLE001 - no result at all within the timeout: lost
            lost += 1
    starts = [json.loads(x) for x in r.lrange(c.mod.STARTS_KEY, 0, -1)]
    reruns = [ev for ev in starts if ev["id"] == killed_id and ev["pid"] != killed_pid]
    rerun_ids = {ev["id"] for ev in starts}
    per_id: dict[str, int] = {}
    for ev in starts:
        per_id[ev["id"]] = per_id.get(ev["id"], 0) + 1
    killed_state = next(res.state for res in rs if res.id == killed_id)
    return {
        "runs": n,
        "lost": lost,
        "failed": sum(v for k, v in states.items() if k != "SUCCESS"),
        "rerun": sum(1 for v in per_id.values() if v > 1),
        "killed_task_state": killed_state,
        "redispatch_s": None,
        "rerun_start_s": (reruns[0]["t"] - kill_at) if reruns else None,
        "states": states,
        "started_tasks": len(rerun_ids),
    }


def measure(procs: Procs, wasm: bytes, iters: int, run_seconds: float) -> dict[str, Any]:
    """Ours (one of two runworker processes killed), then Celery's two
    configurations (one of two pool processes killed)."""
    out: dict[str, Any] = {"runs": RUNS, "run_seconds": run_seconds}
    log("worker loss: ours (SIGKILL one of two runworker processes mid-run)")
    us = OurSystem(procs, label="loss")
    us.start_gateway()
    us.start_worker()
    us.start_worker()
    try:
        us.warm_up(wasm, runs=4, input=1, difficulty=1000)
        out["ours"] = ours(us, wasm, iters)
    finally:
        us.stop()
    for variant, acks_late in (("celery_default", False), ("celery_acks_late", True)):
        log(f"worker loss: {variant} (SIGKILL one prefork pool process mid-run)")
        cel = CeleryBaseline(
            procs, concurrency=2, acks_late=acks_late, label=variant.replace("_", "-")
        )
        cel.start()
        try:
            cel.warm_up(wasm, 1, 1000, runs=4)
            out[variant] = celery(cel, wasm, iters)
        finally:
            cel.stop()
    return out
