"""What a run prints and what a worker sends back, bounded.

A module's stdout and stderr go to in-memory sinks that keep only their
first (stdout) or last (stderr) bytes, so a module printing without end can
fill neither the worker's disk nor its memory. Every text a worker sends
back (a run's result, its error, its stderr) and a binary result are then
cut to a configured number of bytes (``WW_RESULT_MAX_BYTES``), so an honest
worker never sends the gateway a bigger answer than it accepts.

A WASI command's stdout goes back as text when it is UTF-8 (a character cut
in two by the bound does not make it binary), else as the bytes themselves;
stderr always as text, invalid UTF-8 replaced.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Literal

TRUNCATED_MARKER = "…[truncated]"
TAIL_MARKER = "…"  # before a tail whose beginning was dropped


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

    def tail_text(self, limit: int) -> str:
        """The last ``limit`` bytes kept, as text (invalid UTF-8 replaced),
        marked when more came before them."""
        data = bytes(self.data[-limit:])
        text = data.decode("utf-8", errors="replace")
        return TAIL_MARKER + text if self.total > len(data) else text

    def text(self) -> str:
        text = bytes(self.data).decode("utf-8", errors="replace")
        if self.total <= self.limit:
            return text
        return text + TRUNCATED_MARKER if self.keep == "head" else TAIL_MARKER + text


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


def stderr_text(sink: Sink, limit: int) -> str:
    """A tail sink's bytes as text (invalid UTF-8 replaced), within ``limit``
    bytes of UTF-8; marked at its start when anything before was dropped."""
    data = bytes(sink.data)
    cut = sink.total > len(data)
    if cut:  # kept from the middle of a character: start at the next one
        skip = 0
        while skip < min(3, len(data)) and data[skip] & 0xC0 == 0x80:
            skip += 1
        data = data[skip:]
    text = data.decode("utf-8", errors="replace")
    encoded = text.encode()
    if not cut and len(encoded) <= limit:
        return text
    room = limit - len(TAIL_MARKER.encode())
    if room <= 0:
        return ""
    return TAIL_MARKER + encoded[-room:].decode("utf-8", errors="ignore")


@dataclass(frozen=True)
class Output:
    """What a WASI command printed, as a worker sends it back."""

    text: str = ""  # stdout, when it is UTF-8
    data: bytes | None = None  # stdout, when it is not
    truncated: bool = False  # stdout was cut (then a text ends with TRUNCATED_MARKER)
    stderr: str = ""


def command_output(stdout: Sink, stderr: Sink, limit: int) -> Output:
    """The sinks' contents, each within ``limit`` bytes."""
    kept = bytes(stdout.data)
    cut = stdout.total > len(kept)
    err = stderr_text(stderr, limit)
    text = _utf8(kept, complete=not cut)
    if text is None:
        return Output(data=kept[:limit], truncated=cut or len(kept) > limit, stderr=err)
    marked = text + TRUNCATED_MARKER if cut else text
    result = capped(marked, limit)
    return Output(text=result, truncated=cut or result != marked, stderr=err)


def _utf8(data: bytes, *, complete: bool) -> str | None:
    """``data`` as text if it is UTF-8 (when not ``complete``, a last
    character cut short is dropped); None if it is not."""
    try:
        return codecs.getincrementaldecoder("utf-8")().decode(data, final=complete)
    except UnicodeDecodeError:
        return None
