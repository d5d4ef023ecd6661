"""The runs a scheduler holds, earliest due first: a heap with the set of
its run ids, bounded by a window (the rest wait in the database).

Among runs due at the same moment, retries go first, then arrival order.
Pure data: no clock, no database, no workers."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta

from tasks_app.selectors import DueRun

# (due, 0 for a retry / 1 for a first try, arrival, run)
_Entry = tuple[datetime, int, int, DueRun]


class RunQueue:
    def __init__(self, *, window: int) -> None:
        self.window = max(window, 1)
        # Runs may wait in the database beyond what is held here.
        self.overflow = False
        self._heap: list[_Entry] = []
        self._ids: set[int] = set()
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def __contains__(self, iteration_id: int) -> bool:
        return iteration_id in self._ids

    def __iter__(self) -> Iterator[DueRun]:
        return (entry[-1] for entry in self._heap)

    def room(self) -> int:
        return self.window - len(self._heap)

    def push(self, run: DueRun, *, retry: bool = False) -> bool:
        """Hold `run` (once): False if it is held already."""
        if run.iteration_id in self._ids:
            return False
        self._ids.add(run.iteration_id)
        heapq.heappush(self._heap, (run.due_at, 0 if retry else 1, next(self._seq), run))
        return True

    def head(self) -> DueRun | None:
        return self._heap[0][-1] if self._heap else None

    def head_due(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def is_due(self, now: datetime, *, lead: timedelta = timedelta(0)) -> bool:
        """Whether the head run is due by `now` (sent up to `lead` early)."""
        return bool(self._heap) and self._heap[0][0] - lead <= now

    def pop_due(self, now: datetime, *, lead: timedelta = timedelta(0)) -> DueRun | None:
        """The head run, if it is due by `now` (sent up to `lead` early)."""
        if not self.is_due(now, lead=lead):
            return None
        run = heapq.heappop(self._heap)[-1]
        self._ids.discard(run.iteration_id)
        return run

    def drop_task(self, task_id: str) -> int:
        """Forget every run of a task; how many."""
        kept = [entry for entry in self._heap if entry[-1].task_id != task_id]
        dropped = len(self._heap) - len(kept)
        if dropped:
            heapq.heapify(kept)
            self._heap = kept
            self._ids = {entry[-1].iteration_id for entry in kept}
        return dropped

    def trim(self) -> int:
        """Past twice the window, keep the window's worth of the earliest
        due runs (the others wait in the database, and `overflow` says so).
        A run due now thus always gets in, whatever far-off backlog is held.
        Returns how many were let go."""
        if len(self._heap) <= 2 * self.window:
            return 0
        dropped = len(self._heap) - self.window
        self._heap = heapq.nsmallest(self.window, self._heap)  # sorted: a heap
        self._ids = {entry[-1].iteration_id for entry in self._heap}
        self.overflow = True
        return dropped
