"""The Celery baseline under the bench: a `celery worker` subprocess we own
(prefork, -c N) on Redis db 9, and how to submit to it (the shapes in
bench/shapes/ measure it beside ours).

Timing: submission is the client's clock before apply_async; start/finish
are time.time() inside the task (the pool process); "result stored" is when
the client's AsyncResult.get() returns (results come back over Redis pub/sub)."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

from bench import modules
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
