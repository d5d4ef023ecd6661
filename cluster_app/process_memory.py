"""The gateway's memory, given back: what a burst (a flood of connections,
slow websocket readers, big answers) allocated goes back to the system
once it is freed, so the process returns near its baseline after an attack
instead of keeping its peak for good. glibc only; elsewhere the allocator
has its own policy and these do nothing."""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
from typing import Any

log = logging.getLogger("ww.gateway")

TRIM_INTERVAL = 10.0  # s


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


# glibc's mallopt parameter: blocks at least this large are mmap()ed.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def return_large_blocks_to_the_system() -> None:
    """Make memory freed after a burst go back to the system. Every TLS
    connection holds a 256 KiB buffer (asyncio's); glibc raises its mmap
    threshold the first time such a block is freed, after which these come
    from the heap and, freed, stay in the process (a flood of connections
    left its RSS up by their whole size). A fixed threshold keeps blocks
    of 128 KiB and more mapped on their own, unmapped when freed."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return  # not glibc
    if not mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD):
        log.warning("could not set malloc's mmap threshold; memory freed after a flood may stay")


def trim_free_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc keeps freed
    blocks below the mmap threshold: a burst of 64 KiB run events left
    the gateway ~150 MB above its baseline). True if glibc released any."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    return bool(malloc_trim(0)) if malloc_trim is not None else False


async def trim_now_and_then(interval: float = TRIM_INTERVAL) -> None:
    """Trim every `interval` seconds, until cancelled (a few milliseconds a
    time, on the loop: the heap is walked under glibc's lock)."""
    while True:
        await asyncio.sleep(interval)
        trim_free_memory()
