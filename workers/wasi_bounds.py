"""WASI host calls that could wait, bounded by the run's deadline and cancel.

Epoch interruption stops a module only while its own code runs: inside a
host call the deadline is never checked, so one ``poll_oneoff`` with an hour's
clock outlived both its time limit and a cancel. Of WASI preview 1 as this
sandbox configures it (no preopened directories or sockets, stdin empty,
stdout and stderr into bounded in-memory sinks), ``poll_oneoff`` is the one
call that waits: ``fd_read`` on stdin sees end of file at once, ``fd_write``
lands in a sink, ``sched_yield`` only yields the thread, and every other
descriptor is EBADF. So ``poll_oneoff`` is shadowed here by one that answers
as wasmtime's does, but sleeps on the run's :class:`RunControl`: it wakes on
cancel and ends the run at its deadline (the trap it returns becomes the
run's ``cancelled`` or ``timed_out``).

The host function is a raw ctypes callback rather than wasmtime-py's
``Linker.define_func``: that one hands a Python exception to the caller
through a single process-wide slot, which concurrent runs on other threads
could pick up as their own.
"""

from __future__ import annotations

import ctypes
import struct
import time
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi

from tasks_app.run_control import RunStopped, current

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

_MEMORY = b"memory"


def bound_blocking_calls(linker: wasmtime.Linker) -> None:
    """Replace the WASI calls of ``linker`` (which has WASI defined) that
    could wait past a run's deadline. Runs of modules instantiated through it
    must execute inside :func:`tasks_app.run_control.running`."""
    linker.allow_shadowing = True
    i32 = wasmtime.ValType.i32()
    functype = wasmtime.FuncType([i32, i32, i32, i32], [i32])
    module, name = WASI_MODULE.encode(), b"poll_oneoff"
    error = ffi.wasmtime_linker_define_func(
        linker.ptr(),
        module,
        len(module),
        name,
        len(name),
        functype.ptr(),
        _poll_oneoff_callback,
        None,
        _no_finalizer,
    )
    linker.allow_shadowing = False
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


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


def _trap(message: str) -> int:
    text = message.encode()
    trap = ffi.wasmtime_trap_new(ctypes.cast(text, ctypes.POINTER(ctypes.c_char)), len(text))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


@ffi.wasmtime_func_callback_t
def _poll_oneoff_callback(
    env: Any, caller: Any, args: Any, nargs: int, results: Any, nresults: int
) -> int:
    try:
        item = ffi.wasmtime_extern_t()
        name = ctypes.cast(_MEMORY, ctypes.POINTER(ctypes.c_char))
        found = ffi.wasmtime_caller_export_get(caller, name, len(_MEMORY), ctypes.byref(item))
        if not found or item.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
            return _trap("poll_oneoff: the module exports no memory")
        context = ffi.wasmtime_caller_context(caller)
        memory = ctypes.byref(item.of.memory)
        base = ctypes.cast(ffi.wasmtime_memory_data(context, memory), ctypes.c_void_p).value or 0
        size = ffi.wasmtime_memory_data_size(context, memory)
        # Guest pointers are unsigned 32-bit addresses.
        in_ptr, out_ptr, count, nevents_ptr = (args[i].of.i32 & 0xFFFFFFFF for i in range(4))
        errno = poll_oneoff(base, size, in_ptr, out_ptr, count, nevents_ptr)
    except RunStopped as stop:
        return _trap(stop.reason)
    except Exception as exc:  # noqa: BLE001 - a bug here must end the run, never unwind through wasm
        return _trap(f"poll_oneoff failed: {exc}")
    results[0].kind = ffi.WASMTIME_I32
    results[0].of.i32 = errno
    return 0


_no_finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)
