"""wasmtime-py's private parts the worker relies on, in one guarded place.

The worker goes below wasmtime-py's public API in four spots, each for a
reason the public API cannot meet:

- the epoch deadline callback (wasmtime-py has only ``set_epoch_deadline``,
  which traps at the deadline; a run must also end on cancel, and go on
  otherwise, tick by tick);
- calling ``run(input, difficulty)`` and finding it by name straight through
  the C API (``Instance.exports`` lists every export and ``Func.__call__``
  looks the signature up and boxes each value on every call: half the cost
  of a short run);
- host functions defined as raw C callbacks (``Linker.define_func`` hands a
  Python exception back through one process-wide slot, which concurrent runs
  on other threads could pick up as their own).
- a WASI command's stdin given as bytes (wasmtime-py offers only a file,
  and a run's stdin has no business on the worker's disk).

They use ``wasmtime._ffi`` (the ctypes bindings), ``wasmtime._func.enter_wasm``
(how a call's trap becomes ``Trap`` or ``ExitTrap``), ``Store._context``,
``Instance._instance``, ``WasmtimeError._from_ptr`` and the handles' ``ptr()``.
None of that is promised to stay, so importing this module checks that the
installed wasmtime is the one this was written against (requirements.txt
pins it); on any other version it refuses to load, naming both, rather than
let a run crash the worker or misread a result. No other module touches
wasmtime's private names (tests/unit/test_compat_wasmtime.py checks both).
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

WRITTEN_FOR = "50.0.1"


class WasmtimeVersionError(ImportError):
    """The installed wasmtime is not the one this module was written for."""


def check_version(installed: str) -> None:
    if installed != WRITTEN_FOR:
        raise WasmtimeVersionError(
            f"workers/compat_wasmtime.py was written for wasmtime {WRITTEN_FOR} "
            f"(its private _ffi bindings, Store._context, Instance._instance, "
            f"_func.enter_wasm) but wasmtime {installed} is installed: install "
            f"wasmtime=={WRITTEN_FOR} (requirements.txt), or check each use in "
            f"this module against {installed} and update WRITTEN_FOR"
        )


check_version(importlib.metadata.version("wasmtime"))

# Only after the check: on another version these may not even exist.
from wasmtime import _ffi as ffi  # noqa: E402
from wasmtime._func import enter_wasm  # noqa: E402

# A function of an instance as the C API hands it out (a wasmtime_func_t);
# valid as long as its store.
RawFunc = Any

_no_finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda data: None)


def _error(message: str) -> int:
    """A new wasmtime_error_t, as the address a C callback returns."""
    error = ffi.wasmtime_error_new(message.encode())
    return ctypes.cast(error, ctypes.c_void_p).value or 0


def _trap(message: str) -> int:
    """A new wasm_trap_t, as the address a host function returns."""
    text = message.encode()
    message_ptr = ctypes.cast(ctypes.c_char_p(text), ctypes.POINTER(ctypes.c_char))
    trap = ffi.wasmtime_trap_new(message_ptr, len(text))
    return ctypes.cast(trap, ctypes.c_void_p).value or 0


# -- epoch deadline ----------------------------------------------------------

_DeadlineCallback = ctypes.CFUNCTYPE(
    ctypes.c_size_t,
    ctypes.POINTER(ffi.wasmtime_context_t),
    ctypes.c_void_p,
    ctypes.POINTER(ctypes.c_uint64),
    ctypes.POINTER(ffi.wasmtime_update_deadline_kind_t),
)
_CONTINUE = 0  # WASMTIME_UPDATE_DEADLINE_CONTINUE


def set_epoch_deadline_callback(store: wasmtime.Store, stop_reason: Callable[[], str]) -> object:
    """At each epoch deadline of ``store`` (on the thread running its wasm),
    call ``stop_reason``: "" gives the store one more epoch, any other text
    ends the call into wasm with an error of that text. Returns the callback:
    keep it alive as long as the store."""

    def check(context: Any, data: Any, delta: Any, kind: Any) -> int:
        reason = stop_reason()
        if not reason:
            delta[0] = 1
            kind[0] = _CONTINUE
            return 0
        return _error(reason)

    callback = _DeadlineCallback(check)
    ffi.wasmtime_store_epoch_deadline_callback(store.ptr(), callback, None, _no_finalizer)
    return callback


# -- calling a function straight through the C API ---------------------------


def export_func(store: wasmtime.Store, instance: wasmtime.Instance, name: bytes) -> RawFunc | None:
    """The function ``instance`` exports as ``name``, looked up by that name
    alone; None if it exports no function of that name."""
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(),
        ctypes.byref(instance._instance),
        # A bytes object is a char* to ctypes (typeshed says otherwise); no
        # c_char_p made per call on this path.
        ctypes.cast(name, ctypes.POINTER(ctypes.c_char)),  # type: ignore[arg-type]  # see above
        len(name),
        ctypes.byref(item),
    )
    if not found or item.kind != ffi.WASMTIME_EXTERN_FUNC.value:
        return None
    return item.of.func


def call_func(
    store: wasmtime.Store, func: RawFunc, param_types: Sequence[str], args: Sequence[int]
) -> int:
    """Call ``func``, whose signature the caller has checked: ``param_types``
    ("i32" or "i64") in, one i32 or i64 out, returned as the signed integer
    wasm gave. ``args`` must fit their types. Traps and errors are raised as
    ``Func.__call__`` raises them (``Trap``, ``ExitTrap``, ``WasmtimeError``)."""
    count = len(args)
    params = (ffi.wasmtime_val_t * count)()
    for param, valtype, value in zip(params, param_types, args, strict=True):
        if valtype == "i32":
            param.kind = ffi.WASMTIME_I32
            param.of.i32 = value
        else:
            param.kind = ffi.WASMTIME_I64
            param.of.i64 = value
    results = (ffi.wasmtime_val_t * 1)()
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(func), params, count, results, 1, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    result = results[0]
    return int(result.of.i32 if result.kind == ffi.WASMTIME_I32.value else result.of.i64)


# -- host functions as raw C callbacks ---------------------------------------


class HostTrap(Exception):
    """Raised by a host function's handler: the call traps with this text."""


