"""Inspection of uploaded modules: what is accepted as which kind, and why the rest is refused."""

from __future__ import annotations

import hashlib

import pytest
from wasmtime import wat2wasm

from tasks_app.bounded_compile import ModuleTooComplex
from tasks_app.modules import (
    InvalidModule,
    ModuleInfo,
    ModuleLimits,
    count_functions,
    inspect_module,
    module_hash,
)
from tests.security import hostile

RUN_I64 = '(module (func (export "run") (param i64 i64) (result i64) (local.get 0)))'
RUN_MIXED = '(module (func (export "run") (param i32 i64) (result i32) (i32.const 7)))'
WASI_COMMAND = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 0))))
"""


def test_run_module_is_kind_run_with_hash_and_size() -> None:
    wasm = wat2wasm(RUN_I64)
    info = inspect_module(wasm)
    assert info == ModuleInfo(sha256=hashlib.sha256(wasm).hexdigest(), size=len(wasm), kind="run")


def test_run_may_mix_i32_and_i64() -> None:
    assert inspect_module(wat2wasm(RUN_MIXED)).kind == "run"


def test_wasi_command_is_kind_wasi() -> None:
    assert inspect_module(wat2wasm(WASI_COMMAND)).kind == "wasi"


def test_run_wins_over_start_when_both_are_exported() -> None:
    wat = """
    (module
      (func (export "_start"))
      (func (export "run") (param i32 i32) (result i32) (i32.const 1)))
    """
    assert inspect_module(wat2wasm(wat)).kind == "run"


def test_run_module_built_against_wasi_is_accepted() -> None:
    wat = """
    (module
      (import "wasi_snapshot_preview1" "fd_write"
        (func (param i32 i32 i32 i32) (result i32)))
      (func (export "run") (param i64 i64) (result i64) (i64.const 0)))
    """
    assert inspect_module(wat2wasm(wat)).kind == "run"


def test_module_hash_is_lowercase_hex_sha256() -> None:
    assert module_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert module_hash(b"abc") == module_hash(b"abc").lower()


@pytest.mark.parametrize("data", [b"", b"hello world", b"\x7fELF\x02\x01\x01"])
def test_non_wasm_bytes_are_refused_for_bad_magic(data: bytes) -> None:
    with pytest.raises(InvalidModule, match="bad magic"):
        inspect_module(data)


def test_truncated_module_is_refused_with_wasmtime_reason() -> None:
    wasm = wat2wasm(RUN_I64)
    with pytest.raises(InvalidModule, match=r"^invalid WebAssembly: .+") as info:
        inspect_module(wasm[: len(wasm) - 5])
    assert "\n" not in str(info.value)


def test_invalid_code_is_refused() -> None:
    # A valid header followed by a section id that does not exist.
    with pytest.raises(InvalidModule, match="invalid WebAssembly"):
        inspect_module(b"\x00asm\x01\x00\x00\x00\x7f\x00")


def test_module_without_run_or_start_is_refused() -> None:
    with pytest.raises(InvalidModule, match="neither run"):
        inspect_module(wat2wasm('(module (func (export "main") (result i32) (i32.const 0)))'))


def test_run_that_is_not_a_function_is_refused() -> None:
    with pytest.raises(InvalidModule, match="neither run"):
        inspect_module(wat2wasm('(module (global (export "run") i32 (i32.const 0)))'))


@pytest.mark.parametrize(
    ("signature", "body"),
    [
        ("(param i64) (result i64)", "(i64.const 0)"),
        ("(param i64 i64 i64) (result i64)", "(i64.const 0)"),
        ("(param i64 i64)", ""),
        ("(param f64 f64) (result f64)", "(f64.const 0)"),
        ("(param i32 i32) (result i32 i32)", "(i32.const 0) (i32.const 0)"),
    ],
)
def test_run_with_wrong_signature_is_refused(signature: str, body: str) -> None:
    wat = f'(module (func (export "run") {signature} {body}))'
    with pytest.raises(InvalidModule, match="run must take two integer parameters"):
        inspect_module(wat2wasm(wat))


def test_start_with_parameters_is_refused() -> None:
    with pytest.raises(InvalidModule, match="_start must take no parameters"):
        inspect_module(wat2wasm('(module (func (export "_start") (param i32)))'))


def test_foreign_function_import_is_refused_and_named() -> None:
    wat = """
    (module
      (import "env" "foo" (func (param i32)))
      (func (export "run") (param i64 i64) (result i64) (i64.const 0)))
    """
    with pytest.raises(InvalidModule, match=r"other than WASI preview1: env\.foo"):
        inspect_module(wat2wasm(wat))


def test_imported_memory_is_refused() -> None:
    wat = """
    (module
      (import "env" "memory" (memory 1))
      (func (export "run") (param i64 i64) (result i64) (i64.const 0)))
    """
    with pytest.raises(InvalidModule, match=r"env\.memory"):
        inspect_module(wat2wasm(wat))


def test_unknown_wasi_function_is_refused() -> None:
    wat = """
    (module
      (import "wasi_snapshot_preview1" "launch_missiles" (func))
      (func (export "_start")))
    """
    with pytest.raises(InvalidModule, match="launch_missiles"):
        inspect_module(wat2wasm(wat))


def test_wasi_function_with_wrong_signature_is_refused() -> None:
    wat = """
    (module
      (import "wasi_snapshot_preview1" "proc_exit" (func (param i64)))
      (func (export "_start")))
    """
    with pytest.raises(InvalidModule, match="proc_exit"):
        inspect_module(wat2wasm(wat))


def test_invalid_module_is_a_value_error() -> None:
    assert issubclass(InvalidModule, ValueError)


# -- what checking a module may cost (issue 15) --------------------------------


def test_functions_are_counted_from_the_function_section() -> None:
    assert count_functions(hostile.many_functions(1000)) == 1001
    assert count_functions(wat2wasm(RUN_I64)) == 1
    assert count_functions(b"\x00asm\x01\x00\x00\x00") == 0
    assert count_functions(b"\x00asm\x01\x00\x00\x00\x03\xff") is None  # cut short


def test_module_over_the_function_limit_is_refused_before_compiling() -> None:
    with pytest.raises(
        InvalidModule, match=r"^module too complex: 1001 functions, over the limit of 1000$"
    ):
        inspect_module(hostile.many_functions(1000), ModuleLimits(max_functions=1000))
    assert (
        inspect_module(hostile.many_functions(999), ModuleLimits(max_functions=1000)).kind == "run"
    )


def test_module_compiling_too_long_is_refused_naming_the_limit() -> None:
    wasm = hostile.many_functions(300_000)  # about a second on one core
    limits = ModuleLimits(max_functions=10**6, compile_seconds=0.1)
    with pytest.raises(ModuleTooComplex, match=r"^module too complex: compiling took over 0\.1 s$"):
        inspect_module(wasm, limits)
    assert inspect_module(wat2wasm(RUN_I64), limits).kind == "run"  # the checker goes on


def test_module_compiling_in_too_much_memory_is_refused_naming_the_limit() -> None:
    wasm = hostile.many_functions(300_000)  # ~1.6 GB to compile
    limits = ModuleLimits(max_functions=10**6, compile_memory_bytes=256 * 1024 * 1024)
    with pytest.raises(
        ModuleTooComplex, match=r"^module too complex: compiling needed over 256 MiB$"
    ):
        inspect_module(wasm, limits)
    assert inspect_module(wat2wasm(RUN_I64), limits).kind == "run"


def test_invalid_module_reason_comes_back_from_the_checker() -> None:
    wasm = wat2wasm(RUN_I64)
    with pytest.raises(InvalidModule, match=r"^invalid WebAssembly: "):
        inspect_module(wasm[: len(wasm) - 3])
