"""WASI host calls that could wait, bounded by the run's deadline and cancel.

Epoch interruption stops a module only while its own code runs: inside a
host call the deadline is never checked, so one ``poll_oneoff`` with an hour's
clock outlived both its time limit and a cancel. Of WASI preview 1 as this
sandbox configures it (no preopened directories or sockets, stdin the
task's bytes held in memory, stdout and stderr into bounded in-memory
sinks), ``poll_oneoff`` is the one call that waits: ``fd_read`` on stdin
answers at once (the bytes, then end of file), ``fd_write``
lands in a sink, ``sched_yield`` only yields the thread, and every other
descriptor is EBADF. So ``poll_oneoff`` is shadowed here by one that answers
as wasmtime's does, but sleeps on the run's :class:`RunControl`: it wakes on
cancel and ends the run at its deadline (the trap it returns becomes the
run's ``cancelled`` or ``timed_out``).

The host function is a raw C callback (``workers.compat_wasmtime.HostFunc``)
rather than wasmtime-py's ``Linker.define_func``: that one hands a Python
exception to the caller through a single process-wide slot, which concurrent
runs on other threads could pick up as their own.
"""

from __future__ import annotations

import ctypes
import struct
import time

import wasmtime

from tasks_app.run_control import RunStopped, current
from workers.compat_wasmtime import HostFunc, HostTrap, shadow

WASI_MODULE = "wasi_snapshot_preview1"

ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_FAULT = 21
ERRNO_INVAL = 28

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2
SUBCLOCKFLAGS_ABSTIME = 1

STDIN = 0
OUTPUTS = (1, 2)  # stdout, stderr

# subscription (48 bytes): userdata u64, tag u8, then at offset 16 either
# clock {id u32, timeout u64 @24, precision u64 @32, flags u16 @40} or fd u32.
_SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
# event (32 bytes): userdata u64, error u16, type u8, fd_readwrite {nbytes u64 @16, flags u16 @24}.
_EVENT = struct.Struct("<QHB5xQH6x")


def bound_blocking_calls(linker: wasmtime.Linker) -> None:
    """Replace the WASI calls of ``linker`` (which has WASI defined) that
    could wait past a run's deadline. Runs of modules instantiated through it
    must execute inside :func:`tasks_app.run_control.running`."""
    shadow(linker, WASI_MODULE, _POLL_ONEOFF)


def poll_oneoff(
    memory: int, size: int, in_ptr: int, out_ptr: int, count: int, nevents_ptr: int
) -> int:
    """WASI ``poll_oneoff`` over the ``size`` bytes at address ``memory``;
    returns an errno, or raises :class:`RunStopped` when the run must end."""
    if count == 0:
        return ERRNO_INVAL
    if (
        in_ptr + count * _SUBSCRIPTION.size > size
        or out_ptr + count * _EVENT.size > size
        or nevents_ptr + 4 > size
    ):
        return ERRNO_FAULT
    control = current()
    if control is None:  # only ever called inside a run; refuse rather than wait unbounded
        raise RunStopped("cancelled")
    raw = ctypes.string_at(memory + in_ptr, count * _SUBSCRIPTION.size)
    now = time.monotonic()
    ready: list[bytes] = []  # events of descriptors: all of ours are ready at once
    clocks: list[tuple[int, float]] = []  # (userdata, time.monotonic() when due)
    for userdata, tag, ident, timeout, _precision, flags in _SUBSCRIPTION.iter_unpack(raw):
        if tag == EVENTTYPE_CLOCK:
            if ident == CLOCK_REALTIME:
                wait_ns = timeout - time.time_ns() if flags & SUBCLOCKFLAGS_ABSTIME else timeout
            elif ident == CLOCK_MONOTONIC:
                elapsed = time.monotonic_ns() - control.clock_origin_ns
                wait_ns = timeout - elapsed if flags & SUBCLOCKFLAGS_ABSTIME else timeout
            else:
                return ERRNO_INVAL  # wasmtime has no CPU-time clocks either
            clocks.append((userdata, now + max(0, wait_ns) / 1e9))
        elif tag == EVENTTYPE_FD_READ:
            if ident != STDIN:
                return ERRNO_BADF
            ready.append(_EVENT.pack(userdata, ERRNO_SUCCESS, tag, 1, 0))
        elif tag == EVENTTYPE_FD_WRITE:
            if ident not in OUTPUTS:
                return ERRNO_BADF
            ready.append(_EVENT.pack(userdata, ERRNO_SUCCESS, tag, 1, 0))
        else:
            return ERRNO_INVAL
    if not ready:
        control.wait_until(min(due for _, due in clocks))
    now = time.monotonic()
    events = ready + [
        _EVENT.pack(userdata, ERRNO_SUCCESS, EVENTTYPE_CLOCK, 0, 0)
        for userdata, due in clocks
        if due <= now
    ]
    out = b"".join(events)
    ctypes.memmove(memory + out_ptr, out, len(out))
    ctypes.memmove(memory + nevents_ptr, struct.pack("<I", len(events)), 4)
    return ERRNO_SUCCESS


def _poll_oneoff_host(memory: int, size: int, args: tuple[int, ...]) -> int:
    in_ptr, out_ptr, count, nevents_ptr = args
    try:
        return poll_oneoff(memory, size, in_ptr, out_ptr, count, nevents_ptr)
    except RunStopped as stop:
        raise HostTrap(stop.reason) from stop


_POLL_ONEOFF = HostFunc("poll_oneoff", 4, _poll_oneoff_host)
