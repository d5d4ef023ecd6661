"""The Dramatiq baseline under the bench: a `dramatiq` worker subprocess we
own (`--processes P --threads T`) on its own Redis database, and how to
submit to it. Two configurations run side by side, each on its own
database (so neither takes the other's messages): 2x1 (2 slots, like ours
and Celery's -c 2) and 2x8 (Dramatiq's favoured threads per process).

Timing: submission is the client's clock before `send`/`enqueue`;
start/finish are time.time() inside the task (the worker thread); "result
stored" is when the client's blocking `get_result` returns (Dramatiq's
Redis results backend: a BRPOPLPUSH on the message's key)."""

from __future__ import annotations

import base64
import os
import sys
import time
from pathlib import Path
from typing import Any

import dramatiq
from dramatiq.message import Message

from bench import modules
from bench.procs import Proc, Procs, cpu_seconds, descendants

ROOT = Path(__file__).resolve().parents[1]
REDIS_BASE = os.environ.get("BENCH_DRAMATIQ_REDIS_BASE", "redis://127.0.0.1:6379")

Result = Message[dict[str, Any]]


def redis_url(db: int) -> str:
    return f"{REDIS_BASE}/{db}"


class DramatiqBaseline:
    def __init__(self, procs: Procs, *, processes: int, threads: int, db: int) -> None:
        from bench import dramatiq_app

        self.procs = procs
        self.processes = processes
        self.threads = threads
        self.name = f"dramatiq_{processes}x{threads}"  # its key in the results
        self.url = redis_url(db)
        self.mod = dramatiq_app
        self.broker, self.backend, self.actor = dramatiq_app.connect(self.url)
        self.worker: Proc | None = None
        self.env = {**os.environ, "BENCH_DRAMATIQ_REDIS_URL": self.url, "PYTHONUNBUFFERED": "1"}

    def redis(self) -> Any:
        return self.backend.client

    def start(self) -> None:
        self.redis().flushdb()  # its own db only
        self.worker = self.procs.start(
            self.name.replace("_", "-"),
            [
                sys.executable,
                "-m",
                "dramatiq",
                "bench.dramatiq_app",
                "--processes",
                str(self.processes),
                "--threads",
                str(self.threads),
                "--queues",
                self.mod.QUEUE,
                "--path",
                str(ROOT),
            ],
            env=self.env,
            cwd=ROOT,
        )
        # Ready when it answers a task; then every process compiles the modules.
        self.call(modules.noop_wasm(), 1, 2, timeout=60)
        self.warm_up(modules.noop_wasm())
        self.procs.remember_children(self.worker)

    def stop(self) -> None:
        if self.worker is not None:
            self.procs.stop(self.worker, timeout=15)
            self.worker = None

    def cpu(self) -> float:
        """CPU seconds of the worker: its main process and every process under it."""
        assert self.worker is not None
        pids = [self.worker.pid, *descendants(self.worker.pid)]
        return sum(cpu_seconds(p) for p in pids)

    def redis_cpu(self) -> float:
        info = self.redis().info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    # -- submitting ------------------------------------------------------------

    def args(self, wasm: bytes, a: int, b: int) -> tuple[Any, ...]:
        return (modules.sha256(wasm), base64.b64encode(wasm).decode(), a, b)

    def message(self, wasm: bytes, a: int = 1, b: int = 2) -> Result:
        return self.actor.message(*self.args(wasm, a, b))

    def send(self, wasm: bytes, a: int = 1, b: int = 2, delay_ms: int | None = None) -> Result:
        return self.actor.send_with_options(args=self.args(wasm, a, b), delay=delay_ms)

    def group(self, messages: list[Result]) -> None:
        dramatiq.group(messages, broker=self.broker).run()

    def result(self, message: Result, timeout: float = 60) -> dict[str, Any]:
        """Blocks until the run's result is stored. The Redis backend waits
        whole seconds (BRPOPLPUSH), and under one second does not block at
        all: at least 1 s."""
        ms = max(1000, int(timeout * 1000))
        out: dict[str, Any] = message.get_result(backend=self.backend, block=True, timeout=ms)
        return out

    def call(self, wasm: bytes, a: int, b: int, timeout: float = 60) -> dict[str, Any]:
        return self.result(self.send(wasm, a, b), timeout)

    def warm_up(self, wasm: bytes, a: int = 1, b: int = 2, runs: int = 0) -> None:
        """Enough runs that every worker thread of every process has had one."""
        messages = [self.send(wasm, a, b) for _ in range(runs or 4 * self.processes * self.threads)]
        for m in messages:
            self.result(m, 120)
        time.sleep(0.2)


def start_both(procs: Procs) -> list[DramatiqBaseline]:
    """The two configurations measured, each on its own database (10, 11)."""
    out = []
    for processes, threads, db in ((2, 1, 10), (2, 8, 11)):
        d = DramatiqBaseline(procs, processes=processes, threads=threads, db=db)
        d.start()
        out.append(d)
    return out
