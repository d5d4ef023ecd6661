"""Replay protection for boot packets: is this stamp fresh, and newer than the last one?

A signed packet proves who sent it, not when. Anyone on the multicast group can
record a packet and send it again later: an old ``response`` announcing
addresses the peer no longer has, or a flood of copies of a survey. Every packet
carries its sender's wall-clock ``stamp_ms`` inside the signed payload, so a
receiver accepts a packet only if

1. the stamp is within ``window_ms`` of the receiver's clock (either way: clocks
   of different hosts differ a little), and
2. the stamp is newer than the last one it accepted from the same peer.

Rule 2 needs memory per peer; it is bounded (least recently heard peers are
forgotten first), and rule 1 still bounds what a forgotten peer's replays can
do: nothing older than the window gets in. Pure: the caller passes the clock.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

DEFAULT_WINDOW_MS = 30_000
DEFAULT_MAX_PEERS = 4096

ReplayReason = Literal["stale", "future", "replayed"]


@dataclass(frozen=True)
class Rejected:
    """Why a packet was not fresh; ``str()`` is the line casm_ls prints."""

    reason: ReplayReason
    peer: str
    stamp_ms: int
    reference_ms: int  # local clock for stale/future, last accepted stamp for replayed
    window_ms: int

    def __str__(self) -> str:
        if self.reason == "replayed":
            return (
                f"replayed packet (stamp {self.stamp_ms} not newer than "
                f"{self.reference_ms}) from {self.peer}"
            )
        skew = abs(self.stamp_ms - self.reference_ms) / 1000
        where = "behind" if self.reason == "stale" else "ahead of"
        return (
            f"{self.reason} packet (stamp {self.stamp_ms} is {skew:.1f} s {where} "
            f"local clock, window ±{self.window_ms / 1000:g} s) from {self.peer}"
        )


class ReplayGuard:
    """Remembers the newest accepted stamp of up to ``max_peers`` peers."""

    def __init__(
        self, *, window_ms: int = DEFAULT_WINDOW_MS, max_peers: int = DEFAULT_MAX_PEERS
    ) -> None:
        if window_ms <= 0:
            raise ValueError(f"replay window must be positive, got {window_ms!r}")
        if max_peers < 1:
            raise ValueError(f"max_peers must be at least 1, got {max_peers!r}")
        self.window_ms = window_ms
        self.max_peers = max_peers
        self._last: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._last)

    def last_stamp(self, peer: str) -> int | None:
        """The newest stamp accepted from ``peer``, if it is still remembered."""
        return self._last.get(peer)

    def check(self, peer: str, stamp_ms: int, now_ms: int) -> Rejected | None:
        """None (and remember the stamp) if the packet is fresh, else why it is not."""
        verdict = check_window(peer, stamp_ms, now_ms, self.window_ms)
        if verdict is not None:
            return verdict
        with self._lock:
            last = self._last.get(peer)
            if last is not None and stamp_ms <= last:
                return Rejected("replayed", peer, stamp_ms, last, self.window_ms)
            self._last[peer] = stamp_ms
            self._last.move_to_end(peer)
            while len(self._last) > self.max_peers:
                self._last.popitem(last=False)
        return None


def check_window(peer: str, stamp_ms: int, now_ms: int, window_ms: int) -> Rejected | None:
    """Rule 1 alone: None if ``stamp_ms`` is within ``window_ms`` of ``now_ms``."""
    if stamp_ms < now_ms - window_ms:
        return Rejected("stale", peer, stamp_ms, now_ms, window_ms)
    if stamp_ms > now_ms + window_ms:
        return Rejected("future", peer, stamp_ms, now_ms, window_ms)
    return None


class StampClock:
    """Strictly increasing millisecond stamps for one sender.

    Two packets sent within the same millisecond would otherwise carry equal
    stamps, and receivers would drop the second as a replay.
    """

    def __init__(self) -> None:
        self._last = 0
        self._lock = threading.Lock()

    def next(self, now_ms: int) -> int:
        with self._lock:
            self._last = max(now_ms, self._last + 1)
            return self._last
