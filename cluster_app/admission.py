"""Admission of network connections: how many one source address may hold
at once, and log lines a flood cannot multiply.

Pure bookkeeping, no sockets: the RPC listener (`cluster_app.rpc`) and the
HTTP server's guard (`cluster_app.http_guard`) count their connections here.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class PerSourceLimit:
    """At most `limit` connections at once per source address (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._held: dict[str, int] = {}

    def acquire(self, source: str) -> bool:
        """Count one more connection from `source`, or refuse it (False)."""
        held = self._held.get(source, 0)
        if self.limit > 0 and held >= self.limit:
            return False
        self._held[source] = held + 1
        return True

    def release(self, source: str) -> None:
        held = self._held.get(source, 0) - 1
        if held > 0:
            self._held[source] = held
        else:
            # Forget sources at zero: the table is as large as the live
            # connections, not as every address ever seen.
            self._held.pop(source, None)

    def held(self, source: str) -> int:
        return self._held.get(source, 0)

    def __len__(self) -> int:
        return len(self._held)


class LogThrottle:
    """Lets `burst` lines per key through in each `interval` seconds and
    counts the ones held back, so a flood shows as a few lines with counts
    while the odd refusal is still logged every time."""

    def __init__(
        self, interval: float = 10.0, burst: int = 5, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self.burst = burst
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key: (window start, lines let through)
        self._held_back: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: stay quiet. Otherwise log now; the number is how many lines
        of this key were held back before this one."""
        now = self._clock()
        start, passed = self._windows.get(key, (now, 0))
        if now - start >= self.interval:
            start, passed = now, 0
        if passed >= self.burst:
            self._held_back[key] = self._held_back.get(key, 0) + 1
            return None
        if len(self._windows) > 4096:  # keys may be addresses: keep the tables bounded
            self._windows.clear()
            self._held_back.clear()
        self._windows[key] = (start, passed + 1)
        return self._held_back.pop(key, 0)
