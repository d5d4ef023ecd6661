"""The committed hash.wasm is what examples/build.py makes from examples/hash/hash.c."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import wasmtime

from tasks_app.modules import inspect_module, module_hash
from workers.executor import Executor, RunRequest

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "hash.wasm"


@pytest.fixture(scope="module")
def rebuilt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("hash-build")
    # A cold zig cache takes ~30 s (it builds wasi-libc for hash_cmd); allow a few minutes.
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "build.py"), "--out-dir", str(out)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(concurrency=1) as ex:
        yield ex


def solve(executor: Executor, wasm: bytes, input: int, difficulty: int) -> str:
    outcome = executor.execute(
        RunRequest(
            task_id="hash",
            module_hash=module_hash(wasm),
            wasm=wasm,
            input=input,
            difficulty=difficulty,
            time_limit=30,
        )
    )
    assert outcome.state == "succeeded", outcome.error
    return outcome.result


def test_committed_and_rebuilt_hash_wasm_solve_the_puzzle(
    executor: Executor, rebuilt: Path
) -> None:
    for wasm in (COMMITTED.read_bytes(), (rebuilt / "hash.wasm").read_bytes()):
        assert solve(executor, wasm, 0, 3) == "2832"


def test_hash_wasm_is_a_run_module_without_imports(rebuilt: Path) -> None:
    wasm = (rebuilt / "hash.wasm").read_bytes()
    assert inspect_module(wasm).kind == "run"
    assert wasmtime.Module(wasmtime.Engine(), wasm).imports == []


def test_hash_cmd_wasm_is_a_wasi_command(rebuilt: Path) -> None:
    assert inspect_module((rebuilt / "hash_cmd.wasm").read_bytes()).kind == "wasi"


def test_build_is_reproducible(rebuilt: Path) -> None:
    assert (rebuilt / "hash.wasm").read_bytes() == COMMITTED.read_bytes()
    committed_cmd = REPO / "examples" / "hash" / "hash_cmd.wasm"
    if committed_cmd.exists():
        assert (rebuilt / "hash_cmd.wasm").read_bytes() == committed_cmd.read_bytes()
