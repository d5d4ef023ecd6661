"""Inspection of an uploaded WebAssembly module: what kind of job it is, or why it is refused.

Pure and cheap enough for the REST API to call on submission: the module is
validated and compiled to read its imports and exports, never instantiated or
run. The executor relies on the same rules (``inspect_compiled``) when it runs
a module, so a module accepted here is one the worker knows how to call.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Literal

import wasmtime

ModuleKind = Literal["run", "wasi"]

WASM_MAGIC = b"\x00asm"
WASI_MODULE = "wasi_snapshot_preview1"
RUN_EXPORT = "run"
WASI_EXPORT = "_start"


@functools.cache
def _inspection_engine() -> tuple[wasmtime.Engine, wasmtime.Linker]:
    """A plain engine is enough to validate and compile for inspection (the
    executor has its own: epoch interruption changes the compiled code).
    Made on first use, not at import: wasmtime installs its trap signal
    handlers with its first engine, and a handler installed after them
    (Python's faulthandler, which pytest enables late) would see wasm traps
    first and kill the process."""
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    return engine, linker


class InvalidModule(ValueError):
    """The uploaded bytes are not a module this scheduler can run; str() says why."""


@dataclass(frozen=True)
class ModuleInfo:
    sha256: str
    size: int
    kind: ModuleKind


def module_hash(wasm: bytes) -> str:
    """Lowercase hex SHA-256 of the module bytes: the module's identity everywhere."""
    return hashlib.sha256(wasm).hexdigest()


def inspect_module(wasm: bytes) -> ModuleInfo:
    """Validate ``wasm`` and classify it; raises :class:`InvalidModule` with a human reason."""
    if not isinstance(wasm, (bytes, bytearray)):
        raise InvalidModule("module must be bytes")
    if wasm[:4] != WASM_MAGIC:
        raise InvalidModule("not a WebAssembly module (bad magic)")
    engine, linker = _inspection_engine()
    module = compile_module(engine, bytes(wasm))
    kind = inspect_compiled(module, linker)
    return ModuleInfo(sha256=module_hash(wasm), size=len(wasm), kind=kind)


def compile_module(engine: wasmtime.Engine, wasm: bytes) -> wasmtime.Module:
    """Compile, turning wasmtime's validation error into :class:`InvalidModule`."""
    if wasm[:4] != WASM_MAGIC:
        raise InvalidModule("not a WebAssembly module (bad magic)")
    try:
        return wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"invalid WebAssembly: {_first_lines(str(exc))}") from exc


def inspect_compiled(module: wasmtime.Module, wasi_linker: wasmtime.Linker) -> ModuleKind:
    """Check imports and exports of a compiled module; return its kind.

    ``wasi_linker`` must belong to the module's engine and have WASI defined.
    """
    _check_imports(module, wasi_linker)
    exports = {export.name: export.type for export in module.exports}
    run_type = exports.get(RUN_EXPORT)
    if isinstance(run_type, wasmtime.FuncType):
        if not _is_run_signature(run_type):
            raise InvalidModule(
                "run must take two integer parameters and return one integer "
                f"(found {_describe(run_type)})"
            )
        return "run"
    start_type = exports.get(WASI_EXPORT)
    if isinstance(start_type, wasmtime.FuncType):
        if start_type.params or start_type.results:
            raise InvalidModule(
                f"_start must take no parameters and return nothing (found {_describe(start_type)})"
            )
        return "wasi"
    raise InvalidModule("module exports neither run(input, difficulty) nor WASI _start")


def _check_imports(module: wasmtime.Module, wasi_linker: wasmtime.Linker) -> None:
    # Only WASI preview1 functions are provided by the worker; anything else would
    # fail at instantiation on every worker, so refuse it up front.
    foreign = [
        f"{imp.module}.{imp.name}"
        for imp in module.imports
        if imp.module != WASI_MODULE or not isinstance(imp.type, wasmtime.FuncType)
    ]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", …" if len(foreign) > 5 else "")
        raise InvalidModule(f"imports functions other than WASI preview1: {shown}")
    try:
        # Resolves every import against the worker's WASI without instantiating:
        # catches unknown preview1 names and wrong signatures.
        wasi_linker.instantiate_pre(module)
    except wasmtime.WasmtimeError as exc:
        raise InvalidModule(f"unusable WASI import: {_first_lines(str(exc))}") from exc


def _is_integer(valtype: wasmtime.ValType) -> bool:
    return str(valtype) in ("i32", "i64")


def _is_run_signature(functype: wasmtime.FuncType) -> bool:
    params, results = functype.params, functype.results
    return (
        len(params) == 2
        and len(results) == 1
        and all(_is_integer(t) for t in params)
        and _is_integer(results[0])
    )


def _describe(functype: wasmtime.FuncType) -> str:
    params = ", ".join(str(t) for t in functype.params)
    results = ", ".join(str(t) for t in functype.results)
    return f"({params}) -> ({results})"


def _first_lines(message: str, lines: int = 3, limit: int = 300) -> str:
    text = " ".join(line.strip() for line in message.strip().splitlines()[:lines])
    return text if len(text) <= limit else text[: limit - 1] + "…"
