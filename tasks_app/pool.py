"""The gateway's live worker pool: who is connected, what each serves (its
queues and labels), how many runs each has in flight, and handing out free
slots (least in flight first) on the workers that accept a run's route."""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tasks_app import policy
from tasks_app.balance import Load, least_in_flight
from tasks_app.dispatch import WorkerLink
from tasks_app.policy import DEFAULT_ROUTE, Route

_MODULES_REMEMBERED = 1024  # per worker
_PEERS_REMEMBERED = 10_000  # fault counts


@dataclass(eq=False)
class PooledWorker:
    key: int
    peer_id: str
    address: str
    concurrency: int
    link: WorkerLink | None  # how runs reach it; None once removed
    connection: int  # the RPC connection it came over
    joined: int
    # What it serves (`runworker --queues`, `--labels`): only runs of these
    # queues, with constraints its labels meet (policy.accepts), go to it.
    queues: frozenset[str] = frozenset({policy.DEFAULT_QUEUE})
    labels: dict[str, str] = field(default_factory=dict)
    in_flight: int = 0
    dispatched: int = 0
    draining: bool = False  # leaving gracefully: no new runs
    removed: bool = False
    faults: int = 0  # malformed answers so far
    # Modules it was sent runs of (most recent last): the only ones it may fetch.
    modules: OrderedDict[str, None] = field(default_factory=OrderedDict, repr=False)
    _gone: asyncio.Future[None] | None = field(default=None, repr=False)

    def given(self, module_hash: str) -> None:
        """It is being sent a run of this module (so it may fetch it)."""
        self.modules[module_hash] = None
        self.modules.move_to_end(module_hash)
        while len(self.modules) > _MODULES_REMEMBERED:
            self.modules.popitem(last=False)

    def gone(self) -> asyncio.Future[None]:
        """Done once the worker is removed from the pool. One future per
        worker, which every call on it waits on too (not a task per call)."""
        if self._gone is None:
            self._gone = asyncio.get_running_loop().create_future()
            if self.removed:
                self._gone.set_result(None)
        return self._gone

    def mark_removed(self) -> None:
        self.removed = True
        if self._gone is not None and not self._gone.done():
            self._gone.set_result(None)

    def accepts(self, route: Route) -> bool:
        return policy.accepts(queues=self.queues, labels=self.labels, route=route)

    def capacity(self, queue: int) -> int:
        """Runs it may hold: one per slot, plus `queue` per slot waiting there."""
        return self.concurrency * (1 + max(queue, 0))

    def load(self, *, queue: int) -> Load:
        return Load(
            key=self.key,
            in_flight=self.in_flight,
            concurrency=self.capacity(queue),
            dispatched=self.dispatched,
            joined=self.joined,
        )


