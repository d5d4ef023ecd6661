"""The runs a scheduler holds, in lanes: one lane per route (queue and
constraints, `tasks_app.policy.Route`), bounded together by a window (the
rest wait in the database).

In a lane, runs not yet due wait by due time; once due (up to `lead`
early) they are ready, and ready runs go out by `policy.ready_order`:
higher priority first, then earlier due, retries before first tries due at
the same moment, then arrival. A run of a lane no worker serves waits
there without holding up the lanes behind it (no head-of-line blocking):
the scheduler asks `due_lanes` for the lanes it may serve, best first.

Priority orders the runs held here (up to the window); runs beyond it
wait in the database and are read by due time. When trimming, runs of
lanes no worker serves are let go of first, so that they do not fill the
window (a backlog of more than twice the window of them can still keep
the database's later runs unread until a worker for them joins); then,
of the runs already due, the lower priority ones (a run of priority 100
announced behind a backlog of due runs stays held and goes first); then
the latest due.

Pure data: no clock, no database, no workers (whether a lane is served
is the caller's `serves`)."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import TypeVar

from tasks_app.policy import Route
from tasks_app.selectors import DueRun

Serves = Callable[[Route], bool]
W = TypeVar("W")

# (due, 0 for a retry / 1 for a first try, arrival, run)
_Waiting = tuple[datetime, int, int, DueRun]
# (-priority, due, 0 for a retry / 1 for a first try, arrival, run): policy.ready_order
_Ready = tuple[int, datetime, int, int, DueRun]


def _everywhere(route: Route) -> bool:
    return True


class Lane:
    """The held runs of one route."""

    __slots__ = ("ready", "route", "waiting")

    def __init__(self, route: Route) -> None:
        self.route = route
        self.waiting: list[_Waiting] = []
        self.ready: list[_Ready] = []

    def __len__(self) -> int:
        return len(self.waiting) + len(self.ready)

    def promote(self, cutoff: datetime) -> None:
        """Runs due by `cutoff` become ready."""
        waiting, ready = self.waiting, self.ready
        while waiting and waiting[0][0] <= cutoff:
            due, retry, arrival, run = heapq.heappop(waiting)
            heapq.heappush(ready, (-run.priority, due, retry, arrival, run))

    def earliest(self) -> datetime | None:
        """A due time by which the lane has a run to send (a ready run's,
        which was due when it became ready; else the earliest waiting)."""
        if self.ready:
            return self.ready[0][1]
        return self.waiting[0][0] if self.waiting else None

    def best(self) -> tuple[int, datetime, int, int] | None:
        """The ready head's place in `policy.ready_order`."""
        if not self.ready:
            return None
        priority, due, retry, arrival, _ = self.ready[0]
        return (priority, due, retry, arrival)

    def entries(self) -> Iterator[_Waiting]:
        yield from self.waiting
        for _, due, retry, arrival, run in self.ready:
            yield (due, retry, arrival, run)


