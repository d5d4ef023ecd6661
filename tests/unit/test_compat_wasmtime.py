"""workers/compat_wasmtime.py: the version guard, each use of wasmtime's
private API it holds, and that no other module uses that API."""

from __future__ import annotations

import ast
import ctypes
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from workers.compat_wasmtime import (
    WRITTEN_FOR,
    HostFunc,
    HostHandler,
    HostTrap,
    WasmtimeVersionError,
    call_func,
    check_version,
    export_func,
    set_epoch_deadline_callback,
    shadow,
)

REPO = Path(__file__).resolve().parents[2]
APPS = ("workers", "tasks_app", "cluster_app", "wwproject", "bench", "tests")

ADD_I32 = """(module (func (export "run") (param i32 i32) (result i32)
  (i32.add (local.get 0) (local.get 1))))"""
SUB_I64 = """(module (func (export "run") (param i64 i64) (result i64)
  (i64.sub (local.get 0) (local.get 1))))"""
MIXED = """(module (func (export "run") (param i32 i64) (result i64)
  (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1))))"""
NOT_FUNCS = '(module (memory (export "run") 1) (global (export "g") i32 (i32.const 7)))'
UNREACHABLE = '(module (func (export "run") (param i64 i64) (result i64) unreachable))'
PROC_EXIT = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "run") (param i64 i64) (result i64) (call $exit (i32.const 7)) (i64.const 0)))
"""
ENDLESS = '(module (func (export "run") (param i64 i64) (result i64) (loop (br 0)) (i64.const 0)))'
# Calls the host function env.probe(a, b, c) and returns what it answered.
PROBE = """
(module
  (import "env" "probe" (func $probe (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 100) "hello")
  (func (export "run") (param i32 i32) (result i32)
    (call $probe (local.get 0) (local.get 1) (i32.const -1))))
"""
PROBE_NO_MEMORY = """
(module
  (import "env" "probe" (func $probe (param i32 i32 i32) (result i32)))
  (func (export "run") (param i32 i32) (result i32)
    (call $probe (local.get 0) (local.get 1) (i32.const 0))))
"""


def instance_of(wat: str, *, wasi: bool = False) -> tuple[wasmtime.Store, wasmtime.Instance]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    if wasi:
        linker.define_wasi()
        store.set_wasi(wasmtime.WasiConfig())
    module = wasmtime.Module(engine, wasmtime.wat2wasm(wat))
    return store, linker.instantiate(store, module)


def run_func(store: wasmtime.Store, instance: wasmtime.Instance) -> object:
    func = export_func(store, instance, b"run")
    assert func is not None
    return func


# -- the version guard -------------------------------------------------------


def test_written_for_the_wasmtime_requirements_txt_pins() -> None:
    pins = re.findall(r"^wasmtime==(\S+)$", (REPO / "requirements.txt").read_text(), re.M)
    assert pins == [WRITTEN_FOR]


def test_another_version_is_refused_naming_both() -> None:
    with pytest.raises(WasmtimeVersionError) as refused:
        check_version("51.0.0")
    assert "written for wasmtime 50.0.1" in str(refused.value)
    assert "wasmtime 51.0.0 is installed" in str(refused.value)
    check_version(WRITTEN_FOR)  # the pinned one passes


def test_importing_with_another_version_installed_fails() -> None:
    # In a fresh interpreter whose package metadata says another version.
    code = (
        "import importlib.metadata as m\n"
        "real = m.version\n"
        "m.version = lambda name: '49.0.0' if name == 'wasmtime' else real(name)\n"
        "import workers.compat_wasmtime\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "WasmtimeVersionError" in done.stderr
    assert "written for wasmtime 50.0.1" in done.stderr
    assert "wasmtime 49.0.0 is installed" in done.stderr


# -- export_func and call_func: Store._context, Instance._instance, enter_wasm


def test_export_func_finds_a_function_by_name() -> None:
    store, instance = instance_of(ADD_I32)
    assert export_func(store, instance, b"run") is not None
    assert export_func(store, instance, b"missing") is None


def test_export_func_ignores_exports_that_are_not_functions() -> None:
    store, instance = instance_of(NOT_FUNCS)
    assert export_func(store, instance, b"run") is None
    assert export_func(store, instance, b"g") is None


@pytest.mark.parametrize(
    ("wat", "types", "args", "expected"),
    [
        (ADD_I32, ("i32", "i32"), (2, 3), 5),
        (ADD_I32, ("i32", "i32"), (2**31 - 1, 1), -(2**31)),  # i32 results come back signed
        (SUB_I64, ("i64", "i64"), (5, 7), -2),
        (SUB_I64, ("i64", "i64"), (2**62, -(2**62)), -(2**63)),
        (MIXED, ("i32", "i64"), (-1, 2**40), 2**40 - 1),
    ],
)
def test_call_func_passes_arguments_and_returns_the_result(
    wat: str, types: tuple[str, ...], args: tuple[int, int], expected: int
) -> None:
    store, instance = instance_of(wat)
    assert call_func(store, run_func(store, instance), types, args) == expected


def test_call_func_agrees_with_func_call() -> None:
    store, instance = instance_of(SUB_I64)
    run = instance.exports(store)["run"]
    assert isinstance(run, wasmtime.Func)
    fast = run_func(store, instance)
    for a, b in [(0, 0), (1, 2), (-5, 9), (2**63 - 1, -1)]:
        assert call_func(store, fast, ("i64", "i64"), (a, b)) == run(store, a, b)


def test_call_func_raises_a_trap_with_its_code() -> None:
    store, instance = instance_of(UNREACHABLE)
    with pytest.raises(wasmtime.Trap) as trapped:
        call_func(store, run_func(store, instance), ("i64", "i64"), (0, 0))
    assert trapped.value.trap_code == wasmtime.TrapCode.UNREACHABLE


def test_call_func_raises_a_wasi_exit_as_exit_trap() -> None:
    store, instance = instance_of(PROC_EXIT, wasi=True)
    with pytest.raises(wasmtime.ExitTrap) as exited:
        call_func(store, run_func(store, instance), ("i64", "i64"), (0, 0))
    assert exited.value.code == 7


# -- set_epoch_deadline_callback: wasmtime_store_epoch_deadline_callback -----


@pytest.fixture
def ticking_engine() -> Iterator[wasmtime.Engine]:
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.001):
            engine.increment_epoch()

    ticker = threading.Thread(target=tick, daemon=True)
    ticker.start()
    yield engine
    stop.set()
    ticker.join()


def test_deadline_callback_goes_on_while_empty_and_ends_the_call_with_its_text(
    ticking_engine: wasmtime.Engine,
) -> None:
    store = wasmtime.Store(ticking_engine)
    asked: list[int] = []

    def stop_reason() -> str:
        asked.append(1)
        return "out of patience" if len(asked) >= 3 else ""

    keep = set_epoch_deadline_callback(store, stop_reason)
    store.set_epoch_deadline(1)
    module = wasmtime.Module(ticking_engine, wasmtime.wat2wasm(ENDLESS))
    instance = wasmtime.Linker(ticking_engine).instantiate(store, module)
    with pytest.raises(wasmtime.WasmtimeError) as ended:
        call_func(store, run_func(store, instance), ("i64", "i64"), (0, 0))
    assert "out of patience" in str(ended.value)
    assert len(asked) == 3  # two ticks granted ("" went on), the third ended it
    assert keep is not None


# -- HostFunc and shadow: raw host functions, wasmtime_caller_* --------------


def probe_instance(
    handler: HostHandler, wat: str = PROBE
) -> tuple[wasmtime.Store, wasmtime.Instance, wasmtime.Linker]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    linker = wasmtime.Linker(engine)
    # Something to shadow, as WASI's poll_oneoff is in the executor's linker.
    linker.define_func(
        "env",
        "probe",
        wasmtime.FuncType([wasmtime.ValType.i32()] * 3, [wasmtime.ValType.i32()]),
        lambda a, b, c: -1,
    )
    func = HostFunc("probe", 3, handler)
    shadow(linker, "env", func)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(wat))
    instance = linker.instantiate(store, module)
    return store, instance, linker


def test_shadowed_host_function_sees_memory_and_unsigned_args_and_answers() -> None:
    seen: list[tuple[bytes, int, tuple[int, ...]]] = []

    def handler(memory: int, size: int, args: tuple[int, ...]) -> int:
        seen.append((ctypes.string_at(memory + 100, 5), size, args))
        return args[0] * 10 + args[1]

    store, instance, _linker = probe_instance(handler)
    assert call_func(store, run_func(store, instance), ("i32", "i32"), (4, 2)) == 42
    assert seen == [(b"hello", 65536, (4, 2, 0xFFFFFFFF))]


def test_host_trap_ends_the_call_with_its_text() -> None:
    def handler(memory: int, size: int, args: tuple[int, ...]) -> int:
        raise HostTrap("cancelled")

    store, instance, _linker = probe_instance(handler)
    # A host function's trap comes back as an error of the call, not a Trap.
    with pytest.raises(wasmtime.WasmtimeError) as trapped:
        call_func(store, run_func(store, instance), ("i32", "i32"), (0, 0))
    assert "cancelled" in str(trapped.value)


def test_any_other_exception_in_a_handler_ends_the_call_naming_the_function() -> None:
    def handler(memory: int, size: int, args: tuple[int, ...]) -> int:
        raise ValueError("a bug")

    store, instance, _linker = probe_instance(handler)
    with pytest.raises(wasmtime.WasmtimeError) as trapped:
        call_func(store, run_func(store, instance), ("i32", "i32"), (0, 0))
    assert "probe failed: a bug" in str(trapped.value)


def test_a_caller_without_memory_traps_without_calling_the_handler() -> None:
    called: list[int] = []

    def handler(memory: int, size: int, args: tuple[int, ...]) -> int:
        called.append(1)
        return 0

    store, instance, _linker = probe_instance(handler, PROBE_NO_MEMORY)
    with pytest.raises(wasmtime.WasmtimeError) as trapped:
        call_func(store, run_func(store, instance), ("i32", "i32"), (0, 0))
    assert "probe: the module exports no memory" in str(trapped.value)
    assert called == []


# -- nobody else ---------------------------------------------------------------

PRIVATE_ATTRIBUTES = {"_ffi", "_func", "_context", "_instance", "_from_ptr", "_bindings"}


def private_wasmtime_uses(path: Path) -> list[str]:
    """Where `path` imports a private wasmtime module or name, or reaches for
    one of the private attributes compat_wasmtime uses."""
    text = path.read_text()
    # Attributes are only wasmtime's where wasmtime is imported (tls.py has a _context of its own).
    uses_wasmtime = re.search(r"^\s*(from|import) wasmtime\b", text, re.M) is not None
    found = []
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wasmtime"):
            if node.module != "wasmtime" or any(a.name.startswith("_") for a in node.names):
                found.append(f"{path}:{node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("wasmtime."):
                    found.append(f"{path}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.Attribute) and node.attr in PRIVATE_ATTRIBUTES and uses_wasmtime:
            found.append(f"{path}:{node.lineno}: .{node.attr}")
    return found


def test_no_other_module_touches_wasmtimes_private_names() -> None:
    compat = REPO / "workers" / "compat_wasmtime.py"
    this = Path(__file__).resolve()
    uses = [
        use
        for app in APPS
        for path in sorted((REPO / app).rglob("*.py"))
        if path not in (compat, this)
        for use in private_wasmtime_uses(path)
    ]
    assert uses == []


def test_the_check_finds_private_uses(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from wasmtime import _ffi as ffi\n"
        "import wasmtime._func\n"
        "from wasmtime._store import Store\n"
        "x = store._context()\n"
        "from wasmtime import Store, Engine\n"
        "y = wasmtime.Linker\n"
    )
    assert len(private_wasmtime_uses(sample)) == 4
    assert private_wasmtime_uses(REPO / "workers" / "compat_wasmtime.py") != []
