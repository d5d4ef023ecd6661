"""A WASI command gets exactly the argv, stdin and environment its run is
given, nothing of the worker's own; its stdout comes back as text when it
is UTF-8, else as bytes, marked when cut; its stderr comes back beside it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from wasmtime import wat2wasm

from tasks_app.modules import module_hash
from tests.unit import wasi_echo
from workers.executor import Executor, RunOutcome, RunRequest
from workers.output import TRUNCATED_MARKER

ECHO = wat2wasm(wasi_echo.ECHO)


@pytest.fixture(scope="module")
def executor() -> Iterator[Executor]:
    with Executor(concurrency=1, output_limit=4096, result_limit=2048) as ex:
        yield ex


def run(executor: Executor, wasm: bytes, **given: object) -> RunOutcome:
    fields: dict[str, object] = {"input": 7, "difficulty": 3, "time_limit": 10.0, **given}
    return executor.execute(
        RunRequest(task_id="task-x", module_hash=module_hash(wasm), wasm=wasm, **fields)  # type: ignore[arg-type]  # the test's fields are RunRequest's
    )


def test_argv_env_and_stdin_reach_the_command_exactly(executor: Executor) -> None:
    args = ("alpha", "be ta", "", "ünï")
    env = (("A", "1"), ("B", "two words"), ("EMPTY", ""))
    stdin = b"line one\n\x00\xffraw"
    outcome = run(executor, ECHO, args=args, env=env, stdin=stdin)
    assert outcome.state == "succeeded", outcome.error
    # stdin holds bytes that are not UTF-8: the whole output comes back as bytes.
    assert outcome.result == ""
    assert outcome.result_bytes == wasi_echo.echoed(["task-x", *args], list(env), stdin)
    assert not outcome.result_truncated
    assert outcome.stderr == "echo: done\n"


def test_nothing_of_the_workers_environment_reaches_the_command(
    executor: Executor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WW_SECRET_OF_THE_WORKER", "leaked")
    assert "PATH" in os.environ
    outcome = run(executor, ECHO, args=(), stdin=b"")
    assert outcome.state == "succeeded", outcome.error
    assert outcome.result == wasi_echo.echoed(["task-x"], [], b"").decode()
    assert outcome.result_bytes is None


def test_without_args_argv_is_the_seeds_and_stdin_is_empty(executor: Executor) -> None:
    outcome = run(executor, ECHO)
    assert outcome.result == "task-x\n7\n3\n--\n--\n"
    assert (outcome.result_bytes, outcome.result_truncated) == (None, False)


def test_stdin_is_read_whole_then_end_of_file(executor: Executor) -> None:
    # More than one read's worth (the module reads 64 KiB at a time) would
    # not fit the result limit here; 1,500 bytes of text is echoed whole.
    stdin = ("0123456789abcde\n" * 90).encode()
    outcome = run(executor, ECHO, args=(), stdin=stdin)
    assert outcome.result == "task-x\n--\n--\n" + stdin.decode()


def test_output_that_is_not_utf8_comes_back_as_bytes(executor: Executor) -> None:
    outcome = run(executor, wat2wasm(wasi_echo.BINARY))
    assert outcome.state == "succeeded"
    assert (outcome.result, outcome.result_bytes) == ("", wasi_echo.BINARY_BYTES)
    assert not outcome.result_truncated


def test_binary_output_is_cut_to_the_result_limit_and_marked(executor: Executor) -> None:
    outcome = run(executor, wat2wasm(wasi_echo.binary_flood(8)))
    assert outcome.state == "succeeded"
    assert outcome.result_bytes == b"\xff" * 2048
    assert outcome.result_truncated
    # stderr: its tail, within the limit, invalid bytes replaced, marked at its start.
    assert outcome.stderr.startswith("…")
    assert set(outcome.stderr[1:]) == {"\ufffd"}
    assert len(outcome.stderr.encode()) <= 2048


def test_text_output_cut_to_the_limit_keeps_its_marker_and_says_so(executor: Executor) -> None:
    outcome = run(executor, ECHO, args=(), stdin=b"y" * 3000)
    assert outcome.result.endswith(TRUNCATED_MARKER)
    assert len(outcome.result.encode()) <= 2048
    assert outcome.result_truncated and outcome.result_bytes is None


def test_a_character_cut_in_two_by_the_bound_leaves_the_output_text() -> None:
    # 4096 bytes kept of stdout, "é" (2 bytes each) from byte 17 on: the last one is cut in two.
    with Executor(concurrency=1, output_limit=4096, result_limit=8192) as executor:
        outcome = run(executor, ECHO, args=("ab",), stdin="é".encode() * 3000)
    assert outcome.result_bytes is None
    assert outcome.result.endswith("é" + TRUNCATED_MARKER)
    assert outcome.result_truncated


def test_a_run_export_module_is_unchanged() -> None:
    wasm = wat2wasm('(module (func (export "run") (param i64 i64) (result i64) (i64.const 42)))')
    with Executor(concurrency=1) as executor:
        outcome = run(executor, wasm, args=("ignored",), stdin=b"x", env=(("A", "1"),))
    assert (outcome.result, outcome.result_bytes, outcome.stderr) == ("42", None, "")
    assert not outcome.result_truncated