class RunQueue:
    def __init__(self, *, window: int, serves: Serves | None = None) -> None:
        self.window = max(window, 1)
        # Runs may wait in the database beyond what is held here.
        self.overflow = False
        # Which lanes some worker may take runs of: the others are passed
        # over (their runs wait), and let go of first when trimming.
        self.serves: Serves = serves or _everywhere
        self._lanes: dict[Route, Lane] = {}
        self._ids: set[int] = set()
        self._size = 0
        self._seq = itertools.count()

    def __len__(self) -> int:
        return self._size

    def __contains__(self, iteration_id: int) -> bool:
        return iteration_id in self._ids

    def __iter__(self) -> Iterator[DueRun]:
        return (entry[-1] for lane in list(self._lanes.values()) for entry in lane.entries())

    def lanes(self) -> list[Lane]:
        return list(self._lanes.values())

    def room(self) -> int:
        return self.window - self._size

    def push(self, run: DueRun, *, retry: bool = False) -> bool:
        """Hold `run` (once): False if it is held already."""
        if run.iteration_id in self._ids:
            return False
        self._ids.add(run.iteration_id)
        lane = self._lanes.get(run.route)
        if lane is None:
            lane = self._lanes[run.route] = Lane(run.route)
        heapq.heappush(lane.waiting, (run.due_at, 0 if retry else 1, next(self._seq), run))
        self._size += 1
        return True

    # -- what is due, and where -----------------------------------------------

    def head_due(self) -> datetime | None:
        """When the next run of a served lane is due (None: none held)."""
        serves = self.serves
        earliest: datetime | None = None
        for lane in self._lanes.values():
            due = lane.earliest()
            if due is not None and (earliest is None or due < earliest) and serves(lane.route):
                earliest = due
        return earliest

    def is_due(self, now: datetime, *, lead: timedelta = timedelta(0)) -> bool:
        """Whether a run of a served lane is due by `now` (sent up to `lead` early)."""
        due = self.head_due()
        return due is not None and due - lead <= now

    def due_lanes(self, now: datetime, *, lead: timedelta = timedelta(0)) -> list[Lane]:
        """The served lanes with a run due by `now` (up to `lead` early),
        the lane of the best ready run first (`policy.ready_order`)."""
        cutoff = now + lead
        serves = self.serves
        if len(self._lanes) == 1:  # the common case (seed-form runs only): no sorting
            [lane] = self._lanes.values()
            lane.promote(cutoff)
            return [lane] if lane.ready and serves(lane.route) else []
        found: list[tuple[tuple[int, datetime, int, int], Lane]] = []
        for lane in self._lanes.values():
            lane.promote(cutoff)
            best = lane.best()
            if best is not None and serves(lane.route):
                found.append((best, lane))
        if len(found) > 1:
            found.sort(key=lambda pair: pair[0])
        return [lane for _, lane in found]

    def head(self, lane: Lane) -> DueRun | None:
        """The ready run `lane` sends next; None: none ready."""
        return lane.ready[0][-1] if lane.ready else None

    def pop(self, lane: Lane) -> DueRun | None:
        """Take the ready run `lane` sends next."""
        if not lane.ready:
            return None
        run = heapq.heappop(lane.ready)[-1]
        self._taken(lane, run)
        return run

    def pop_due(self, now: datetime, *, lead: timedelta = timedelta(0)) -> DueRun | None:
        """The best ready run of the served lanes, if one is due by `now`
        (sent up to `lead` early)."""
        lanes = self.due_lanes(now, lead=lead)
        return self.pop(lanes[0]) if lanes else None

    def _taken(self, lane: Lane, run: DueRun) -> None:
        self._ids.discard(run.iteration_id)
        self._size -= 1
        if not lane:
            del self._lanes[lane.route]

    # -- letting go -------------------------------------------------------------

    def drop_task(self, task_id: str) -> int:
        """Forget every run of a task; how many."""
        dropped = 0
        for lane in list(self._lanes.values()):
            waiting = [entry for entry in lane.waiting if entry[-1].task_id != task_id]
            ready = [entry for entry in lane.ready if entry[-1].task_id != task_id]
            gone = len(lane) - len(waiting) - len(ready)
            if not gone:
                continue
            dropped += gone
            for run in (entry[-1] for entry in lane.entries()):
                if run.task_id == task_id:
                    self._ids.discard(run.iteration_id)
            heapq.heapify(waiting)
            heapq.heapify(ready)
            lane.waiting, lane.ready = waiting, ready
            if not lane:
                del self._lanes[lane.route]
        self._size -= dropped
        return dropped

    def trim(self, now: datetime | None = None) -> int:
        """Past twice the window, keep the window's worth of runs of served
        lanes, then of the others (the rest wait in the database, and
        `overflow` says so): of those due by `now`, the highest priority
        first, then the earliest due. A run due now thus always gets in,
        whatever far-off backlog, or backlog no worker takes, is held.
        Returns how many were let go."""
        if self._size <= 2 * self.window:
            return 0
        serves = self.serves

        def rank(served: bool, entry: _Waiting) -> tuple[bool, bool, int, datetime, int, int]:
            due, retry, arrival, run = entry
            is_due = now is not None and due <= now
            return (not served, not is_due, -run.priority if is_due else 0, due, retry, arrival)

        ranked = (
            (rank(served, entry), entry)
            for lane in self._lanes.values()
            for served in (serves(lane.route),)
            for entry in lane.entries()
        )
        kept = [entry for _, entry in heapq.nsmallest(self.window, ranked, key=lambda e: e[0])]
        dropped = self._size - len(kept)
        self._lanes = {}
        self._ids = set()
        self._size = 0
        for due, retry, arrival, run in kept:
            lane = self._lanes.get(run.route)
            if lane is None:
                lane = self._lanes[run.route] = Lane(run.route)
            lane.waiting.append((due, retry, arrival, run))
            self._ids.add(run.iteration_id)
            self._size += 1
        for lane in self._lanes.values():
            heapq.heapify(lane.waiting)
        self.overflow = True
        return dropped


def first_taken(
    lanes: Iterable[Lane], take: Callable[[Lane, int], W | None], room: Callable[[DueRun], int]
) -> tuple[Lane, W, int] | None:
    """The lane choice: the first of `lanes` (best first, as `due_lanes`
    gives them) for which `take` finds a place on a worker, given how many
    runs per slot its head run may wait there (`room`); with that place and
    that number. None: every worker that could take one is full. Costs one
    `take` per due lane at most: a lane whose workers are busy, or absent,
    never holds up one behind it."""
    for lane in lanes:
        if not lane.ready:
            continue
        queue = room(lane.ready[0][-1])
        worker = take(lane, queue)
        if worker is not None:
            return lane, worker, queue
    return None
