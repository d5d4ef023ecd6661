"""Inspection of an uploaded WebAssembly module: what kind of job it is, or why it is refused.

Called by the REST API on submission: the module is validated and compiled
to read its imports and exports, never instantiated or run. Compiling a
hostile module can take many seconds and gigabytes, so ``inspect_module``
first reads the module's sections for cheap limits (how many functions), then
compiles in a child process bounded in time and memory
(``tasks_app.bounded_compile``). The executor relies on the same rules
(``inspect_compiled``) when it runs a module, so a module accepted here is one
the worker knows how to call.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import wasmtime

from tasks_app.conf import TasksSettings

ModuleKind = Literal["run", "wasi"]

WASM_MAGIC = b"\x00asm"
WASI_MODULE = "wasi_snapshot_preview1"
RUN_EXPORT = "run"
WASI_EXPORT = "_start"


class InvalidModule(ValueError):
    """The uploaded bytes are not a module this scheduler can run; str() says why."""


@dataclass(frozen=True)
class ModuleLimits:
    """What checking one module may cost (the gateway's come from settings;
    these defaults are the settings' own)."""

    # functions defined by the module (imports not counted)
    max_functions: int = TasksSettings.module_max_functions
    compile_seconds: float = TasksSettings.module_compile_seconds
    # address space of the compiling process
    compile_memory_bytes: int = TasksSettings.module_compile_bytes


@dataclass(frozen=True)
class ModuleInfo:
    sha256: str
    size: int
    kind: ModuleKind


def module_hash(wasm: bytes) -> str:
    """Lowercase hex SHA-256 of the module bytes: the module's identity everywhere."""
    return hashlib.sha256(wasm).hexdigest()


def inspect_module(wasm: bytes, limits: ModuleLimits | None = None) -> ModuleInfo:
    """Validate ``wasm`` and classify it, within ``limits``; raises
    :class:`InvalidModule` with a human reason (one naming the limit when
    the module is over one)."""
    # Imported here: the compiler's child process imports this module.
    from tasks_app.bounded_compile import shared_compiler

    limits = limits or ModuleLimits()
    if not isinstance(wasm, (bytes, bytearray)):
        raise InvalidModule("module must be bytes")
    if wasm[:4] != WASM_MAGIC:
        raise InvalidModule("not a WebAssembly module (bad magic)")
    functions = count_functions(wasm)
    if functions is not None and functions > limits.max_functions:
        raise InvalidModule(
            f"module too complex: {functions} functions, over the limit of {limits.max_functions}"
        )
    compiler = shared_compiler("inspect", limits.compile_memory_bytes)
    kind = compiler.compile(bytes(wasm), seconds=limits.compile_seconds).kind
    return ModuleInfo(sha256=module_hash(wasm), size=len(wasm), kind=kind)


_FUNCTION_SECTION = 3


def count_functions(wasm: bytes) -> int | None:
    """How many functions the module defines, read from its function section
    without validating anything else; None when the sections cannot be read
    (the compiler then says what is wrong)."""
    offset = 8  # magic and version
    while offset < len(wasm):
        section = wasm[offset]
        size, offset = _leb128(wasm, offset + 1)
        if size is None:
            return None
        if section == _FUNCTION_SECTION:
            count, _ = _leb128(wasm, offset)
            return count
        offset += size
    return 0


def _leb128(data: bytes, offset: int) -> tuple[int | None, int]:
    """An unsigned LEB128 (at most 32 bits, as wasm's are) at ``offset``,
    and the offset after it."""
    value = 0
    for shift in range(0, 35, 7):
        if offset >= len(data):
            return None, offset
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, offset
    return None, offset


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
