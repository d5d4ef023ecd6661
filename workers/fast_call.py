"""Calling a module's ``run(input, difficulty)`` at little more than the call's cost.

wasmtime-py's ``Func.__call__`` looks up the signature and boxes each value
on every call, and ``Instance.exports`` lists every export to find one: for
a short run that is half its time on the worker. Here the signature is read
once, when the module is compiled (:func:`run_signature`), and each call goes
straight through wasmtime's C API (``workers.compat_wasmtime``). Arguments
wrap to the parameter's width; the result is read as unsigned at its width.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import wasmtime

from workers.compat_wasmtime import RawFunc, call_func, export_func

_RUN_NAME = b"run"


@dataclass(frozen=True)
class RunSignature:
    params: tuple[str, str]  # "i32" or "i64", one per parameter
    bits: int  # width of the result: 32 or 64

    # Worked out on the first call, not on every one.
    @cached_property
    def widths(self) -> tuple[int, int]:
        first, second = (32 if valtype == "i32" else 64 for valtype in self.params)
        return first, second

    @cached_property
    def mask(self) -> int:
        return (1 << self.bits) - 1


def run_signature(module: wasmtime.Module) -> RunSignature:
    """The signature of ``module``'s ``run`` export (checked at inspection
    to be two integer parameters and one integer result)."""
    run_type = next(e.type for e in module.exports if e.name == "run")
    assert isinstance(run_type, wasmtime.FuncType)
    first, second = (str(t) for t in run_type.params)
    return RunSignature(
        params=(first, second),
        bits=32 if str(run_type.results[0]) == "i32" else 64,
    )


def run_export(store: wasmtime.Store, instance: wasmtime.Instance) -> RawFunc | None:
    """The instance's ``run`` function, looked up by name alone."""
    return export_func(store, instance, _RUN_NAME)


def call_run(
    store: wasmtime.Store, run: RawFunc, signature: RunSignature, args: tuple[int, int]
) -> int:
    """``run(*args)``, arguments wrapped to their parameters' widths, the
    result as unsigned. Traps and errors surface as ``Func.__call__`` raises them."""
    # Two parameters, unrolled: this is the one call every short run makes.
    first, second = args
    first_bits, second_bits = signature.widths
    values = (wrap(first, first_bits), wrap(second, second_bits))
    return call_func(store, run, signature.params, values) & signature.mask


def wrap(value: int, bits: int) -> int:
    """``value`` as a two's-complement integer of ``bits`` bits."""
    half = 1 << (bits - 1)
    return (value + half) % (1 << bits) - half


def unsigned(value: int, bits: int) -> int:
    """``value`` read as an unsigned integer of ``bits`` bits."""
    return value & ((1 << bits) - 1)
