"""The Celery baseline under the bench: a `celery worker` subprocess we own
(prefork, -c N) on Redis db 9, and the same measures as bench/ours.py.

Timing: submission is the client's clock before apply_async; start/finish
are time.time() inside the task (the pool process); "result stored" is when
the client's AsyncResult.get() returns (results come back over Redis pub/sub)."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import modules
from bench.ours import lateness_stats, pct
from bench.procs import Proc, Procs, children, cpu_seconds

ROOT = Path(__file__).resolve().parents[1]


class CeleryBaseline:
    def __init__(
        self, procs: Procs, *, concurrency: int = 2, acks_late: bool = False, label: str = "celery"
    ) -> None:
        from bench import celery_app

        self.procs = procs
        self.concurrency = concurrency
        self.acks_late = acks_late
        self.label = label
        self.mod = celery_app
        self.app = celery_app.app
        self.task = celery_app.run_wasm
        self.worker: Proc | None = None
        self.env = {
            **os.environ,
            "BENCH_ACKS_LATE": "1" if acks_late else "0",
            "PYTHONUNBUFFERED": "1",
        }

    def redis(self) -> Any:
        return self.mod._redis()

    def start(self) -> None:
        self.redis().flushdb()  # db 9 only: ours
        self.worker = self.procs.start(
            self.label,
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.celery_app",
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.concurrency),
                "-Q",
                self.mod.QUEUE,
                # Celery's own default log level (WARNING) unless BENCH_CELERY_LOGLEVEL.
                "--loglevel",
                os.environ.get("BENCH_CELERY_LOGLEVEL", "WARNING"),
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"{self.label}-{os.getpid()}@bench",
            ],
            env=self.env,
            cwd=ROOT,
        )
        # Ready when it answers a task; then every pool process compiles the modules.
        self.call(modules.noop_wasm(), 1, 2, timeout=60)
        time.sleep(0.5)
        self.procs.remember_children(self.worker)

    def stop(self) -> None:
        if self.worker is not None:
            self.procs.stop(self.worker, timeout=15)
            self.worker = None

    def cpu(self) -> float:
        """CPU seconds of the worker: main process and its pool processes."""
        assert self.worker is not None
        return cpu_seconds(self.worker.pid) + sum(cpu_seconds(p) for p in children(self.worker.pid))

    def redis_cpu(self) -> float:
        info = self.redis().info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def args(self, wasm: bytes, a: int, b: int, record: bool = False) -> tuple[Any, ...]:
        return (modules.sha256(wasm), base64.b64encode(wasm).decode(), a, b, record)

    def call(self, wasm: bytes, a: int, b: int, timeout: float = 60) -> dict[str, Any]:
        return self.task.apply_async(self.args(wasm, a, b)).get(timeout=timeout)

    def warm_up(self, wasm: bytes, a: int = 1, b: int = 2, runs: int = 8) -> None:
        rs = [self.task.apply_async(self.args(wasm, a, b)) for _ in range(runs)]
        for r in rs:
            r.get(timeout=120)


def throughput(c: CeleryBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    cpu0, rcpu0 = c.cpu(), c.redis_cpu()
    t0 = time.time()
    rs = [c.task.apply_async(args) for _ in range(n)]
    t_posted = time.time()
    failed = 0
    for r in rs:
        try:
            r.get(timeout=300)
        except Exception:  # noqa: BLE001
            failed += 1
    done = time.time()
    cpu = {
        "worker_cpu_ms_per_run": (c.cpu() - cpu0) * 1000 / n,
        "redis_cpu_ms_per_run": (c.redis_cpu() - rcpu0) * 1000 / n,
    }
    for r in rs:
        r.forget()
    return {
        "runs_per_s": n / (done - t0),
        "seconds": done - t0,
        "post_seconds": t_posted - t0,
        "failed": failed,
        **cpu,
    }


def round_trip(c: CeleryBaseline, wasm: bytes, n: int) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    totals = []
    for _ in range(n):
        t0 = time.time()
        c.task.apply_async(args).get(timeout=30)
        totals.append((time.time() - t0) * 1000)
    return {
        "p50_ms": pct(totals, 50),
        "p99_ms": pct(totals, 99),
        "n": n,
        "samples_ms": totals,
        "method": "apply_async(...).get()",
    }


def punctuality(c: CeleryBaseline, wasm: bytes, n: int, spacing: float) -> dict[str, Any]:
    args = c.args(wasm, 1, 2)
    first = datetime.now(UTC) + timedelta(seconds=1)
    dues = [first + timedelta(seconds=k * spacing) for k in range(n)]
    rs = [c.task.apply_async(args, eta=due) for due in dues]
    lates = []
    for r, due in zip(rs, dues, strict=True):
        out = r.get(timeout=60)
        lates.append((out["started"] - due.timestamp()) * 1000)
    return lateness_stats(lates)


def cpu_batch(c: CeleryBaseline, wasm: bytes, n: int, iters: int) -> dict[str, Any]:
    args = c.args(wasm, 1, iters)
    t0 = time.time()
    rs = [c.task.apply_async(args) for _ in range(n)]
    outs = [r.get(timeout=120) for r in rs]
    return {
        "seconds": time.time() - t0,
        "mean_exec_s": sum(o["finished"] - o["started"] for o in outs) / n,
    }


def hash_puzzle(c: CeleryBaseline, wasm: bytes, difficulty: int) -> dict[str, Any]:
    t0 = time.time()
    out = c.task.apply_async(c.args(wasm, 0, difficulty)).get(timeout=120)
    return {
        "seconds": time.time() - t0,
        "exec_seconds": out["finished"] - out["started"],
        "result": out["result"],
    }


def worker_loss(c: CeleryBaseline, wasm: bytes, iters: int, n: int = 20) -> dict[str, Any]:
    """SIGKILL one prefork pool process 0.25 s into a run."""
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
    for res in rs:
        try:
            res.get(timeout=60, propagate=False)
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
