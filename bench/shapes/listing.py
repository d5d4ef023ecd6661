"""Listing at scale: 10,000 finished one-run tasks written straight into a
fresh database (bench/seed_db.py: what 10,000 POSTs and runs would have
left) before the gateway starts, then `GET /tasks` (first page) timed."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measures import pct
from bench.ours import ROOT, OurSystem

SEED = Path(__file__).resolve().parents[1] / "seed_db.py"


def seed_tasks(sys_: OurSystem, n: int) -> float:
    """Store n finished one-run tasks through the ORM, before the gateway
    starts. Returns the seconds it took."""
    t0 = time.time()
    subprocess.run([sys.executable, str(SEED), str(n)], env=sys_.env, cwd=ROOT, check=True)
    return time.time() - t0


def list_latency(sys_: OurSystem, n: int) -> dict[str, Any]:
    """`GET /tasks` (first page, default limit) n times, one after another."""
    times = []
    total = None
    for _ in range(n):
        t0 = time.perf_counter()
        r = sys_.http.get("/tasks")
        times.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        total = r.headers.get("X-Total-Count")
    return {"p50_ms": pct(times, 50), "p99_ms": pct(times, 99), "n": n, "total": total}
