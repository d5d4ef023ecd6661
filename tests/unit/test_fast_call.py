"""Arguments and results of the direct call of ``run`` (workers/fast_call.py):
wrapped to the parameter's width going in, unsigned coming out."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import given
from hypothesis import strategies as st

from workers.fast_call import RunSignature, call_run, run_export, run_signature, unsigned, wrap

widths = st.sampled_from([32, 64])
ints = st.integers(min_value=-(2**80), max_value=2**80)

ECHO = """
(module (func (export "run") (param {a} {b}) (result {r})
  {body}))
"""


@given(ints, widths)
def test_wrap_is_the_twos_complement_value_of_the_low_bits(value: int, bits: int) -> None:
    wrapped = wrap(value, bits)
    assert -(2 ** (bits - 1)) <= wrapped < 2 ** (bits - 1)
    assert (wrapped - value) % (2**bits) == 0


@given(ints, widths)
def test_unsigned_reads_the_low_bits(value: int, bits: int) -> None:
    assert 0 <= unsigned(value, bits) < 2**bits
    assert unsigned(wrap(value, bits), bits) == value % (2**bits)


def instance(a: str, b: str, r: str, body: str) -> tuple[wasmtime.Store, wasmtime.Instance]:
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    wat = ECHO.format(a=a, b=b, r=r, body=body)
    module = wasmtime.Module(engine, wasmtime.wat2wasm(wat))
    return store, wasmtime.Linker(engine).instantiate(store, module)


def test_the_signature_is_read_from_the_module() -> None:
    engine = wasmtime.Engine()
    wat = ECHO.format(a="i32", b="i64", r="i32", body="(local.get 0)")
    module = wasmtime.Module(engine, wasmtime.wat2wasm(wat))
    assert run_signature(module) == RunSignature(params=("i32", "i64"), bits=32)


@pytest.mark.parametrize(
    ("a", "b", "r", "body", "args", "expected"),
    [
        ("i32", "i32", "i32", "(local.get 0)", (-1, 0), 2**32 - 1),
        ("i32", "i32", "i32", "(local.get 1)", (0, 2**32 + 5), 5),
        ("i64", "i64", "i64", "(local.get 0)", (-1, 0), 2**64 - 1),
        ("i64", "i64", "i64", "(local.get 1)", (0, 2**64 + 7), 7),
        ("i32", "i64", "i64", "(local.get 1)", (0, -2), 2**64 - 2),
    ],
)
def test_call_run_wraps_arguments_and_reads_the_result_unsigned(
    a: str, b: str, r: str, body: str, args: tuple[int, int], expected: int
) -> None:
    store, inst = instance(a, b, r, body)
    run = run_export(store, inst)
    assert run is not None
    signature = RunSignature(params=(a, b), bits=32 if r == "i32" else 64)
    assert call_run(store, run, signature, args) == expected
