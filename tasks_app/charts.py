"""The status page's live charts: the last 15 minutes of the gateway's own
metrics (tasks_app.metrics, what `/metrics` exports), sampled every STEP
seconds into a ring buffer of POINTS samples.

Why the metrics and not the rows: queue depth and workers connected have no
history in the database (only their value now); the runs' outcomes and
lateness are already observed where the scheduler learns them, on the loop,
at the cost of an increment; and a status page polled by many viewers then
costs the database nothing. What it costs instead: the lateness quantiles
have the resolution of the histogram's buckets (interpolated between
bounds, as Prometheus's histogram_quantile does), the history starts again
when the gateway restarts, and it is the runs this gateway dispatched.

Each sample is the difference between two readings of the cumulative
metrics: the runs that ended in the step by outcome (and the attempts
lost, which a killed worker leaves), the p50/p99 of the
lateness observed in the step, and the queue depth and workers connected
at its end. Memory is POINTS samples of fixed size, whatever the load; a
sample costs one read of four metrics.

`keep_sampling` is the sampler; the gateway owns it as a task
(cluster_app.gateway). `SERIES` is what `GET /api/charts`
(tasks_app.charts_view) reads."""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from tasks_app import metrics

STEP = 5.0  # seconds a sample covers
POINTS = 180  # samples kept: 15 minutes
# The runs' final states, as RUN_DURATION's `state` label carries them; and
# `lost`: attempts lost (no answer, the worker gone), from WORKER_RUNS summed
# over workers. A lost attempt is not a run's end (its run is tried again or
# fails later), but it is what a killed worker shows.
RUN_STATES = ("succeeded", "failed", "timed_out", "cancelled")
LOST = "lost"
OUTCOMES = (*RUN_STATES, LOST)


@dataclass(frozen=True)
class Reading:
    """The cumulative metrics at one moment, as `/metrics` has them."""

    at: float  # Unix time
    ended: dict[str, float]  # runs ended since the process started, by outcome
    lateness: tuple[tuple[float, float], ...]  # (bucket's upper bound, cumulative count)
    queue_depth: float
    workers: float


@dataclass(frozen=True)
class Sample:
    """One step: what happened between two readings."""

    at: float  # the step's end, Unix time
    ended: dict[str, int]  # runs ended in the step, by outcome (and attempts lost)
    lateness_p50: float | None  # seconds; None: no run started in the step
    lateness_p99: float | None
    queue_depth: float  # at the step's end
    workers: float


def read_metrics(at: float | None = None) -> Reading:
    """The gateway's metrics now (the gauges call into the live pool and
    scheduler, so this runs on the gateway's loop)."""
    ended = dict.fromkeys(OUTCOMES, 0.0)
    for family in metrics.RUN_DURATION.collect():
        for s in family.samples:
            state = s.labels.get("state", "")
            if s.name.endswith("_count") and state in RUN_STATES:
                ended[state] += s.value
    # A worker's series go when over WORKER_SERIES_MAX peers are counted: the
    # sum then drops, and that step shows no losses (sample_between).
    for family in metrics.WORKER_RUNS.collect():
        for s in family.samples:
            if s.name.endswith("_total") and s.labels.get("outcome") == LOST:
                ended[LOST] += s.value
    lateness: list[tuple[float, float]] = []
    for family in metrics.DISPATCH_LATENESS.collect():
        for s in family.samples:
            if s.name.endswith("_bucket"):
                lateness.append((float(s.labels["le"]), s.value))
    return Reading(
        at=time.time() if at is None else at,
        ended=ended,
        lateness=tuple(sorted(lateness)),
        queue_depth=_gauge(metrics.QUEUE_DEPTH),
        workers=_gauge(metrics.WORKERS_CONNECTED),
    )


def _gauge(gauge: Any) -> float:
    return float(sum(s.value for family in gauge.collect() for s in family.samples))


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of a histogram given as (upper bound, cumulative
    count) pairs in order, interpolated linearly inside its bucket (as
    Prometheus's histogram_quantile does): None when it holds nothing; the
    highest finite bound when the quantile lies in the +Inf bucket."""
    pairs = list(buckets)
    if not pairs or pairs[-1][1] <= 0:
        return None
    rank = q * pairs[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in pairs:
        if count >= rank and count > lower_count:
            if math.isinf(bound):
                return lower_bound
            share = (rank - lower_count) / (count - lower_count)
            return lower_bound + (bound - lower_bound) * share
        if not math.isinf(bound):
            lower_bound = bound
        lower_count = count
    return lower_bound


def sample_between(before: Reading, after: Reading) -> Sample:
    """The step from `before` to `after`. Counters only grow in a process;
    a drop (a counter made again) counts as nothing, not as negative runs."""
    ended = {
        state: max(0, round(after.ended.get(state, 0.0) - before.ended.get(state, 0.0)))
        for state in OUTCOMES
    }
    earlier = dict(before.lateness)
    in_step = [(le, max(0.0, count - earlier.get(le, 0.0))) for le, count in after.lateness]
    return Sample(
        at=after.at,
        ended=ended,
        lateness_p50=quantile(0.5, in_step),
        lateness_p99=quantile(0.99, in_step),
        queue_depth=after.queue_depth,
        workers=after.workers,
    )


class ChartSeries:
    """The last `points` samples. Written by the sampler on the gateway's
    loop, read by the endpoint on a request thread: a lock between them."""

    def __init__(self, points: int = POINTS, step: float = STEP) -> None:
        self.points = points
        self.step = step
        self._samples: deque[Sample] = deque(maxlen=points)
        self._lock = threading.Lock()
        # Whether a sampler fills this series: a plain daphne process serves
        # the page too, but runs no scheduler and so has nothing to chart.
        self.sampled = False

    def add(self, sample: Sample) -> None:
        with self._lock:
            self._samples.append(sample)

    def clear(self) -> None:
        with self._lock:
            self._samples.clear()

    def samples(self) -> list[Sample]:
        with self._lock:
            return list(self._samples)

    def as_json(self) -> dict[str, Any]:
        """The series column by column, oldest first (the shape uPlot draws:
        one array of times, one array per line)."""
        samples = self.samples()
        return {
            "step": self.step,
            "points": self.points,
            "sampled": self.sampled,
            "at": [s.at for s in samples],
            "ended": {state: [s.ended[state] for s in samples] for state in OUTCOMES},
            "lateness_p50": [s.lateness_p50 for s in samples],
            "lateness_p99": [s.lateness_p99 for s in samples],
            "queue_depth": [s.queue_depth for s in samples],
            "workers": [s.workers for s in samples],
        }


SERIES = ChartSeries()


async def keep_sampling(
    series: ChartSeries = SERIES, *, read: Callable[[float], Reading] = read_metrics
) -> None:
    """Add a sample to `series` every `series.step` seconds, until
    cancelled. Samples fall on the wall clock's multiples of the step and
    are stamped with them (so they line up however the gateway started); a
    loop too busy to sample for over a step goes on at the next multiple."""
    step = series.step
    before = read(time.time())
    due = _next_multiple(time.time(), step)
    series.sampled = True
    try:
        while True:
            await asyncio.sleep(max(0.0, due - time.time()))
            after = read(due)
            series.add(sample_between(before, after))
            before = after
            due += step
            now = time.time()
            if due < now:  # over a step late: that sample covered the missed steps too
                due = _next_multiple(now, step)
    finally:
        series.sampled = False


def _next_multiple(now: float, step: float) -> float:
    return (math.floor(now / step) + 1) * step
