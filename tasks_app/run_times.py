"""How long runs of each kind took lately. The gateway's scheduler asks
(which runs may queue on a worker) and so does a worker's executor (which
runs are tiny enough to run on its event loop)."""

from __future__ import annotations

from collections import OrderedDict

# Runs alike in how long they take: same module (hash), same input, same difficulty.
Kind = tuple[str, int, int]


class RunTimes:
    """A moving average of run time per kind, for the `capacity` kinds seen
    most recently."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._seconds: OrderedDict[Kind, float] = OrderedDict()

    def learn(self, kind: Kind, seconds: float) -> None:
        previous = self._seconds.pop(kind, None)
        self._seconds[kind] = seconds if previous is None else 0.7 * previous + 0.3 * seconds
        while len(self._seconds) > self._capacity:
            self._seconds.popitem(last=False)

    def typical(self, kind: Kind) -> float | None:
        """The kind's average, or None for a kind not seen (lately)."""
        return self._seconds.get(kind)

    def forget(self, kind: Kind) -> None:
        self._seconds.pop(kind, None)