class WorkerPool:
    """Callers say how many runs per slot may wait queued on a worker
    (`queue`): 0 for a run that needs a free slot, more for short runs, like
    Celery's prefetch (a slot then never idles for a round trip)."""

    def __init__(self, *, on_evict: Callable[[PooledWorker, str], None] | None = None) -> None:
        self._on_evict = on_evict
        self._faults: OrderedDict[str, int] = OrderedDict()  # by peer ID, most recent last
        self._workers: dict[int, PooledWorker] = {}
        self._keys = itertools.count(1)
        self._changed = asyncio.Event()
        # Whether some worker accepts a route, by route: forgotten whenever
        # who is in the pool (or draining) changes.
        self._serves: dict[Route, bool] = {}
        self._listeners: list[Callable[[], None]] = []

    def __len__(self) -> int:
        return len(self._workers)

    def __iter__(self) -> Iterator[PooledWorker]:
        return iter(list(self._workers.values()))

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever a worker joins, leaves or frees a slot."""
        self._listeners.append(callback)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()
        for callback in self._listeners:
            callback()

    def _members_changed(self) -> None:
        self._serves.clear()
        self._notify()

    def serves(self, route: Route) -> bool:
        """Whether a worker in the pool, not leaving, accepts runs of `route`."""
        served = self._serves.get(route)
        if served is None:
            served = self._serves[route] = any(
                not w.draining and w.accepts(route) for w in self._workers.values()
            )
        return served

    def add(
        self,
        *,
        peer_id: str,
        address: str,
        concurrency: int,
        link: WorkerLink,
        connection: int,
        queues: frozenset[str] = frozenset({policy.DEFAULT_QUEUE}),
        labels: dict[str, str] | None = None,
    ) -> PooledWorker:
        key = next(self._keys)
        worker = PooledWorker(
            key=key,
            peer_id=peer_id,
            address=address,
            concurrency=max(concurrency, 1),
            link=link,
            connection=connection,
            joined=key,
            queues=queues,
            labels=dict(labels or {}),
        )
        self._workers[key] = worker
        self._members_changed()
        return worker

    def remove(self, worker: PooledWorker) -> bool:
        """Forget a worker; runs in flight on it end by themselves (their
        calls fail). True if it was in the pool."""
        removed = self._workers.pop(worker.key, None) is not None
        worker.link = None  # let go of it (a Cap'n Proto capability must not outlive its loop)
        worker.mark_removed()
        if removed:
            self._members_changed()
        return removed

    def fault(self, worker: PooledWorker) -> int:
        """Count a malformed answer against the worker's peer ID (kept
        across its reconnections); returns its count so far."""
        count = self._faults.pop(worker.peer_id, 0) + 1
        self._faults[worker.peer_id] = count
        while len(self._faults) > _PEERS_REMEMBERED:
            self._faults.popitem(last=False)
        worker.faults = count
        return count

    def faults_of(self, peer_id: str) -> int:
        return self._faults.get(peer_id, 0)

    def evict(self, worker: PooledWorker, reason: str) -> None:
        """Remove a worker the scheduler gave up on and have its connection
        closed (`on_evict`), so that it starts over and offers itself again
        rather than waiting, connected, for calls that never come."""
        if self.remove(worker) and self._on_evict is not None:
            self._on_evict(worker, reason)

    def on_connection(self, connection: int) -> list[PooledWorker]:
        return [w for w in self._workers.values() if w.connection == connection]

    def contains(self, worker: PooledWorker) -> bool:
        return self._workers.get(worker.key) is worker

    def try_acquire(self, *, queue: int = 0, route: Route = DEFAULT_ROUTE) -> PooledWorker | None:
        """A place on the least busy worker accepting `route`, if one has a
        free one."""
        choice = least_in_flight(
            w.load(queue=queue)
            for w in self._workers.values()
            if not w.draining and w.accepts(route)
        )
        if choice is None:
            return None
        worker = self._workers[choice.key]
        worker.in_flight += 1
        worker.dispatched += 1
        return worker

    async def acquire(self, *, queue: int = 0) -> PooledWorker:
        """A place on the least busy worker, waiting until there is one."""
        while True:
            changed = self._changed
            worker = self.try_acquire(queue=queue)
            if worker is not None:
                return worker
            await changed.wait()

    def take_more(self, worker: PooledWorker, *, queue: int, most: int) -> int:
        """Up to `most` more places on `worker` (for a batch); how many."""
        n = max(min(most, worker.capacity(queue) - worker.in_flight), 0)
        worker.in_flight += n
        worker.dispatched += n
        return n

    def release(self, worker: PooledWorker, n: int = 1) -> None:
        worker.in_flight = max(worker.in_flight - n, 0)
        self._notify()

    async def drain(self, connection: int) -> int:
        """Give the workers of one connection no new runs and wait until
        none of them has a run in flight. Returns how many workers."""
        workers = self.on_connection(connection)
        for worker in workers:
            worker.draining = True
        if workers:
            self._members_changed()
        while True:
            changed = self._changed
            if all(w.in_flight == 0 or not self.contains(w) for w in workers):
                return len(workers)
            await changed.wait()

    def clear(self) -> None:
        for worker in list(self._workers.values()):
            self.remove(worker)