# (address of the calling module's exported memory, its size in bytes, the
# i32 arguments read as unsigned) -> the i32 result.
HostHandler = Callable[[int, int, tuple[int, ...]], int]

_MEMORY = b"memory"


# Every HostFunc made: wasmtime calls its callback by address for as long as
# any linker or instance it was defined in lives, so it is never freed.
_host_funcs: list[HostFunc] = []


class HostFunc:
    """A host function of ``params`` i32 arguments and an i32 result, called
    by wasmtime as a raw C callback on the thread running the module. Make
    one per function for the life of the process (it is kept alive for good),
    then :func:`shadow` it into linkers."""

    def __init__(self, name: str, params: int, handler: HostHandler) -> None:
        self.name = name
        self.params = params

        def callback(env: Any, caller: Any, args: Any, nargs: int, results: Any, n: int) -> int:
            try:
                item = ffi.wasmtime_extern_t()
                memory_name = ctypes.cast(ctypes.c_char_p(_MEMORY), ctypes.POINTER(ctypes.c_char))
                found = ffi.wasmtime_caller_export_get(
                    caller, memory_name, len(_MEMORY), ctypes.byref(item)
                )
                if not found or item.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
                    return _trap(f"{name}: the module exports no memory")
                context = ffi.wasmtime_caller_context(caller)
                memory = ctypes.byref(item.of.memory)
                data = ffi.wasmtime_memory_data(context, memory)
                base = ctypes.cast(data, ctypes.c_void_p).value or 0
                size = ffi.wasmtime_memory_data_size(context, memory)
                # Guest pointers are unsigned 32-bit addresses.
                values = tuple(args[i].of.i32 & 0xFFFFFFFF for i in range(params))
                value = handler(base, size, values)
            except HostTrap as exc:
                return _trap(str(exc))
            except Exception as exc:  # noqa: BLE001 - a bug must end the run, never unwind through wasm
                return _trap(f"{name} failed: {exc}")
            results[0].kind = ffi.WASMTIME_I32
            results[0].of.i32 = value
            return 0

        self._callback = ffi.wasmtime_func_callback_t(callback)
        _host_funcs.append(self)


def shadow(linker: wasmtime.Linker, module: str, func: HostFunc) -> None:
    """Define ``func`` as ``module``.``func.name`` in ``linker``, in place of
    what it defines there already."""
    i32 = wasmtime.ValType.i32()
    functype = wasmtime.FuncType([i32] * func.params, [i32])
    module_name, name = module.encode(), func.name.encode()
    linker.allow_shadowing = True
    try:
        error = ffi.wasmtime_linker_define_func(
            linker.ptr(),
            module_name,
            len(module_name),
            name,
            len(name),
            functype.ptr(),
            func._callback,
            None,
            _no_finalizer,
        )
    finally:
        linker.allow_shadowing = False
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def set_stdin_bytes(config: wasmtime.WasiConfig, data: bytes) -> None:
    """Make ``data`` the whole of stdin of the store ``config`` is set on
    (then end of file). The C API copies the bytes into a vector it owns."""
    vec = ffi.wasm_byte_vec_t()
    buffer = ctypes.create_string_buffer(data, len(data))
    ffi.wasm_byte_vec_new(
        ctypes.byref(vec), len(data), ctypes.cast(buffer, ctypes.POINTER(ffi.wasm_byte_t))
    )
    # The config takes the vector over: nothing to free here.
    ffi.wasi_config_set_stdin_bytes(config.ptr(), ctypes.byref(vec))
