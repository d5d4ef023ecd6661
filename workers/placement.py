"""Where the worker runs what it is given: pure decisions, no threads.

A single run of a kind (module and inputs) seen to take less than
``INLINE_BELOW`` runs on the caller's thread, the worker's event loop:
handing it to a pool thread and back costs more than the run. It must be due
already (a run sent ahead waits on the pool, never on the loop) and its
module compiled (compiling is not tiny). Mispredicted, it is stopped after
``INLINE_BUDGET`` (plus up to a tick) and run again, from the start, on the
pool. Several runs of one call go to the pool in lanes, one per slot used:
each lane takes its share one after another, in due order.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks_app.run_times import Kind
from workers.runs import RunRequest

INLINE_BELOW = 0.001
INLINE_BUDGET = 0.005


def kind_of(request: RunRequest) -> Kind:
    """What makes runs alike in how long they take."""
    return (request.module_hash, request.input, request.difficulty)


def runs_inline(typical: float | None, *, not_before: float, now: float, cached: bool) -> bool:
    """Whether a run alone in its call runs on the caller's thread: its kind
    is seen to take ``typical`` seconds (None: never seen), it is due at
    ``not_before`` (``now`` on the same clock), its module is ``cached``."""
    return typical is not None and typical < INLINE_BELOW and not_before <= now and cached


def inline_budget(limit: float) -> float:
    """How long a run taken for tiny may go on the caller's thread, for a
    run of time limit ``limit``."""
    return min(limit, INLINE_BUDGET)


def ran_over_budget(state: str, budget: float, limit: float) -> bool:
    """Whether an inline run that ended in ``state`` was cut by its budget
    rather than its own limit: not tiny after all, to be run on the pool."""
    return state == "timed_out" and budget < limit


def lanes(not_before: Sequence[float], slots: int) -> list[list[int]]:
    """Indexes of a call's runs (due at ``not_before``) dealt to at most
    ``slots`` lanes: in due order, the earliest one to each lane, then the
    next ones likewise, so each lane runs its share in due order and the
    earliest runs start side by side."""
    order = sorted(range(len(not_before)), key=not_before.__getitem__)
    count = min(slots, len(not_before))
    return [order[k::count] for k in range(count)]
