"""Prometheus metrics recorded by the gateway process.

Cheap where runs pass: an increment or an observation on a series made
once. The only label whose values are not a fixed set is `worker` (a peer
ID): at most WORKER_SERIES_MAX peers carry series at once (WorkerSeries).

Not here: lease ownership. One gateway owns every schedule and run today;
who holds which lease becomes a number worth exporting only once several
gateways share a database (issue 19)."""

from __future__ import annotations

from collections import OrderedDict
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

# -- per worker ---------------------------------------------------------------

WORKER_SERIES_MAX = 100

MODULE_FETCHES = Counter(
    "ww_module_fetches",
    "Module bytes sent to workers (jobs carry only the hash; a worker fetches a module once)",
    ["worker"],
)
WORKER_RUNS = Counter(
    "ww_worker_runs",
    "Attempts that ended on each worker, by outcome (succeeded, failed, timed_out,"
    " cancelled, lost: no answer, the worker gone, a malformed answer)",
    ["worker", "outcome"],
)
COMPILE_CACHE = Counter(
    "ww_compile_cache",
    "Runs whose module the worker found compiled (hit) or compiled for them (miss),"
    " as the workers report it in their outcomes",
    ["result"],
)
_COMPILE_HIT = COMPILE_CACHE.labels(result="hit")
_COMPILE_MISS = COMPILE_CACHE.labels(result="miss")


class WorkerSeries:
    """The peer IDs that label per-worker series, `cap` at most. A peer
    counted for the first time with `cap` peers held takes the place of the
    one counted least lately, whose series go (a worker idle or long gone:
    with fewer than `cap` workers busy, every busy worker keeps its own).
    Prometheus reads the dropped series as ended; a returning worker starts
    again from zero, which rate() takes as a counter reset.

    Each series is looked up once and kept (a run costs a dict lookup and
    an increment). Used from the gateway's event loop only."""

    def __init__(self, cap: int, counters: list[Counter]) -> None:
        self._cap = max(cap, 1)
        self._counters = counters  # each labelled by "worker" first
        self._peers: OrderedDict[str, dict[tuple[Counter, tuple[str, ...]], Counter]] = (
            OrderedDict()
        )

    def child(self, counter: Counter, peer_id: str, *labels: str) -> Counter:
        """`counter`'s series for `peer_id` and the other label values."""
        children = self._peers.get(peer_id)
        if children is None:
            children = self._peers[peer_id] = {}
            if len(self._peers) > self._cap:
                dropped, _ = self._peers.popitem(last=False)
                for each in self._counters:
                    each.remove_by_labels({"worker": dropped})
        else:
            self._peers.move_to_end(peer_id)
        key = (counter, labels)
        found = children.get(key)
        if found is None:
            found = children[key] = counter.labels(peer_id, *labels)
        return found

    def __len__(self) -> int:
        return len(self._peers)


WORKERS = WorkerSeries(WORKER_SERIES_MAX, [MODULE_FETCHES, WORKER_RUNS])


def worker_ran(peer_id: str, outcome: str, n: int = 1) -> None:
    """`n` attempts ended on the worker `peer_id` with `outcome`."""
    WORKERS.child(WORKER_RUNS, peer_id, outcome).inc(n)


def module_fetched(peer_id: str) -> None:
    WORKERS.child(MODULE_FETCHES, peer_id).inc()


def compile_cache_used(hit: bool | None) -> None:
    """What a worker said of a run's compiled module (None: it did not say)."""
    if hit is not None:
        (_COMPILE_HIT if hit else _COMPILE_MISS).inc()


# -- the journal --------------------------------------------------------------

JOURNAL_BATCH = Histogram(
    "ww_journal_batch_records",
    "Run records written in one journal batch (one transaction)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)
JOURNAL_COMMIT = Histogram(
    "ww_journal_commit_seconds",
    "Time to write one journal batch, from taking it to its transaction committed",
    buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


def journal_written(records: int, seconds: float) -> None:
    JOURNAL_BATCH.observe(records)
    JOURNAL_COMMIT.observe(seconds)


# -- schedules ----------------------------------------------------------------

FIRINGS_MADE = Counter(
    "ww_schedule_firings_made",
    "Schedule firings made (a task with one run due at its fire time), by this process",
)
FIRING_DECISIONS = Counter(
    "ww_schedule_firing_decisions",
    "Firings decided when their run came due: run, wait (for the previous firing) or skip",
    ["decision"],
)
FIRE_TIMES_SKIPPED = Counter(
    "ww_schedule_fire_times_skipped",
    "Fire times not run: overlap (the previous firing still running), paused,"
    " or missed (older than catchup_window when a gateway started)",
    ["reason"],
)
_DECISIONS = {d: FIRING_DECISIONS.labels(decision=d) for d in ("run", "wait", "skip")}
_SKIPPED = {r: FIRE_TIMES_SKIPPED.labels(reason=r) for r in ("overlap", "paused", "missed")}


def firing_decided(decision: str) -> None:
    _DECISIONS[decision].inc()


def fire_times_skipped(reason: str, n: int = 1) -> None:
    if n > 0:
        _SKIPPED[reason].inc(n)


# -- runs ---------------------------------------------------------------------


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
