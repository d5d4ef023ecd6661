"""The Celery beat baseline under the bench (issue 18): a prefork `celery
worker -c 2` and one `celery beat` with django-celery-beat's
DatabaseScheduler, both processes we own, on Redis db 12 (only that db is
flushed) and a SQLite file of this bench run (bench/beat_project/).

Timing sources (this machine's wall clock, time.time()):
- a firing's start: time.time() at the top of the task in the pool process,
  pushed with the periodic task's name to a Redis list (`STARTS_KEY`);
- its intended fire time: the schedule's first fire time (the seeded
  `last_run_at` + interval) plus whole intervals (beat itself counts each
  interval from when it sent the previous one: the shapes report that
  drift, see bench/README.md);
- beat's restart: the moment its new process is started."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import modules
from bench.beat_project import QUEUE, REDIS_URL, STARTS_KEY, TASK
from bench.procs import Proc, Procs, cpu_seconds, rss_mb

ROOT = Path(__file__).resolve().parents[1]
APP = "bench.beat_project.celery_app"
SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"


class BeatBaseline:
    def __init__(self, procs: Procs, *, label: str = "beat", concurrency: int = 2) -> None:
        self.procs = procs
        self.label = label
        self.concurrency = concurrency
        self.db_path = procs.log_dir / f"{label}-{os.getpid()}-{time.time_ns()}.sqlite3"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.beat_project.settings",
            "BENCH_BEAT_DB": str(self.db_path),
            "BENCH_BEAT_REDIS_URL": REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        self.worker: Proc | None = None
        self.beat: Proc | None = None
        self.beat_started_at = 0.0  # time.time() just before the beat process was started
        self._redis: Any = None

    def redis(self) -> Any:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(REDIS_URL)
        return self._redis

    # -- rows ------------------------------------------------------------------

    def seed(
        self, wasm: bytes, *, prefix: str, count: int, every: int, first: float, spread: float
    ) -> float:
        """`count` PeriodicTasks on an IntervalSchedule of `every` s, the
        first fire times `first`, `first + spread`, ... (bench/beat_project/
        seed.py, its own process); seconds to write the rows."""
        spec = {
            "prefix": prefix,
            "count": count,
            "every": every,
            "first": first,
            "spread": spread,
            "digest": modules.sha256(wasm),
            "wasm_b64": base64.b64encode(wasm).decode(),
        }
        done = subprocess.run(
            [sys.executable, "-m", "bench.beat_project.seed"],
            input=json.dumps(spec),
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"seeding beat's schedules failed: {done.stderr[-2000:]}")
        return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])

    # -- processes -----------------------------------------------------------

    def start_worker(self) -> None:
        """The worker, ready once it has run one task sent straight to it
        (not through beat); every pool process then has the module compiled
        by its first firing."""
        self.redis().flushdb()  # db 12 only: ours
        self.worker = self.procs.start(
            f"{self.label}-worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                APP,
                "worker",
                "-P",
                "prefork",
                "-c",
                str(self.concurrency),
                "-Q",
                QUEUE,
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
        wasm = modules.noop_wasm()
        from celery import Celery  # type: ignore[import-untyped]

        sender = Celery("wwbeat-bench", broker=REDIS_URL)
        args = ["warm-up", modules.sha256(wasm), base64.b64encode(wasm).decode()]
        for _ in range(2 * self.concurrency):
            sender.send_task(TASK, args=args, queue=QUEUE)
        deadline = time.monotonic() + 60
        while self.redis().llen(STARTS_KEY) < 2 * self.concurrency:
            if time.monotonic() > deadline or not self.worker.alive():
                raise RuntimeError(f"beat's worker did not run a task: {self._tail(self.worker)}")
            time.sleep(0.05)
        sender.close()
        time.sleep(0.3)
        self.procs.remember_children(self.worker)
        self.redis().delete(STARTS_KEY)

    def start_beat(self) -> Proc:
        """`celery beat` with the DatabaseScheduler (its defaults: at most 5 s
        between looks at the schedule, Celery's default log level
        WARNING)."""
        self.beat_started_at = time.time()
        self.beat = self.procs.start(
            f"{self.label}-beat",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                APP,
                "beat",
                "-S",
                SCHEDULER,
                "--loglevel",
                os.environ.get("BENCH_CELERY_LOGLEVEL", "WARNING"),
            ],
            env=self.env,
            cwd=ROOT,
        )
        return self.beat

    def kill_beat(self) -> float:
        """SIGKILL beat (no sync of its rows on the way out); when it was sent."""
        assert self.beat is not None
        at = time.time()
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.beat.pid, signal.SIGKILL)
        self.beat.popen.wait(10)
        self.procs.stop(self.beat)
        self.beat = None
        return at

    def stop(self) -> None:
        if self.beat is not None:
            self.procs.stop(self.beat, timeout=10)
            self.beat = None
        if self.worker is not None:
            self.procs.stop(self.worker, timeout=15)
            self.worker = None
        with contextlib.suppress(Exception):
            self.redis().flushdb()
        for path in (self.db_path, *(Path(f"{self.db_path}{s}") for s in ("-wal", "-shm"))):
            path.unlink(missing_ok=True)

    # -- readings --------------------------------------------------------------

    def starts(self) -> list[tuple[str, float]]:
        """(periodic task name, start on the worker) of every firing so far."""
        out = []
        for raw in self.redis().lrange(STARTS_KEY, 0, -1):
            doc = json.loads(raw)
            out.append((str(doc["name"]), float(doc["t"])))
        return out

    def beat_rss_mb(self) -> float:
        assert self.beat is not None
        return rss_mb(self.beat.pid)

    def beat_cpu(self) -> float:
        assert self.beat is not None
        return cpu_seconds(self.beat.pid)

    def beat_alive(self) -> bool:
        return self.beat is not None and self.beat.alive()

    def _tail(self, proc: Proc) -> str:
        return proc.log_path.read_text()[-2000:] if proc.log_path.exists() else ""

    def beat_log_tail(self) -> str:
        return self._tail(self.beat) if self.beat is not None else ""
