"""What a run prints and what a worker sends back, bounded.

A module's stdout and stderr go to in-memory sinks that keep only their
first (stdout) or last (stderr) bytes, so a module printing without end can
fill neither the worker's disk nor its memory. Every text a worker sends
back (a run's result and its error) is then cut to a configured number of
UTF-8 bytes (``WW_RESULT_MAX_BYTES``), so an honest worker never sends the
gateway a bigger answer than it accepts.
"""

from __future__ import annotations

from typing import Literal

TRUNCATED_MARKER = "…[truncated]"


class Sink:
    """A WASI output stream kept in memory, bounded: its first or last ``limit`` bytes."""

    def __init__(self, limit: int, keep: Literal["head", "tail"]) -> None:
        self.limit = limit
        self.keep = keep
        self.data = bytearray()
        self.total = 0

    def write(self, chunk: bytes) -> int:
        # Called by wasmtime on the run's thread. Always report the whole chunk as
        # written, so the module sees an ordinary stream (like a pipe into `head`
        # that never closes) rather than an error it might turn into an exit code.
        self.total += len(chunk)
        if self.keep == "head":
            if len(self.data) < self.limit:
                self.data += chunk[: self.limit - len(self.data)]
        else:
            # Only the chunk's own tail can survive: never copy more than that.
            self.data = (self.data + chunk[-self.limit :])[-self.limit :]
        return len(chunk)

    def text(self) -> str:
        text = bytes(self.data).decode("utf-8", errors="replace")
        if self.total <= self.limit:
            return text
        return text + TRUNCATED_MARKER if self.keep == "head" else "…" + text


def capped(text: str, limit: int) -> str:
    """``text`` if its UTF-8 form fits in ``limit`` bytes, else its head cut on
    a character boundary and marked, the whole within ``limit`` bytes."""
    data = text.encode("utf-8", errors="replace")
    if len(data) <= limit:
        return text
    marker = TRUNCATED_MARKER.encode()
    room = max(0, limit - len(marker))
    if room == 0:
        return data[:limit].decode("utf-8", errors="ignore")
    return data[:room].decode("utf-8", errors="ignore") + TRUNCATED_MARKER
