"""Prometheus metrics recorded by the gateway process."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

DISPATCH_LATENESS = Histogram(
    "ww_dispatch_lateness_seconds",
    "How late runs started on their worker, after their due time",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RUN_DURATION = Histogram(
    "ww_run_duration_seconds",
    "Time a run spent executing on its worker",
    ["state"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
WORKERS_CONNECTED = Gauge("ww_workers_connected", "Workers in the gateway's live pool")
QUEUE_DEPTH = Gauge("ww_queue_depth", "Runs queued in the scheduler, due or not")
RUNS_PER_CALL = Histogram(
    "ww_runs_per_call",
    "Runs sent to a worker in one call (short runs travel several to a call)",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
MODULE_FETCHES = Counter(
    "ww_module_fetches",
    "Module bytes sent to workers (jobs carry only the hash; a worker fetches a module once)",
    ["worker"],
)


def observe_run(
    *, due_at: datetime, started_at: datetime | None, finished_at: datetime | None, state: str
) -> None:
    if started_at is None:
        return
    DISPATCH_LATENESS.observe(max((started_at - due_at).total_seconds(), 0.0))
    if finished_at is not None:
        RUN_DURATION.labels(state=state).observe(
            max((finished_at - started_at).total_seconds(), 0.0)
        )


def bind_gateway(*, workers: Callable[[], float], queue_depth: Callable[[], float]) -> None:
    """Let the gauges read the live gateway's state at scrape time."""
    WORKERS_CONNECTED.set_function(workers)
    QUEUE_DEPTH.set_function(queue_depth)
